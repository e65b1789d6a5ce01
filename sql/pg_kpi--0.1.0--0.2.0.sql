-- pg_kpi 0.1.0 -> 0.2.0. Every change to the extension's SQL after the 0.1.0
-- release (git tag v0.1.0, install script frozen in sql/pg_kpi--0.1.0.sql)
-- goes here too, so that ALTER EXTENSION pg_kpi UPDATE gives the same schema
-- as a fresh install (tests/integration/test_upgrade.py compares them).
-- Released upgrade scripts are never edited.
\echo Use "ALTER EXTENSION pg_kpi UPDATE TO '0.2.0'" to load this file. \quit

-- An sql job runs its command as the job worker's role (kpi.worker_role, or
-- the bootstrap superuser): only a superuser, or a member of that role, may
-- write one, so that no one runs SQL with more rights than their own.
CREATE FUNCTION kpi_internal.check_sql_job_writer() RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wr text := nullif(current_setting('kpi.worker_role', true), '');
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN;
    END IF;
    IF wr IS NOT NULL AND EXISTS (SELECT FROM pg_roles r WHERE r.rolname = wr) AND pg_has_role(current_user, wr, 'MEMBER') THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'kpi.jobs: % may not create or change an sql job', current_user
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('An sql job runs its command as the job worker''s role (%s).',
                              coalesce(wr, 'the bootstrap superuser')),
              HINT = CASE WHEN wr IS NULL THEN 'Ask a superuser to add it, or set kpi.worker_role to a role you are a member of.'
                          ELSE format('Ask a superuser, or a member of %s, to add it.', wr) END;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_sql_job_writer() IS
    'Internal: raises 42501 unless the current user may write an sql job (a superuser, or a member of kpi.worker_role)';

CREATE OR REPLACE FUNCTION kpi_internal.jobs_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a new row's rollup or retention policy is not checked: kpi.add_rollup and
    -- kpi.add_retention make them together, and pg_restore loads kpi.jobs before the
    -- tables that reference it (their job_id keys); an UPDATE must name an existing one
    IF TG_OP = 'INSERT' OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.config IS DISTINCT FROM OLD.config THEN
        PERFORM kpi_internal.check_job(NEW.kind, NEW.config, refs => TG_OP = 'UPDATE');
        IF NEW.kind = 'sql' THEN
            PERFORM kpi_internal.check_sql_job_writer();
        END IF;
    END IF;
    IF NEW.schedule_cron IS NOT NULL THEN
        -- a cron schedule written without a zone is in the writer's TimeZone
        NEW.schedule_timezone := coalesce(NEW.schedule_timezone, current_setting('TimeZone'));
        PERFORM kpi_internal.check_cron('kpi.jobs', 'schedule_cron', NEW.schedule_cron);
        PERFORM kpi_internal.check_timezone('kpi.jobs', 'schedule_timezone', NEW.schedule_timezone);
    END IF;
    RETURN NEW;
END
$$;

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

-- Job kinds name the functions the worker calls (as its role, by default the
-- bootstrap superuser): only the extension and superusers register them.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON kpi.job_kinds FROM kpi_admin;
