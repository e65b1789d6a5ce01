-- Run by scripts/bench.sh. Rollups: materializing :rollup_rows raw rows into
-- 1-minute summaries (with sketch and trend) beside a plain INSERT ... SELECT
-- ... GROUP BY minute with count/sum/avg/min/max/stddev only; p95 per hour over
-- a day from the summaries beside percentile_cont over the raw rows; and an
-- incremental run that finds 10,000 new rows.
\set ON_ERROR_STOP 1
\pset footer off
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SET kpi.trigger_alerts = off;
SET kpi.rollup_batch_buckets = 100000;
SELECT setseed(0.42);

TRUNCATE kpi.metrics;
SELECT kpi.create_partitions('2026-01-01', '2026-01-02') >= 0 AS partitions;
-- one day, 20 metrics, log-normal latencies
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'm' || (g % 20), exp(4 + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
       '2026-01-01'::timestamptz + (g::float8 / :rollup_rows) * interval '1 day'
FROM generate_series(0, :rollup_rows - 1) g;
VACUUM ANALYZE kpi.metrics;

-- the rollup's job stays paused so that the worker does not run it meanwhile
BEGIN;
SELECT kpi.add_rollup('1 minute', lag => '0') AS rid \gset
SELECT kpi.pause_job(job_id) FROM kpi.rollups WHERE id = :rid;
COMMIT;
CREATE UNLOGGED TABLE bench_plain (metric text, bucket timestamptz, count bigint, sum float8, avg float8,
                                   min float8, max float8, stddev float8);

CREATE FUNCTION pg_temp.ms(q text, runs int, reset text DEFAULT NULL) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    FOR i IN 1..runs LOOP
        IF reset IS NOT NULL THEN EXECUTE reset; END IF;
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;

CREATE TEMP TABLE results AS
SELECT pg_temp.ms('INSERT INTO bench_plain SELECT metric, date_bin(''1 minute'', ts, ''2000-01-01 00:00+00''), count(*), sum(value), avg(value), min(value), max(value), stddev_samp(value) FROM kpi.metrics GROUP BY 1, 2',
                  :runs, 'TRUNCATE bench_plain') AS plain,
       -- both sides start from an empty target table: the plain side is truncated,
       -- the summaries too (the rollup's own bookkeeping is left as it is)
       pg_temp.ms(format('SELECT kpi.refresh(%s, ''2026-01-01'', ''2026-01-02'')', :rid), :runs,
                  'TRUNCATE kpi.summaries') AS kpi,
       -- and replacing a day that is already materialized (delete + insert of every bucket)
       pg_temp.ms(format('SELECT kpi.refresh(%s, ''2026-01-01'', ''2026-01-02'')', :rid), :runs) AS again;
\echo 'Rolling the raw rows into 1-minute summaries (median ms; target ratio <= 1.3)'
SELECT :rollup_rows AS raw_rows, round(kpi::numeric) AS "kpi.refresh (with sketch and trend)",
       round(plain::numeric) AS "INSERT ... GROUP BY minute (6 plain aggregates)",
       round((kpi / plain)::numeric, 2) AS ratio
FROM results;
\echo 'Refreshing the same day again: every bucket is deleted and rewritten (median ms)'
SELECT round(again::numeric) AS "kpi.refresh over existing summaries", round((again / plain)::numeric, 2) AS ratio
FROM results;
SELECT count(*) AS summary_rows, sum(count) AS rows_summarized FROM kpi.summaries;
ANALYZE kpi.summaries;

\echo 'p95 per hour over a day for one metric (median ms; target speed-up >= 20)'
WITH t AS (
    SELECT pg_temp.ms($q$SELECT kpi.bucket('1 hour', bucket), kpi.approx_percentile(kpi.sketch_agg(sketch), 0.95)
                         FROM kpi.summaries WHERE metric = 'm7' AND resolution = '1 minute'
                          AND series = '{}' AND bucket >= '2026-01-01' AND bucket < '2026-01-02' GROUP BY 1$q$, :runs) AS kpi,
           pg_temp.ms($q$SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00'), percentile_cont(0.95) WITHIN GROUP (ORDER BY value)
                         FROM kpi.metrics WHERE metric = 'm7' AND ts >= '2026-01-01' AND ts < '2026-01-02' GROUP BY 1$q$, :runs) AS raw
)
SELECT round(kpi::numeric, 2) AS "from 1-minute summaries", round(raw::numeric, 2) AS "percentile_cont over raw rows",
       round((raw / kpi)::numeric, 1) AS speedup
FROM t;
\echo 'largest relative difference of those 24 hourly p95s'
SELECT round(max(abs(a.p - b.p) / b.p)::numeric, 4) AS max_relative_error
FROM (SELECT kpi.bucket('1 hour', bucket) AS h, kpi.approx_percentile(kpi.sketch_agg(sketch), 0.95) AS p
      FROM kpi.summaries WHERE metric = 'm7' AND resolution = '1 minute' GROUP BY 1) a
JOIN (SELECT date_bin('1 hour', ts, '2000-01-01 00:00+00') AS h, percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p
      FROM kpi.metrics WHERE metric = 'm7' GROUP BY 1) b USING (h);

-- incremental: the rollup is caught up; 10,000 rows arrive for a recent 10 minutes
SELECT kpi.create_partitions() >= 0 AS partitions;
SELECT status FROM kpi.run_job((SELECT job_id FROM kpi.rollups WHERE id = :rid));
CREATE FUNCTION pg_temp.incremental(runs int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}'; jid bigint;
BEGIN
    SELECT job_id INTO jid FROM kpi.rollups LIMIT 1;
    FOR i IN 1..runs LOOP
        INSERT INTO kpi.metrics (metric, value, ts)
        SELECT 'm' || (g % 20), random() * 100, now() - (i + 1) * interval '10 minutes' + g * interval '60 milliseconds'
        FROM generate_series(1, 10000) g;
        t0 := clock_timestamp();
        PERFORM kpi.run_job(jid);
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;
\echo 'An incremental run that finds 10,000 new rows (median ms; target well under 1000)'
SELECT round(pg_temp.incremental(:runs)::numeric, 1) AS ms;
