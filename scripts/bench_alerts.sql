-- Run by scripts/bench.sh. COPY into kpi.metrics with the alert trigger doing
-- its work, beside the same COPY with kpi.trigger_alerts off (and, for
-- reference, with the trigger disabled). Each run is its own transaction.
\set ON_ERROR_STOP 1
\pset footer off
SET jit = off;
SELECT setseed(0.25);

-- 100 metrics, half lower-is-better and half higher-is-better
INSERT INTO kpi.metric_definitions (metric, category, unit, direction, optimal, good, warning, critical)
SELECT format('m%s', lpad(i::text, 3, '0')), 'response_time', 'ms',
       CASE WHEN i % 2 = 0 THEN 'lower_is_better' ELSE 'higher_is_better' END,
       CASE WHEN i % 2 = 0 THEN 100 ELSE 1000 END, CASE WHEN i % 2 = 0 THEN 200 ELSE 500 END,
       CASE WHEN i % 2 = 0 THEN 500 ELSE 200 END, CASE WHEN i % 2 = 0 THEN 1000 ELSE 100 END
FROM generate_series(0, 99) i;

-- 1M rows over one hour, 10 hosts per metric; about 2% of the rows breach
CREATE UNLOGGED TABLE bench_copy_src AS
SELECT format('m%s', lpad((g % 100)::text, 3, '0')) AS metric,
       CASE WHEN g % 2 = 0 THEN 120 * exp(0.35 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))
            ELSE 800 / exp(0.22 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) END AS value,
       timestamptz '2026-01-01' + make_interval(secs => g * 0.0036) AS ts,
       jsonb_build_object('host', 'h' || (g / 100) % 10) AS tags
FROM generate_series(1, :copy_rows) g;
\set copy_file '/tmp/pg_kpi_bench_copy.csv'
COPY bench_copy_src TO :'copy_file' (FORMAT csv);
-- the same rows scaled so that about half of them breach (the bands' edges at the median)
\set copy_file_half '/tmp/pg_kpi_bench_copy_half.csv'
COPY (SELECT metric, CASE WHEN right(metric, 1)::int % 2 = 0 THEN value * 200 / 120 ELSE value * 500 / 800 END,
             ts, tags FROM bench_copy_src) TO :'copy_file_half' (FORMAT csv);
SELECT count(*) AS rows,
       round(100.0 * count(*) FILTER (WHERE kpi.severity(metric, value) >= 'warning') / count(*), 2) AS pct_breaching,
       round(100.0 * count(*) FILTER (WHERE kpi.severity(metric, CASE WHEN right(metric, 1)::int % 2 = 0
                                                                  THEN value * 200 / 120 ELSE value * 500 / 800 END) >= 'warning')
             / count(*), 2) AS pct_breaching_half_file
FROM bench_copy_src;

CREATE TABLE bench_copy_times (run int, share text, mode text, ms float8);
CREATE PROCEDURE bench_copy(runs int, file text, share text) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; mode text;
BEGIN
    FOR r IN 0..runs LOOP  -- run 0 warms caches and is not recorded
        FOREACH mode IN ARRAY array['trigger on', 'kpi.trigger_alerts off', 'trigger disabled'] LOOP
            TRUNCATE kpi.metrics, kpi.alerts;
            IF mode = 'trigger disabled' THEN
                ALTER TABLE kpi.metrics DISABLE TRIGGER metrics_raise_alerts;
            END IF;
            PERFORM set_config('kpi.trigger_alerts', CASE WHEN mode = 'kpi.trigger_alerts off' THEN 'off' ELSE 'on' END, false);
            COMMIT;
            t0 := clock_timestamp();
            EXECUTE format('COPY kpi.metrics (metric, value, ts, tags) FROM %L (FORMAT csv)', file);
            COMMIT;
            IF r > 0 THEN
                INSERT INTO bench_copy_times VALUES (r, share, mode, extract(epoch FROM clock_timestamp() - t0) * 1000);
            END IF;
            ALTER TABLE kpi.metrics ENABLE TRIGGER metrics_raise_alerts;
            COMMIT;
        END LOOP;
    END LOOP;
    SET kpi.trigger_alerts = on;
END $$;
CALL bench_copy(:runs, :'copy_file', 'few rows breaching');
CALL bench_copy(:runs, :'copy_file_half', 'half the rows breaching');

\echo 'COPY of the rows above into kpi.metrics (median of the runs; ratio against kpi.trigger_alerts off, targets <= 1.10 with few rows breaching, <= 1.25 with half)'
WITH med AS (
    SELECT share, mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM bench_copy_times GROUP BY share, mode
)
SELECT m.share, m.mode, round(m.ms::numeric, 0) AS ms,
       round((m.ms / o.ms)::numeric, 3) AS ratio_vs_off
FROM med m JOIN med o ON o.share = m.share AND o.mode = 'kpi.trigger_alerts off'
ORDER BY m.share DESC, m.ms DESC;

-- single-row INSERT statements, one transaction each (synchronous_commit off so that
-- the flush does not hide the trigger's cost)
CREATE TABLE bench_single_times (mode text, rows text, us float8);
CREATE PROCEDURE bench_single(n int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; mode text; v float8;
BEGIN
    SET synchronous_commit = off;
    FOREACH mode IN ARRAY array['trigger on', 'kpi.trigger_alerts off'] LOOP
        FOREACH v IN ARRAY array[120, 700] LOOP
            TRUNCATE kpi.metrics, kpi.alerts;
            PERFORM set_config('kpi.trigger_alerts', CASE WHEN mode = 'trigger on' THEN 'on' ELSE 'off' END, false);
            COMMIT;
            t0 := clock_timestamp();
            FOR i IN 1..n LOOP
                INSERT INTO kpi.metrics (metric, value, ts, tags)
                VALUES ('m000', v, timestamptz '2026-01-01' + make_interval(secs => i), '{"host": "h0"}');
                COMMIT;
            END LOOP;
            INSERT INTO bench_single_times
            VALUES (mode, CASE WHEN v = 120 THEN 'no breach' ELSE 'breach (updates an open alert)' END,
                    extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);
            COMMIT;
        END LOOP;
    END LOOP;
    SET kpi.trigger_alerts = on;
    RESET synchronous_commit;
END $$;
CALL bench_single(20000);
\echo 'Single-row INSERT statements into kpi.metrics, one transaction each (microseconds per statement)'
SELECT t.rows, round(t.us::numeric, 1) AS trigger_on_us, round(o.us::numeric, 1) AS off_us,
       round((t.us - o.us)::numeric, 1) AS added_us
FROM bench_single_times t JOIN bench_single_times o USING (rows)
WHERE t.mode = 'trigger on' AND o.mode = 'kpi.trigger_alerts off'
ORDER BY t.rows DESC;

\echo 'Alerts raised by one more COPY of the same rows with the trigger on:'
TRUNCATE kpi.metrics, kpi.alerts;
COPY kpi.metrics (metric, value, ts, tags) FROM :'copy_file' (FORMAT csv);
SELECT count(*) AS alerts, count(*) FILTER (WHERE state = 'firing') AS firing, sum(occurrences) AS breaches
FROM kpi.alerts;
\! rm -f /tmp/pg_kpi_bench_copy.csv /tmp/pg_kpi_bench_copy_half.csv
