-- kpi.timeseries: bucket choice, counts against the raw rows, summaries read
-- instead of raw rows, tags, empty data and bad input.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_bi;
CREATE DATABASE kpi_regress_bi;
\c kpi_regress_bi
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';
SET extra_float_digits = 0;

-- no rows: no buckets
INSERT INTO kpi.metric_definitions (metric) VALUES ('rt');
SELECT count(*) AS buckets FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02');

-- one value a minute for 6 hours (0..359), on hosts a and b alternately
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'rt', g, '2026-01-01 00:00+00'::timestamptz + g * interval '1 minute',
       jsonb_build_object('host', CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END)
FROM generate_series(0, 359) g;
-- 6 hours at 4 points: 90-minute buckets from raw rows (no rollup)
SELECT time, metric, series, count, avg, p50, min, max FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4);
-- one series
SELECT time, series, count, avg FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 2, '{"host": "a"}');
-- with a 1-minute and a 1-hour rollup the hour summaries are read: the 90-minute bucket is rounded up
-- to a whole number of hours (2), so the summaries regroup exactly
SELECT kpi.add_rollup('1 minute', lag => '0') AS minute \gset
SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0') AS hour \gset
SELECT status FROM kpi.run_job((SELECT job_id FROM kpi.rollups WHERE id = :minute));
SELECT status FROM kpi.run_job((SELECT job_id FROM kpi.rollups WHERE id = :hour));
SELECT time, count, avg, min, max FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4);
-- the same numbers without the raw rows: read from the summaries
CREATE TEMP TABLE before AS SELECT * FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4);
DELETE FROM kpi.metrics WHERE metric = 'rt';
SELECT count(*) AS buckets,
       (SELECT count(*) FROM (SELECT * FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4)
                              EXCEPT SELECT * FROM before) d) AS differences
FROM before;
-- a series without a rollup grouped by its tag has no summaries to read: nothing left
SELECT count(*) AS buckets FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4, '{"host": "a"}');
-- points are capped at 10000 (1-second buckets at least)
SELECT count(*) <= 10000 AS capped FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 1000000);

-- bad input: an ERROR naming the argument; an unknown metric: a NOTICE and no rows
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-02', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '-infinity', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02', 0)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02', 10, '[1]')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries(NULL, '2026-01-01', '2026-01-02')$$);
SELECT count(*) AS buckets FROM kpi.timeseries('nope', '2026-01-01', '2026-01-02');

-- Prometheus exposition: the active metrics' last windows as summaries, open alerts as ALERTS,
-- pg_kpi's health; names with quotes, backslashes and newlines are escaped
INSERT INTO kpi.metric_definitions (metric, measurement_window, warning, critical) VALUES
  (E'we"ird\\na\nme', '10 minutes', 50, 80), ('lat', '10 minutes', 50, 80);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT m, g, now() - interval '9 minutes' + g * interval '5 seconds', jsonb_build_object('k8s.pod', E'p"1')
FROM (VALUES (E'we"ird\\na\nme'), ('lat')) x(m), generate_series(0, 99) g;
SELECT line FROM regexp_split_to_table(kpi.prometheus_metrics(), E'\n') WITH ORDINALITY t(line, n)
WHERE line NOT LIKE 'kpi_rollup_lag_seconds%' AND line NOT LIKE 'kpi_job_runs_last_hour%'
  AND line NOT LIKE 'kpi_rows_ingested_last_minute %'   -- depends on the clock
ORDER BY n;
SELECT substring(kpi.prometheus_metrics() FROM 'kpi_rows_ingested_last_minute ([0-9]+)')::int > 0 AS rows_ingested;
SELECT pg_temp.try($$SELECT kpi.prometheus_metrics('infinity')$$);

\c postgres
DROP DATABASE kpi_regress_bi;
