-- Roles. Runs after every other file, so that it covers every table the
-- extension creates. The three roles are cluster-wide and created only when
-- missing (another database's pg_kpi may have made them); DROP EXTENSION
-- leaves them. Nothing of schema kpi is granted to PUBLIC: a login sees
-- pg_kpi only through one of them.
--
--   kpi_reader  reads metrics, summaries, alerts, reports and the BI views
--               (not receivers' URLs and headers, which hold secrets)
--   kpi_writer  kpi_reader, plus inserting metrics, revenue events,
--               customers, scaling events and load-test results
--   kpi_admin   kpi_writer, plus definitions, rollups, rules, receivers,
--               jobs, silences, targets, retention: every table
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kpi_reader') THEN
        CREATE ROLE kpi_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kpi_writer') THEN
        CREATE ROLE kpi_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kpi_admin') THEN
        CREATE ROLE kpi_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('kpi_writer', 'kpi_reader', 'MEMBER') THEN
        GRANT kpi_reader TO kpi_writer;
    END IF;
    IF NOT pg_catalog.pg_has_role('kpi_admin', 'kpi_writer', 'MEMBER') THEN
        GRANT kpi_writer TO kpi_admin;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA kpi_internal FROM PUBLIC;
GRANT USAGE ON SCHEMA kpi, kpi_internal TO kpi_reader;

GRANT SELECT ON ALL TABLES IN SCHEMA kpi TO kpi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA kpi_internal TO kpi_reader;
REVOKE SELECT ON kpi.alert_receivers FROM kpi_reader;
GRANT SELECT (id, name, kind, matchers, repeat_interval, send_resolved, enabled, created_at)
    ON kpi.alert_receivers TO kpi_reader;

GRANT INSERT ON kpi.metrics, kpi.revenue_events, kpi.scaling_events, kpi.load_test_results TO kpi_writer;
GRANT INSERT, UPDATE ON kpi.customers TO kpi_writer;
GRANT USAGE ON SEQUENCE kpi.metrics_id_seq TO kpi_writer;

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA kpi, kpi_internal TO kpi_admin;
GRANT SELECT, UPDATE, USAGE ON ALL SEQUENCES IN SCHEMA kpi TO kpi_admin;

-- Job kinds name the functions the worker calls (as its role, by default the
-- bootstrap superuser): only the extension and superusers register them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON kpi.job_kinds FROM kpi_admin;

-- Functions that write with the extension's rights (SECURITY DEFINER, other
-- than trigger functions, which only fire as triggers): rule evaluation,
-- quiet-alert resolution and the job bookkeeping are for kpi_admin (and the
-- job worker) only.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('kpi', 'kpi_internal') AND p.prosecdef AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO kpi_admin', f);
    END LOOP;
END
$$;

COMMENT ON ROLE kpi_reader IS 'pg_kpi: reads metrics, summaries, alerts, reports and BI views (not receiver secrets)';
COMMENT ON ROLE kpi_writer IS 'pg_kpi: kpi_reader plus inserting metrics, revenue events and customers';
COMMENT ON ROLE kpi_admin IS 'pg_kpi: kpi_writer plus definitions, rollups, rules, receivers, jobs, silences and targets';
