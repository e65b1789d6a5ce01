-- Reports: sparklines, kpi.report and kpi.metric_trend on empty and seeded
-- data, their errors, and that they read summaries when a rollup covers the range.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_reports;
CREATE DATABASE kpi_regress_reports;
\c kpi_regress_reports
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';
SET extra_float_digits = 0;

-- sparklines: lowest to highest, gaps for NULL and non-finite, flat when constant
SELECT kpi.sparkline(ARRAY[1, 2, 3, 4, 5, 6, 7, 8]) AS rising,
       kpi.sparkline(ARRAY[0, NULL, 10, 'NaN', 5]::float8[]) AS gaps,
       kpi.sparkline(ARRAY[3, 3, 3]) AS flat,
       kpi.sparkline(ARRAY[]::float8[]) = '' AS empty,
       kpi.sparkline(NULL) IS NULL AS null_in_null_out;

-- bad input: an ERROR naming the argument
SELECT pg_temp.try($$SELECT * FROM kpi.report(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.report('rt', '-1 hour')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.report('rt', '1 day', '1 month')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.report('rt', '1 day', '0 seconds')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.report('rt', '1000 days', '1 second')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.report('rt', '1 day', '1 hour', 'infinity')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_trend('rt', '1 day', '1 hour', now(), -1)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_trend('rt', '1 day', '1 hour', now(), 0.1, 1)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_trend('rt', '1 day', NULL)$$);
SELECT pg_temp.try($$SELECT kpi.prediction_interval(kpi.trend_agg(x, x), to_timestamp(1), 0) FROM generate_series(1, 3) x$$);
SELECT pg_temp.try($$SELECT kpi.prediction_interval(kpi.trend_agg(x, x), to_timestamp(1), 'NaN') FROM generate_series(1, 3) x$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_trend('rt', '1 day', '1 hour', now(), 'NaN')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_trend('rt', '1 day', '1 hour', now(), 0.1, 'NaN')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_correlation('rt', 'rt', '1 day', '1 hour', now(), 'NaN')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_summary('rt', NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.metric_summary('rt', '-1 day')$$);
SELECT kpi.sparkline(ARRAY['Infinity', 1, 2, '-Infinity']::float8[]) AS infinities_are_gaps;

-- empty data: a NOTICE for the unknown metric, empty buckets, no error
SELECT * FROM kpi.report('rt', '3 hours', '1 hour', '2026-01-01 02:30:00+00');
SELECT * FROM kpi.metric_trend('rt', '1 day', '1 hour', '2026-01-01 02:30:00+00');

-- seeded: one row a minute for two hours, values 0..119
INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical, direction)
VALUES ('rt', 10, 30, 60, 100, 'lower_is_better');
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'rt', g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(0, 119) g;
SELECT * FROM kpi.report('rt', '3 hours', '1 hour', '2026-01-01 02:30:00+00');
-- the percentiles are the sketch's, within its 1 % relative error of the exact ones
SELECT r.bucket, abs(r.p95 - e.p95) <= 0.01 * e.p95 AS p95_within_1pct, abs(r.p50 - e.p50) <= 0.01 * e.p50 AS p50_within_1pct
FROM kpi.report('rt', '3 hours', '1 hour', '2026-01-01 02:30:00+00') r
JOIN (SELECT date_trunc('hour', ts) AS bucket, percentile_disc(0.95) WITHIN GROUP (ORDER BY value)::numeric AS p95,
             percentile_disc(0.5) WITHIN GROUP (ORDER BY value)::numeric AS p50
      FROM kpi.metrics WHERE metric = 'rt' GROUP BY 1) e USING (bucket);

-- the summary endpoint: 0..119 has mean 59.5 and sample stddev sqrt(120 * 121 / 12) = 34.7850542618522;
-- median and p95 are the sketch's, within 1 % of the exact 59 and 113 (percentile_disc)
SELECT metric, from_ts, to_ts, count, min, max, mean, round(stddev::numeric, 10) AS stddev,
       abs(median - 59) <= 0.59 AS median_ok, abs(p95 - 113) <= 1.13 AS p95_ok, spark
FROM kpi.metric_summary('rt', '3 hours', '2026-01-01 02:30:00+00');
-- two hours compared: means 29.5 and 89.5, variances 305 each; Welch t = -60 / sqrt(2 * 305 / 60) = -18.8175,
-- df = 118 (equal sizes and variances)
SELECT a_count, a_mean, b_count, b_mean, mean_change, round(mean_change_pct::numeric, 4) AS mean_change_pct,
       round(t::numeric, 4) AS t, round(df::numeric, 4) AS df, p_value < 1e-30 AS p_tiny, significant
FROM kpi.compare_periods('rt', '2026-01-01 00:00+00', '2026-01-01 01:00+00', '2026-01-01 01:00+00', '2026-01-01 02:00+00');
-- the same hour twice: no difference
SELECT mean_change, t, p_value, significant
FROM kpi.compare_periods('rt', '2026-01-01 00:00+00', '2026-01-01 01:00+00', '2026-01-01 00:00+00', '2026-01-01 01:00+00');
-- an empty period: counts 0, no test
SELECT a_count, b_count, t, significant
FROM kpi.compare_periods('rt', '2025-01-01 00:00+00', '2025-01-01 01:00+00', '2026-01-01 00:00+00', '2026-01-01 01:00+00');
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', '2026-01-02', '2026-01-01', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', NULL, '2026-01-01', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', '2026-01-01', 'infinity', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods(NULL, '2026-01-01', '2026-01-02', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', '2026-01-01', '2026-01-02', '2026-01-01', '2026-01-02', 1.5)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', '2026-01-01', '2026-01-02', '2026-01-01', '2026-01-02', 'NaN')$$);
-- correlation of per-bucket means: a metric and an affine copy of it (r = 1), and a reversed one (r = -1)
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'rt2', 2 * g + 1, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(0, 119) g
UNION ALL
SELECT 'rt3', -g, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(0, 119) g;
SELECT round(r::numeric, 10) AS r, n, p_value < 1e-10 AS p_tiny, significant
FROM kpi.metric_correlation('rt', 'rt2', '3 hours', '10 minutes', '2026-01-01 02:30:00+00');
SELECT round(r::numeric, 10) AS r, n FROM kpi.metric_correlation('rt', 'rt3', '3 hours', '10 minutes', '2026-01-01 02:30:00+00');
SELECT r, n FROM kpi.metric_correlation('rt', 'nothing', '3 hours', '10 minutes', '2026-01-01 02:30:00+00');
SELECT pg_temp.try($$SELECT * FROM kpi.metric_correlation('rt', NULL)$$);

-- the performance report: rt (0..119, one a minute: slope 1 a minute) as a response time, rt3 (-rt) as an
-- error rate; each recommendation just above its cut-off, and none at it
SELECT jsonb_pretty(kpi.performance_report('2026-01-01 00:00+00', '2026-01-01 02:00+00', ARRAY['rt', 'rt3'],
                                           response_time_metrics => ARRAY['rt'], utilization_metrics => ARRAY['rt'],
                                           error_rate_metrics => ARRAY['rt3'], p95_response_time_limit => 100,
                                           utilization_limit => 59, error_rate_limit => -60,
                                           trend_strength_limit => 0.99) -> 'recommendations');
SELECT jsonb_array_length(kpi.performance_report('2026-01-01 00:00+00', '2026-01-01 02:00+00', ARRAY['rt', 'rt3'],
                                                 response_time_metrics => ARRAY['rt'], utilization_metrics => ARRAY['rt'],
                                                 error_rate_metrics => ARRAY['rt3'], p95_response_time_limit => 120,
                                                 utilization_limit => 59.5, error_rate_limit => -59.5,
                                                 trend_strength_limit => 1) -> 'recommendations') AS none_at_the_cutoffs;
SELECT m->>'metric' AS metric, m->'count' AS count, m->'mean' AS mean, m->'min' AS min, m->'max' AS max,
       round((m->>'stddev')::numeric, 6) AS stddev, m->'trend'->>'direction' AS direction,
       round((m->'trend'->>'slope_per_minute')::numeric, 6) AS per_minute,
       round((m->'trend'->>'forecast_1h')::numeric, 4) AS forecast_1h
FROM jsonb_array_elements(kpi.performance_report('2026-01-01 00:00+00', '2026-01-01 02:00+00', ARRAY['rt', 'rt3', 'nothing'])
                          -> 'metrics') m;
-- the same as a table for psql (the same cut-offs as arguments)
SELECT * FROM kpi.performance_table('2026-01-01 00:00+00', '2026-01-01 02:00+00', ARRAY['rt', 'rt3', 'nothing'],
                                    response_time_metrics => ARRAY['rt'], error_rate_metrics => ARRAY['rt3'],
                                    p95_response_time_limit => 100, error_rate_limit => -60);
SELECT * FROM kpi.performance_table('2030-01-01', '2030-01-02', ARRAY['rt']) AS empty_period;
SELECT kpi.performance_report('2030-01-01', '2030-01-02', ARRAY['rt']) - 'from' - 'to' AS empty_period;
SELECT pg_temp.try($$SELECT kpi.performance_report('2026-01-02', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT kpi.performance_report(NULL, '2026-01-01')$$);

-- the dashboard: key metrics of the 5 minutes before 02:00 (rt 115..119, rt2 = 2 rt + 1, rt3 = -rt),
-- health from the definitions, open alerts, and pg_kpi's own health
SELECT jsonb_pretty(kpi.dashboard('2026-01-01 02:00:00+00', '5 minutes', response_time => 'rt', throughput => 'rt2',
                                  error_rate => 'rt3', availability => 'lin') - 'at');
SELECT kpi.dashboard('2025-01-01 00:00:00+00', '5 minutes') -> 'metrics' -> 'response_time' AS nothing_yet;
SELECT pg_temp.try($$SELECT kpi.dashboard(NULL)$$);
SELECT pg_temp.try($$SELECT kpi.dashboard(now(), '0 seconds')$$);
SELECT pg_temp.try($$SELECT kpi.dashboard('infinity')$$);

-- a trend through hourly means 2 h + 10: slope 2 per hour, correlation 1, next value 58
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'lin', 2 * h + 10, '2026-01-01 00:00:00+00'::timestamptz + h * interval '1 hour' FROM generate_series(0, 23) h;
SELECT metric, points, direction, strength, slope, correlation, next_bucket, next_value, next_low, next_high, spark
FROM kpi.metric_trend('lin', '1 day', '1 hour', '2026-01-01 23:30:00+00');
-- below the threshold (per bucket) it is stable
SELECT direction FROM kpi.metric_trend('lin', '1 day', '1 hour', '2026-01-01 23:30:00+00', threshold => 2.5);
-- the prediction interval against scipy (linregress over x 0..9, 95 % at x = 12)
SELECT round(x[1]::numeric, 6) AS low, round(x[2]::numeric, 6) AS high
FROM (SELECT kpi.prediction_interval(kpi.trend_agg(x::float8, y), to_timestamp(12)) AS x
      FROM unnest(ARRAY[1, 3, 2, 5, 4, 6, 8, 7, 9, 10]::float8[]) WITH ORDINALITY AS v(y, x1),
           LATERAL (SELECT x1 - 1 AS x) p) q;

-- with a covering rollup the reports read its summaries: the same answer once the raw rows are gone
SELECT kpi.add_rollup('1 minute', metrics => 'rt', lag => '0') AS minute \gset
SELECT status FROM kpi.run_job((SELECT job_id FROM kpi.rollups WHERE id = :minute));
SELECT kpi_internal.report_resolution('rt', '1 hour') AS reads, kpi_internal.report_resolution('lin', '1 hour') AS lin_reads;
-- exact over unaligned bounds: whole summary buckets inside, raw rows at the ends
SELECT s.count = e.n AS count_ok, s.sum = e.s AS sum_ok, s.min = e.lo AND s.max = e.hi AS extremes_ok,
       abs(s.stddev - e.sd) < 1e-9 * e.sd AS stddev_ok
FROM kpi_internal.range_stats('rt', '2026-01-01 00:07:30+00', '2026-01-01 01:52:10+00') s,
     (SELECT count(*) AS n, sum(value) AS s, min(value) AS lo, max(value) AS hi, stddev_samp(value) AS sd
      FROM kpi.metrics WHERE metric = 'rt' AND ts >= '2026-01-01 00:07:30+00' AND ts < '2026-01-01 01:52:10+00') e;
CREATE TEMP TABLE before AS SELECT * FROM kpi.report('rt', '30 days', '1 hour', '2026-01-01 02:30:00+00');
CREATE TEMP TABLE summary_before AS SELECT * FROM kpi.metric_summary('rt', '30 days', '2026-01-01 02:30:00+00');
CREATE TEMP TABLE trend_before AS SELECT * FROM kpi.metric_trend('rt', '30 days', '1 hour', '2026-01-01 02:30:00+00');
CREATE TEMP TABLE compare_before AS
SELECT * FROM kpi.compare_periods('rt', '2025-12-02 02:30+00', '2026-01-01 01:00+00', '2026-01-01 01:00+00', '2026-01-01 02:30+00');
CREATE TEMP TABLE perf_before AS
SELECT kpi.performance_report('2026-01-01 02:30:00+00'::timestamptz - interval '30 days', '2026-01-01 02:30:00+00', ARRAY['rt']) AS r;
DELETE FROM kpi.metrics WHERE metric = 'rt';
SELECT count(*) AS buckets, sum(count) AS rows,
       (SELECT count(*) FROM (SELECT * FROM kpi.report('rt', '30 days', '1 hour', '2026-01-01 02:30:00+00')
                              EXCEPT SELECT * FROM before) d) AS differences
FROM before;
SELECT (SELECT row(t.*)::text FROM kpi.metric_trend('rt', '30 days', '1 hour', '2026-01-01 02:30:00+00') t)
     = (SELECT row(t.*)::text FROM trend_before t) AS same_trend,
       (SELECT row(t.*)::text FROM kpi.metric_summary('rt', '30 days', '2026-01-01 02:30:00+00') t)
     = (SELECT row(t.*)::text FROM summary_before t) AS same_summary,
       (SELECT kpi.performance_report('2026-01-01 02:30:00+00'::timestamptz - interval '30 days', '2026-01-01 02:30:00+00', ARRAY['rt']))
     = (SELECT r FROM perf_before) AS same_performance_report,
       (SELECT (r->'metrics'->0->>'count')::int FROM perf_before) AS performance_report_count,
       (SELECT row(c.*)::text FROM kpi.compare_periods('rt', '2025-12-02 02:30+00', '2026-01-01 01:00+00',
                                                      '2026-01-01 01:00+00', '2026-01-01 02:30+00') c)
     = (SELECT row(c.*)::text FROM compare_before c) AS same_comparison;

-- a bucket that "at" cuts counts only the rows before "at", also when a summary covers it
-- (values every 10 s: the 00:01 minute has 3 rows before 00:01:30, 6 in all)
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'cut', i, '2026-01-01 00:00+00'::timestamptz + i * interval '10 seconds' FROM generate_series(0, 17) i;
SELECT kpi.add_rollup('1 minute', metrics => 'cut', lag => '0') AS cut_rollup \gset
SELECT status FROM kpi.run_job((SELECT job_id FROM kpi.rollups WHERE id = :cut_rollup));
SELECT bucket, count FROM kpi.report('cut', '2 minutes', '1 minute', '2026-01-01 00:01:30+00');
SELECT bucket, count, materialized FROM kpi.series('cut', '1 minute', '2026-01-01 00:00+00', '2026-01-01 00:01:30+00');
-- an aligned "at" ends the report at the bucket before it
SELECT count(*) AS buckets, max(bucket) AS last FROM kpi.report('cut', '2 minutes', '1 minute', '2026-01-01 00:02:00+00');

-- a range that starts before the raw rows' retention horizon says so, and reports what summaries keep
SELECT kpi.add_retention('metrics', '7 days') > 0 AS policy;
UPDATE kpi.retention_policies SET horizon = '2026-01-01 03:00+00' WHERE target = 'metrics';
SELECT bucket, count FROM kpi.report('rt', '3 hours', '1 hour', '2026-01-01 02:30:00+00') WHERE count > 0;
SELECT a_count, b_count FROM kpi.compare_periods('rt', '2026-01-01 00:00+00', '2026-01-01 01:00+00', '2026-01-01 01:00+00', '2026-01-01 02:00+00');

-- cut-offs are checked: NULL 22004, NaN, infinite or negative where a size is meant 22023
SELECT pg_temp.try($$SELECT kpi.performance_report(now() - interval '1 hour', now(), trend_threshold => 'NaN')$$);
SELECT pg_temp.try($$SELECT kpi.performance_report(now() - interval '1 hour', now(), trend_threshold => -1)$$);
SELECT pg_temp.try($$SELECT kpi.performance_report(now() - interval '1 hour', now(), p95_response_time_limit => NULL)$$);
SELECT pg_temp.try($$SELECT kpi.performance_report(now() - interval '1 hour', now(), p95_response_time_limit => '-Infinity')$$);
SELECT pg_temp.try($$SELECT kpi.performance_table(now() - interval '1 hour', now(), trend_strength_limit => -0.5)$$);
-- period b of a comparison is checked like period a
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', '2026-01-01 00:00+00', '2026-01-01 01:00+00', '-infinity', '2026-01-01 01:00+00')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', now() - interval '1 hour', now(), 'infinity', 'infinity')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.compare_periods('rt', now() - interval '1 hour', now(), now() - interval '1 hour', now(), NULL)$$);
-- the dashboard of a future instant is an error
SELECT pg_temp.try($$SELECT kpi.dashboard('2100-01-01 00:00+00')$$);
-- 24 sparkline steps over the period
SELECT metric, length(spark) AS steps FROM kpi.performance_table('2026-01-01 00:00+00', '2026-01-01 02:00+00', ARRAY['rt']);

\c postgres
DROP DATABASE kpi_regress_reports;
