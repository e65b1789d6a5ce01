-- Ingestion: kpi.record, kpi.record_batch, and the table's own checks.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
-- show SQLSTATE and message of a statement that fails
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

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

DROP EXTENSION pg_kpi;
