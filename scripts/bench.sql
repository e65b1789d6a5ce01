-- Run by scripts/bench.sh. Prints each pg_kpi query's median time beside its native equivalent.
\set ON_ERROR_STOP 1
\pset footer off
CREATE EXTENSION pg_kpi;
CREATE EXTENSION tdigest;
SET max_parallel_workers_per_gather = 0;
SET jit = off;
SET work_mem = '1GB';
SELECT setseed(0.5);
-- lognormal-like latencies (Box-Muller), one row every 100 ms
CREATE UNLOGGED TABLE bench AS
SELECT exp(4.0 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS v,
       timestamptz '2026-01-01' + make_interval(secs => g * 0.1) AS ts
FROM generate_series(1, :rows) g;
VACUUM ANALYZE bench;
SELECT count(*) AS rows, pg_size_pretty(pg_relation_size('bench')) AS table_size FROM bench;

CREATE FUNCTION pg_temp.ms(q text, runs int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    EXECUTE q;  -- warm-up (caches)
    FOR i IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;

CREATE TEMP TABLE cases (ord int, what text, kpi text, native text, target text);
INSERT INTO cases VALUES
 (1, 'exact p50/p95/p99', 'SELECT kpi.percentiles(v, array[0.5,0.95,0.99]) FROM bench',
     'SELECT percentile_cont(array[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY v) FROM bench', '<= 0.5'),
 (2, 'sketch p50/p95/p99 vs tdigest', 'SELECT kpi.approx_percentiles(kpi.sketch_agg(v), array[0.5,0.95,0.99]) FROM bench',
     'SELECT tdigest_percentile(v, 100, array[0.5,0.95,0.99]) FROM bench', '<= 0.5'),
 (3, 'sketch p50/p95/p99 vs avg (scan floor)', 'SELECT kpi.approx_percentiles(kpi.sketch_agg(v), array[0.5,0.95,0.99]) FROM bench',
     'SELECT avg(v) FROM bench', '<= 1.5'),
 (4, 'trend slope', 'SELECT kpi.slope(kpi.trend_agg(ts, v)) FROM bench',
     'SELECT regr_slope(v, extract(epoch FROM ts)) FROM bench', '<= 0.33'),
 (5, 'summary (8 numbers)', 'SELECT kpi.summary_stats(v) FROM bench',
     'SELECT count(v), min(v), max(v), avg(v), percentile_cont(0.5) WITHIN GROUP (ORDER BY v), stddev(v), percentile_cont(0.95) WITHIN GROUP (ORDER BY v), percentile_cont(0.99) WITHIN GROUP (ORDER BY v) FROM bench', '<= 0.6');

SELECT what, round(k::numeric, 1) AS kpi_ms, round(n::numeric, 1) AS native_ms,
       round((k / n)::numeric, 3) AS ratio, target
FROM (SELECT ord, what, target, pg_temp.ms(kpi, :runs) AS k, pg_temp.ms(native, :runs) AS n FROM cases) r
ORDER BY ord;

\echo 'Observed relative error against the exact percentile_disc answer'
WITH exact AS (SELECT percentile_disc(array[0.5,0.95,0.99]) WITHIN GROUP (ORDER BY v) AS e FROM bench),
     sk AS (SELECT kpi.approx_percentiles(kpi.sketch_agg(v), array[0.5,0.95,0.99]) AS s FROM bench),
     td AS (SELECT tdigest_percentile(v, 100, array[0.5,0.95,0.99]) AS t FROM bench)
SELECT q, round((abs(s[i] - e[i]) / e[i])::numeric, 5) AS kpi_sketch_err,
       round((abs(t[i] - e[i]) / e[i])::numeric, 5) AS tdigest_err
FROM exact, sk, td, LATERAL (VALUES (1, 0.5), (2, 0.95), (3, 0.99)) AS qs(i, q);

\echo 'Sketch size for the first 1,000,000 rows at 1% relative error'
SELECT pg_column_size(s) AS bytes, kpi.sketch_error(s) AS error_bound
FROM (SELECT kpi.sketch_agg(v) AS s FROM (SELECT v FROM bench LIMIT 1000000) x) y;
