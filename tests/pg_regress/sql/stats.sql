-- Statistics: exact percentiles, sketches, summary, trend, anomaly, correlation.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
SET extra_float_digits = 0;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
CREATE TABLE pts AS
SELECT g::float8 AS v, timestamptz '2026-01-01 00:00:00+00' + make_interval(mins => g) AS ts
FROM generate_series(1, 1000) g;

-- exact percentiles agree with percentile_cont (duplicates, negatives, zero, one and two rows)
SELECT kpi.percentile(v, 0.95) AS p95, percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS native FROM pts;
SELECT kpi.percentiles(v, array[0, 0.5, 0.95, 0.99, 1]) FROM pts;
SELECT kpi.percentiles(v, array[0.25, 0.5]) = percentile_cont(array[0.25, 0.5]) WITHIN GROUP (ORDER BY v) AS same
FROM (VALUES (-3.0::float8), (0), (0), (7.5), (7.5), (-1)) x(v);
SELECT kpi.percentile(v, 0.5) FROM (VALUES (42.0::float8)) x(v);
SELECT kpi.percentile(v, 0.25) FROM (VALUES (1.0::float8), (3.0)) x(v);
SELECT kpi.percentile(v, 0.5) AS empty FROM pts WHERE false;
SELECT kpi.percentile(v, 0.5) AS nulls_skipped FROM (VALUES (NULL::float8), (1), (3)) x(v);
SELECT kpi.percentiles(v, array[0.5, NULL]) FROM pts;

-- sketches: two-step aggregation, merges, text round trip
SELECT kpi.approx_percentile(kpi.sketch_agg(v), 0.95) AS approx_p95,
       kpi.sketch_count(kpi.sketch_agg(v)) AS n, kpi.sketch_min(kpi.sketch_agg(v)) AS min,
       kpi.sketch_max(kpi.sketch_agg(v)) AS max, kpi.sketch_mean(kpi.sketch_agg(v)) AS mean,
       kpi.sketch_error(kpi.sketch_agg(v)) AS err
FROM pts;
SELECT kpi.approx_percentiles(kpi.sketch_agg(s), array[0.5, 0.99]) AS from_merged,
       kpi.approx_rank(kpi.sketch_agg(s), 500) AS rank_500
FROM (SELECT kpi.sketch_agg(v) AS s FROM pts GROUP BY v::int % 7) parts;
SELECT (SELECT kpi.sketch_agg(s)::text FROM (SELECT kpi.sketch_agg(v) AS s FROM pts GROUP BY v::int % 7) p)
     = (SELECT kpi.sketch_agg(v)::text FROM pts) AS merged_equals_union;
SELECT kpi.sketch_agg(v)::text FROM (VALUES (1.0::float8), (-2.0), (0.0)) x(v);
SELECT kpi.sketch_count('4b017b14ae47e17a843f0080200200000000000000f03f000000000000004010010000000000000c00020001230100'::kpi.sketch);
SELECT kpi.sketch_error(kpi.sketch_agg(v, 0.05)) FROM pts;
SELECT kpi.sketch_agg(v) IS NULL AS empty_is_null FROM pts WHERE false;

-- summary block
SELECT (kpi.summary_stats(v)).* FROM pts;
SELECT (kpi.summary_stats(v, 0.01)).* FROM pts;

-- trend
SELECT kpi.slope(t) AS per_second, kpi.slope(t, '1 hour') AS per_hour, kpi.trend_count(t) AS n,
       kpi.r2(t) AS r2, kpi.correlation(t) AS r, kpi.direction(t) AS direction, kpi.strength(t) AS strength,
       kpi.forecast(t, timestamptz '2026-01-02 00:00:00+00') AS at_midnight
FROM (SELECT kpi.trend_agg(ts, v) AS t FROM pts) x;
-- thresholds in the unit the caller means: per second, per an interval, or per sample
-- (one sample every 30 s rising by 0.05: 0.05 per sample, 0.1 per minute, 1/600 per second)
SELECT kpi.direction(t) AS per_second_0, kpi.direction(t, 0.002) AS per_second_0_002,
       kpi.direction(t, 0.05, '1 minute') AS per_minute_0_05, kpi.direction(t, 0.2, '1 minute') AS per_minute_0_2,
       round(kpi.slope_per_sample(t)::numeric, 9) AS per_sample, kpi.sample_direction(t) AS sample_0_1,
       kpi.sample_direction(t, 0.01) AS sample_0_01
FROM (SELECT kpi.trend_agg(timestamptz '2026-01-01' + g * interval '30 seconds', 0.05 * g) AS t
      FROM generate_series(0, 99) g) x;
SELECT kpi.slope(t), kpi.intercept(t), kpi.forecast(t, 10.0::float8)
FROM (SELECT kpi.trend_agg(g::float8, 2 * g + 1) AS t FROM generate_series(1, 5) AS g) z;
SELECT kpi.slope(kpi.trend_agg(t)) AS merged_slope
FROM (SELECT kpi.trend_agg(ts, v) AS t FROM pts GROUP BY v::int % 3) parts;
SELECT kpi.slope(kpi.trend_agg(1.0::float8, v)) AS no_x_variance, kpi.slope(kpi.trend_agg(v, v)) AS one_point
FROM (VALUES (5.0::float8)) x(v);
SELECT kpi.trend_slope(array[1, 3, 5]::float8[]), kpi.trend_slope(array[7]::float8[]), kpi.trend_slope(array[1, NULL, 5]::float8[]);
SELECT kpi.trend_agg(v, v)::text FROM (VALUES (1.0::float8), (2.0)) x(v);

-- anomalies (window function pattern) and correlation test
SELECT kpi.zscore(10, 5, 2), kpi.zscore(1, 1, 0) AS zero_sd,
       kpi.anomaly_level(2.9), kpi.anomaly_level(3), kpi.anomaly_level(-4.5), kpi.anomaly_level(5, 6, 8);
SELECT ts, v, kpi.anomaly_level(kpi.zscore(v, avg(v) OVER w, stddev_pop(v) OVER w)) AS level
FROM (SELECT ts, CASE WHEN g = 30 THEN 100 ELSE (g % 3)::float8 END AS v
      FROM generate_series(1, 30) g, LATERAL (SELECT timestamptz '2026-01-01' + make_interval(mins => g) AS ts) t) s
WINDOW w AS (ORDER BY ts ROWS BETWEEN 29 PRECEDING AND CURRENT ROW)
ORDER BY ts DESC LIMIT 2;
SELECT (kpi.correlation_test(x, y)).*
FROM (VALUES (1.0::float8, 2.0::float8), (2, 4), (3, 5), (4, 4), (5, 5)) d(x, y);
SELECT (kpi.correlation_test(x, y, 0.2)).significant
FROM (VALUES (1.0::float8, 2.0::float8), (2, 4), (3, 5), (4, 4), (5, 5)) d(x, y);

-- every aggregate runs as Partial/Finalize Aggregate under parallel query
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT kpi.percentiles(v, array[0.5]), kpi.sketch_agg(v), kpi.trend_agg(ts, v),
       kpi.summary_stats(v), kpi.correlation_test(v, v)
FROM pts;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- bad input
SELECT pg_temp.try($$SELECT kpi.percentile(v, 1.5) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.percentile(v, 'NaN') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.percentiles(v, '{}') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.percentiles(v, NULL) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.percentiles(v, array[0.5, 2]) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.percentile(v, v / 1000) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.sketch_agg(v, 0) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.sketch_agg(v, 0.6) FROM pts$$);
-- below 1e-6 γ rounds towards 1 (this used to fail with a Rust panic); the finest error keeps
-- values across the whole float range in a bounded sketch
SELECT pg_temp.try($$SELECT kpi.sketch_agg(v, 1e-20) FROM pts$$);
SELECT kpi.sketch_count(s), kpi.sketch_min(s), kpi.sketch_max(s), round(kpi.sketch_error(s)::numeric, 6) AS error_bound,
       abs(kpi.approx_percentile(s, 0.5) - 1) <= kpi.sketch_error(s) + 1e-9 AS median_within_bound
FROM (SELECT kpi.sketch_agg(v, 1e-6) AS s FROM (VALUES (1e-300::float8), (1), (1e300)) t(v)) x;
SELECT pg_temp.try($$SELECT kpi.sketch_agg(v) FROM (VALUES ('NaN'::float8)) x(v)$$);
SELECT pg_temp.try($$SELECT kpi.approx_percentile(kpi.sketch_agg(v), 2) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.approx_percentiles(kpi.sketch_agg(v), '{}') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.sketch_agg(s) FROM (SELECT kpi.sketch_agg(v, 0.01) s FROM pts UNION ALL SELECT kpi.sketch_agg(v, 0.02) FROM pts) x$$);
SELECT pg_temp.try($$SELECT 'deadbeef'::kpi.sketch$$);
SELECT pg_temp.try($$SELECT 'zz'::kpi.sketch$$);
SELECT pg_temp.try($$SELECT '4b017b14ae47e17a843f00802002'::kpi.sketch$$);
SELECT pg_temp.try($$SELECT '5401'::kpi.trend$$);
SELECT pg_temp.try($$SELECT kpi.trend_agg(v, 'Infinity') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.slope(kpi.trend_agg(v, v), '-1 hour') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.anomaly_level(3, 5, 4)$$);
SELECT pg_temp.try($$SELECT kpi.anomaly_level(1, NULL)$$);
SELECT pg_temp.try($$SELECT kpi.anomaly_level(1, 3, NULL)$$);
SELECT pg_temp.try($$SELECT kpi.correlation_test(v, v, 1.5) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.approx_rank(kpi.sketch_agg(v), 'NaN') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.summary_stats(v, v / 10000) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.summary_stats(v, 0.01) FROM (VALUES ('Infinity'::float8)) x(v)$$);
SELECT pg_temp.try($$SELECT kpi.trend_agg(ts, v) FROM (VALUES ('infinity'::timestamptz, 1.0::float8)) x(ts, v)$$);
SELECT pg_temp.try($$SELECT kpi.direction(kpi.trend_agg(v, v), -1) FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.direction(kpi.trend_agg(v, v), 1, '0 s') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.sample_direction(kpi.trend_agg(v, v), 'NaN') FROM pts$$);
SELECT pg_temp.try($$SELECT kpi.trend_slope(array[1, 'NaN']::float8[])$$);
SELECT kpi.forecast(kpi.trend_agg(ts, v), 'infinity'::timestamptz) AS forecast_at_infinity,
       kpi.zscore('NaN', 1, 1) AS z_nan, kpi.anomaly_level(NULL) AS level_null,
       kpi.direction(kpi.trend_agg(v, v)) AS direction_one_point
FROM (SELECT ts, v FROM pts LIMIT 1) one;
SELECT kpi.approx_percentile(NULL, 0.5), kpi.slope(NULL), kpi.zscore(NULL, 1, 1);

-- values near the float8 limit: exact mean and stddev, or 22003 as PostgreSQL's aggregates
SELECT (s).count, (s).mean, round(((s).stddev / 1e308)::numeric, 12) AS stddev_e308
FROM (SELECT kpi.summary_stats(v) s FROM (VALUES (1e308::float8), (-1e308), (1e308), (-1e308)) x(v)) q;
SELECT pg_temp.try($$SELECT kpi.summary_stats(v, 0.01) FROM (VALUES (1e308::float8), (-1e308)) x(v)$$);
SELECT kpi.sketch_mean(kpi.sketch_agg(v)) FROM (VALUES (1.5e308::float8), (1.5e308), (1.5e308)) x(v);
SELECT pg_temp.try($$SELECT kpi.trend_agg(x, y) FROM (VALUES (1::float8, 1e308::float8), (2, -1e308)) v(x, y)$$);
SELECT pg_temp.try($$SELECT kpi.correlation_test(x, y) FROM (VALUES (1e308::float8, 1e308::float8), (-1e308, 2), (5, -1e308)) v(x, y)$$);
SELECT (kpi.correlation_test(x, y)).r FROM (VALUES (1::float8, 1::float8), (2, 3), (3, 1), (4, 3), (5, 1)) v(x, y);

DROP EXTENSION pg_kpi;
