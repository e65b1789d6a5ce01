-- Ingestion: what every statement that writes kpi.metrics goes through, whatever
-- the path (kpi.record, kpi.record_batch, INSERT, multi-row INSERT, COPY, an
-- INSERT from a function or a trigger). Row-level rules live in the table's CHECK
-- constraints (sql/schema.sql); the rules that need now() or another table, and the
-- change log the rollups read, live in one statement-level trigger per event with a
-- transition table, so a COPY of a million rows costs one set-based pass.

-- One row per writing statement: the time range it touched. Rollups move the
-- ranges into their invalidations (sql/rollups.sql); written only while a rollup
-- reads raw rows.
CREATE TABLE kpi.metric_changes (
    lo  timestamptz NOT NULL,
    hi  timestamptz NOT NULL
);
COMMENT ON TABLE kpi.metric_changes IS
    'internal: time range written by each statement on kpi.metrics since the last rollup run';
SELECT pg_catalog.pg_extension_config_dump('kpi.metric_changes', '');

-- kpi.max_future as an interval (NULL: no limit). The setting is read as text so
-- that this works in a backend that has not loaded the library (its default applies).
CREATE FUNCTION kpi._max_future() RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN s IS NULL OR s = '' THEN interval '1 hour'
                WHEN s ~ '^-' THEN NULL
                ELSE s::interval END
    FROM (SELECT current_setting('kpi.max_future', true) AS s) x
$$;

-- Rejects rows further than kpi.max_future ahead of now() and, with
-- kpi.require_definitions on, rows of metrics without a definition; then logs
-- the statement's time range for the rollups.
CREATE FUNCTION kpi._metrics_after_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    ahead interval;
    bad record;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM kpi.rollups WHERE source_rollup IS NULL) THEN
            INSERT INTO kpi.metric_changes VALUES ('-infinity', 'infinity');
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        SELECT min(o.ts), max(o.ts) INTO lo, hi FROM old_rows o;
    ELSE
        SELECT min(n.ts), max(n.ts) INTO lo, hi FROM new_rows n;
        IF hi IS NULL THEN
            RETURN NULL;  -- no rows
        END IF;
        ahead := kpi._max_future();
        IF ahead IS NOT NULL AND hi > now() + ahead THEN
            SELECT n.metric, n.ts INTO bad FROM new_rows n ORDER BY n.ts DESC LIMIT 1;
            RAISE EXCEPTION 'kpi.metrics: ts % of metric "%" is more than kpi.max_future (%) ahead of now()',
                bad.ts, bad.metric, current_setting('kpi.max_future', true)
                USING ERRCODE = 'datetime_field_overflow',
                      HINT = 'Future timestamps are usually epoch milliseconds taken as seconds or a wrong clock; raise kpi.max_future (-1 removes the limit) to store them.';
        END IF;
        IF coalesce(current_setting('kpi.require_definitions', true), 'off')::boolean THEN
            SELECT n.metric INTO bad FROM new_rows n
            WHERE NOT EXISTS (SELECT 1 FROM kpi.metric_definitions d WHERE d.metric = n.metric)
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'kpi.metrics: metric "%" has no definition in kpi.metric_definitions', bad.metric
                    USING ERRCODE = 'foreign_key_violation',
                          DETAIL = 'kpi.require_definitions is on, so rows of undefined metrics are rejected.',
                          HINT = 'Check the metric name for a typo, or define it: INSERT INTO kpi.metric_definitions (metric, ...) VALUES (...).';
            END IF;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            SELECT least(lo, min(o.ts)), greatest(hi, max(o.ts)) INTO lo, hi FROM old_rows o;
        END IF;
    END IF;
    IF lo IS NOT NULL AND EXISTS (SELECT 1 FROM kpi.rollups WHERE source_rollup IS NULL) THEN
        INSERT INTO kpi.metric_changes VALUES (lo, hi);
    END IF;
    RETURN NULL;
END
$$;
-- named so that they fire before the alert trigger (triggers fire in name order)
CREATE TRIGGER metrics_checked_inserts AFTER INSERT ON kpi.metrics
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kpi._metrics_after_write();
CREATE TRIGGER metrics_checked_updates AFTER UPDATE ON kpi.metrics
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kpi._metrics_after_write();
CREATE TRIGGER metrics_logged_deletes AFTER DELETE ON kpi.metrics
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION kpi._metrics_after_write();
CREATE TRIGGER metrics_logged_truncates AFTER TRUNCATE ON kpi.metrics
    FOR EACH STATEMENT EXECUTE FUNCTION kpi._metrics_after_write();
