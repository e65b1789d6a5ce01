-- Ingestion: kpi.record, kpi.record_batch, and the table's own checks.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql

SELECT kpi.record('api_response_time', 120.5, '2026-01-01 00:00:00+00', '{"host": "web-1"}', '{"endpoint": "/orders"}') > 0 AS recorded;
SELECT metric, value, ts AT TIME ZONE 'UTC' AS ts, tags, metadata FROM kpi.metrics ORDER BY id;

SELECT kpi.record_batch('[{"metric_name": "error_rate", "value": 2.5, "timestamp": "2026-01-01T00:01:00Z", "tags": {"host": "web-2"}},
                          {"metric": "cpu_utilization", "value": 91, "timestamp": 1767225720},
                          {"metric": "cpu_utilization", "value": -0.5, "timestamp": "2026-01-01 00:03:00+00", "metadata": null}]');
SELECT kpi.record_batch('{"metric": "single", "value": 1, "timestamp": "2026-01-01T00:04:00Z"}');
SELECT kpi.record_batch('[]');
SELECT metric, value, ts AT TIME ZONE 'UTC' AS ts, tags, metadata FROM kpi.metrics ORDER BY id;

-- bad input: each error names the field (and the batch index) with a specific SQLSTATE
SELECT pg_temp.try($$SELECT kpi.record('a', NULL)$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 'NaN')$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 'Infinity')$$);
SELECT pg_temp.try($$SELECT kpi.record('a', '-Infinity')$$);
SELECT pg_temp.try($$SELECT kpi.record(NULL, 1)$$);
SELECT pg_temp.try($$SELECT kpi.record('', 1)$$);
SELECT pg_temp.try($$SELECT kpi.record(repeat('x', 256), 1)$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 1, now(), '[1, 2]')$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 1, now(), '{}', '"text"')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1}, {"metric": "a", "value": null}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1}, {"metric": "a", "value": "12"}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "timestamp": "not a time"}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "timestamp": 1e300}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "tags": "x"}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "", "value": 1}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"value": 1}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[1]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('"x"')$$);
SET kpi.max_batch_size = 2;
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1}, {"metric": "a", "value": 2}, {"metric": "a", "value": 3}]')$$);
RESET kpi.max_batch_size;
SHOW kpi.max_batch_size;
-- the plain INSERT / COPY path is guarded by the table's CHECK constraints
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value) VALUES ('a', 'NaN')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value) VALUES ('', 1)$$);
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value, tags) VALUES ('a', 1, '[]')$$);
-- nothing from the failed calls was stored
SELECT count(*) FROM kpi.metrics;

-- metric definitions: thresholds must be monotone in the metric's direction
INSERT INTO kpi.metric_definitions (metric, category, unit, direction, optimal, good, warning, critical)
VALUES ('api_response_time', 'response_time', 'ms', 'lower_is_better', 100, 200, 500, 1000),
       ('system_availability', 'availability', '%', 'higher_is_better', 99.99, 99.95, 99.90, 99.80),
       ('throughput_rps', 'throughput', 'req/s', 'higher_is_better', NULL, 1000, 500, 100);
SELECT metric, direction, optimal, good, warning, critical, active FROM kpi.metric_definitions ORDER BY metric;
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical) VALUES ('x', 100, 200, 150, 1000)$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, direction, optimal, good) VALUES ('y', 'higher_is_better', 90, 95)$$);
SELECT pg_temp.try($$UPDATE kpi.metric_definitions SET critical = 50 WHERE metric = 'api_response_time'$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, direction) VALUES ('z', 'sideways')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, optimal) VALUES ('n', 'NaN')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, alert_cooldown) VALUES ('c', '-5 minutes')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metric_definitions (metric, optimal) VALUES (NULL, 1)$$);

-- infinite thresholds (the replaced configuration's "no bound") mean "no such band"
INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical)
VALUES ('throughput_inf', 'higher_is_better', 'Infinity', 1000, 500, 100);
SELECT optimal, good FROM kpi.metric_definitions WHERE metric = 'throughput_inf';
SELECT kpi.severity('throughput_inf', 5000) AS at_5000, kpi.severity('throughput_inf', 700) AS at_700;
SELECT kpi.severity(5000, '-Infinity', 1000, 500, 100, 'higher_is_better') AS inline_infinite;

-- Every ingestion path raises the same alerts and logs the same changes:
-- kpi.record, kpi.record_batch, INSERT, multi-row INSERT, COPY, INSERT from a
-- function and from a trigger, one series (host tag) per path.
BEGIN;
SET LOCAL timezone = 'UTC';
INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical)
VALUES ('error_rate', 'lower_is_better', 0.1, 0.5, 1, 5);
SELECT kpi.add_rollup('1 minute', metrics => 'error_rate') IS NOT NULL AS rollup;
UPDATE kpi.rollups SET watermark = '2026-01-01';  -- as after a first run
CREATE FUNCTION pg_temp.insert_one(h text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 3, '2026-01-01 00:10', jsonb_build_object('host', h)) $$;
CREATE TABLE pg_temp.staging (host text);
CREATE FUNCTION pg_temp.staging_to_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 3, '2026-01-01 00:10', jsonb_build_object('host', NEW.host));
    RETURN NEW;
END $$;
CREATE TRIGGER staging_to_metrics AFTER INSERT ON pg_temp.staging FOR EACH ROW EXECUTE FUNCTION pg_temp.staging_to_metrics();
SELECT kpi.record('error_rate', 3, '2026-01-01 00:10', '{"host": "record"}') > 0 AS recorded;
SELECT kpi.record_batch('[{"metric": "error_rate", "value": 3, "timestamp": "2026-01-01T00:10:00Z", "tags": {"host": "record_batch"}}]');
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 3, '2026-01-01 00:10', '{"host": "insert"}');
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 0.2, '2026-01-01 00:09', '{"host": "multi"}'),
    ('error_rate', 3, '2026-01-01 00:10', '{"host": "multi"}');
COPY kpi.metrics (metric, value, ts, tags) FROM STDIN;
error_rate	3	2026-01-01 00:10:00+00	{"host": "copy"}
\.
SELECT pg_temp.insert_one('function');
INSERT INTO pg_temp.staging VALUES ('trigger');
SELECT labels->>'host' AS path, severity, state, occurrences FROM kpi.alerts ORDER BY 1;
SELECT count(*) AS logged_changes, min(lo) AS lo, max(hi) AS hi FROM kpi_internal.metric_changes;
ROLLBACK;

-- timestamps: kpi.max_future (default 1 hour) rejects rows far ahead on every
-- path (22008), with a hint when the number looks like milliseconds
SHOW kpi.max_future;
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric_name": "a", "value": 1, "timestamp": 1767225720000}]')$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 1, '2100-01-01 00:00+00')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value, ts) VALUES ('a', 1, '2100-01-01 00:00+00')$$);
SELECT pg_temp.try($$UPDATE kpi.metrics SET ts = '2100-01-01 00:00+00' WHERE metric = 'api_response_time'$$);
SELECT pg_temp.try($$COPY kpi.metrics (metric, value, ts) FROM PROGRAM 'echo a,1,2100-01-01' WITH (FORMAT csv)$$);
SELECT kpi.record('a', 1, now() + interval '30 minutes') > 0 AS within_the_hour;
SET kpi.max_future = -1;
SELECT kpi.record('a', 1, now() + interval '2 days') > 0 AS no_limit;
RESET kpi.max_future;
DELETE FROM kpi.metrics WHERE metric = 'a';
-- "timestamp_ms" takes milliseconds; a zone-less text timestamp is UTC whatever the session's zone
SHOW timezone;
SELECT kpi.record_batch('[{"metric": "ms", "value": 1, "timestamp_ms": 1767225720000},
                          {"metric": "zoneless", "value": 1, "timestamp": "2026-01-01 00:02:00"},
                          {"metric": "zoned", "value": 1, "timestamp": "2026-01-01 00:02:00+02"}]');
SELECT metric, ts AT TIME ZONE 'UTC' AS utc FROM kpi.metrics WHERE metric IN ('ms', 'zoneless', 'zoned') ORDER BY metric;
SHOW timezone;
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "timestamp_ms": 1767225720000, "timestamp": 1767225720}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "timestamp_ms": "1767225720000"}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1, "timestmap": "2026-01-01T00:00:00Z"}]')$$);
SELECT pg_temp.try($$SELECT kpi.record('a', 1, 'infinity')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value, ts) VALUES ('a', 1, '-infinity')$$);

-- kpi.require_definitions: rows of undefined metrics are rejected (23503) on every path
SET kpi.require_definitions = on;
SELECT pg_temp.try($$SELECT kpi.record('api_respnse_time', 1)$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "api_respnse_time", "value": 1}]')$$);
SELECT pg_temp.try($$INSERT INTO kpi.metrics (metric, value) VALUES ('api_response_time', 1), ('api_respnse_time', 1)$$);
SELECT kpi.record('api_response_time', 1) > 0 AS defined_is_fine;
RESET kpi.require_definitions;
SELECT count(*) FROM kpi.metrics WHERE metric = 'api_respnse_time';

-- JSON PostgreSQL accepts but a float8 cannot hold: stored as it came, or a specific error
SELECT kpi.record('big_tags', 1, now(), '{"n": 1e1000}') > 0 AS stored;
SELECT length(tags->>'n') FROM kpi.metrics WHERE metric = 'big_tags';
SELECT pg_temp.try($$SELECT kpi.record('a', 1, now(), '"text"')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch('[{"metric": "a", "value": 1e1000}]')$$);
SELECT pg_temp.try($$SELECT kpi.record_batch((repeat('[', 200) || repeat(']', 200))::jsonb)$$);

DROP EXTENSION pg_kpi;
