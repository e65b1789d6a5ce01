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
-- a zoomed-in range (buckets narrower than the finest rollup) reads that rollup's summaries
SELECT count(*) AS buckets, sum(count) AS samples, min(time), max(time)
FROM kpi.timeseries('rt', '2026-01-01 01:00+00', '2026-01-01 01:10+00', 500);
-- a series without a rollup grouped by its tag has no summaries to read: nothing left
SELECT count(*) AS buckets FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 4, '{"host": "a"}');
-- points are capped at 10000 (1-second buckets at least)
SELECT count(*) <= 10000 AS capped FROM kpi.timeseries('rt', '2026-01-01 00:00+00', '2026-01-01 06:00+00', 1000000);

-- bad input, an unknown metric too: an ERROR naming the argument
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-02', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '-infinity', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02', 0)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02', 10, '[1]')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.timeseries(NULL, '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT count(*) FROM kpi.timeseries('nope', '2026-01-01', '2026-01-02')$$);

-- Prometheus exposition: the active metrics' last windows as summaries, open alerts as ALERTS,
-- pg_kpi's health; names with quotes, backslashes and newlines are escaped
INSERT INTO kpi.metric_definitions (metric, measurement_window, warning, critical) VALUES
  (E'we"ird\\na\nme', '10 minutes', 50, 80), ('lat', '10 minutes', 50, 80);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT m, g, now() - interval '9 minutes' + g * interval '5 seconds', jsonb_build_object('k8s.pod', E'p"1')
FROM (VALUES (E'we"ird\\na\nme'), ('lat')) x(m), generate_series(0, 99) g;
SELECT line FROM regexp_split_to_table(kpi.prometheus_metrics(), E'\n') WITH ORDINALITY t(line, n)
WHERE line NOT LIKE 'kpi_rollup_lag_seconds%' AND line NOT LIKE 'kpi_job_runs_last_hour%'
  AND line NOT LIKE 'kpi_rollup_behind_seconds{%'
  AND line NOT LIKE 'kpi_rows_ingested_last_minute %'   -- depends on the clock
  AND line NOT LIKE 'kpi_worker_up %'                   -- on the launcher
ORDER BY n;
SELECT substring(kpi.prometheus_metrics() FROM 'kpi_rows_ingested_last_minute ([0-9]+)')::int > 0 AS rows_ingested;
-- label names that collide once made valid, empty ones and reserved ones (__*): each name once, the others dropped
INSERT INTO kpi.metrics (metric, value, tags) VALUES ('lat', 99, '{"k8s.pod": "a", "k8s_pod": "b", "": "e", "__name__": "evil", "severity": "x"}');
SELECT line FROM regexp_split_to_table(kpi.prometheus_metrics(), E'\n') line WHERE line LIKE 'ALERTS{%k8s_pod="a"%';
SELECT pg_temp.try($$SELECT kpi.prometheus_metrics('infinity')$$);
SELECT substring(kpi.prometheus_metrics() FROM 'kpi_worker_up ([01])') IN ('0', '1') AS worker_up;

-- the HTML report: one document, a chart and a timeline per metric, names escaped
-- in HTML (no markup of theirs survives), nothing executable or fetched
INSERT INTO kpi.metric_definitions (metric, unit, description, warning, critical)
VALUES ('<script>alert(1)</script>', '<b>ms</b>', 'a "quoted" & <i>marked up</i> description', 300, 500);
INSERT INTO kpi.metrics (metric, value, ts)
SELECT '<script>alert(1)</script>', 100 + g % 50 + CASE WHEN g % 60 = 0 THEN 500 ELSE 0 END,
       now() - interval '2 hours' + g * interval '1 minute'
FROM generate_series(0, 119) g;
CREATE TEMP TABLE report AS
SELECT kpi.html_report(now() - interval '3 hours', now(), ARRAY['<script>alert(1)</script>', 'lat']) AS doc;
SELECT doc LIKE '<!DOCTYPE html>%</html>' AS whole_document,
       (length(doc) - length(replace(doc, '<svg', ''))) / 4 AS svgs,
       (length(doc) - length(replace(doc, '<section class="metric">', ''))) / 24 AS sections,
       position('<script' IN doc) = 0 AS no_script,
       position('<b>' IN doc) = 0 AND position('<i>' IN doc) = 0 AS no_markup_from_data,
       position('&lt;script&gt;alert(1)&lt;/script&gt;' IN doc) > 0 AS name_escaped,
       position('a &quot;quoted&quot; &amp; &lt;i&gt;marked up&lt;/i&gt; description' IN doc) > 0 AS description_escaped,
       doc ~ 'https?://(?!www\.w3\.org/2000/svg)' AS fetches_something,
       position('stroke="#1F77B4"' IN doc) > 0 AND position('stroke="#D62728"' IN doc) > 0 AS has_p50_and_p95_lines
FROM report;
-- every active metric when metrics is NULL, in the order given otherwise, each once
SELECT (length(d) - length(replace(d, '<section class="metric">', ''))) / 24 AS sections
FROM kpi.html_report(now() - interval '3 hours', now()) d;
SELECT position('<h2>lat' IN d) < position('<h2>&lt;script' IN d) AS in_given_order,
       (length(d) - length(replace(d, '<section class="metric">', ''))) / 24 AS sections
FROM kpi.html_report(now() - interval '3 hours', now(), ARRAY['lat', '<script>alert(1)</script>', 'lat']) d;
SELECT pg_temp.try($$SELECT kpi.html_report('2026-01-02', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.html_report(NULL, now())$$);
SELECT pg_temp.try($$SELECT kpi.html_report('-infinity', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.html_report('2999-01-01', '2999-01-02')$$);
SELECT pg_temp.try($$SELECT kpi.html_report(now() - interval '1 hour', now(), '{}')$$);
SELECT pg_temp.try($$SELECT kpi.html_report(now() - interval '1 hour', now(), ARRAY['lat', NULL])$$);
SELECT pg_temp.try($$SELECT kpi.html_report(now() - interval '1 hour', now(), ARRAY['nope'])$$);
SELECT pg_temp.try($$SELECT kpi.html_report(now() - interval '1 hour', now(), (SELECT array_agg('m' || g) FROM generate_series(1, 101) g))$$);

-- the Grafana-shaped views: "time" first, one row per time and series, numeric values
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'kpi.metric_series'::regclass AND attnum > 0 ORDER BY attnum;
SELECT "time", metric, series, resolution, count, avg, min, max FROM kpi.metric_series
WHERE metric = 'rt' ORDER BY "time", resolution LIMIT 3;
SELECT attname FROM pg_attribute WHERE attrelid = 'kpi.alert_series'::regclass AND attnum > 0 ORDER BY attnum;
SELECT "check", item, unit, status FROM kpi.engine_health ORDER BY 1, 2;
SELECT d, kpi_internal.duration_text(d::interval) FROM unnest(ARRAY['90 seconds', '1 minute', '1 hour', '1 day', '7 days', '1.5 seconds', '0']) d;
-- NULL tags are 22004; periods beyond the years 1..99999 are refused naming the arguments
SELECT pg_temp.try($$SELECT count(*) FROM kpi.timeseries('rt', '2026-01-01', '2026-01-02', 10, NULL)$$);
SELECT pg_temp.try($$SELECT count(*) FROM kpi.timeseries('rt', '4713-01-01 BC', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT count(*) FROM kpi.timeseries('rt', '2026-01-01', '294276-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.html_report('4713-01-01 BC', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT kpi.prometheus_metrics(NULL)$$);

\c postgres
DROP DATABASE kpi_regress_bi;
