-- Run by scripts/bench.sh. Alert rules: one evaluation cycle (kpi.evaluate_alerts)
-- of 100, 1,000 and 10,000 rules on 100 metrics of 10 hosts, beside one plain
-- GROUP BY computing the same windows' values (the rules' 1-minute windows and
-- the zscore rules' 4-minute baselines), then with twice the rows; and a
-- backtest of one rule over one day at 15-second steps.
\set ON_ERROR_STOP 1
\pset footer off
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
SELECT setseed(0.5);
SET kpi.trigger_alerts = off;
SET kpi.max_future = -1;
UPDATE kpi.jobs SET enabled = false;
SELECT kpi.create_partitions(now() - interval '2 days', now() + interval '1 day') IS NOT NULL AS partitions;

-- rows arriving in time order over the 5 minutes before "at", 100 metrics x 10 hosts,
-- values around 50 (sd 10)
CREATE TEMP TABLE bench_at AS SELECT date_trunc('second', now()) - interval '1 second' AS at;
CREATE PROCEDURE bench_load(n bigint) LANGUAGE sql AS $$
    INSERT INTO kpi.metrics (metric, value, ts, tags)
    SELECT 'm' || lpad((g % 100)::text, 3, '0'), 50 + 10 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()),
           (SELECT at FROM bench_at) - interval '5 minutes' + (g + random()) * (interval '5 minutes' / n),
           jsonb_build_object('host', 'h' || (g / 100) % 10)
    FROM generate_series(0, n - 1) g;
$$;
CALL bench_load(:rules_rows);
VACUUM ANALYZE kpi.metrics;

-- n rules: ten aggregates (one in ten a zscore, two percentiles) with thresholds
-- that about 2 % of the series cross
CREATE PROCEDURE bench_rules(n int) LANGUAGE sql AS $$
    DELETE FROM kpi.alert_rules;
    TRUNCATE kpi.alerts, kpi.notifications;
    SELECT count(kpi.add_alert_rule(
        name => 'r' || i, metric => 'm' || lpad((i % 100)::text, 3, '0'), aggregate => a.aggregate,
        "window" => '1 minute', comparator => a.cmp, warning => a.threshold + (i / 1000) * 0.01,
        group_by => '{host}', baseline => '4 minutes'))
    FROM generate_series(0, n - 1) i
    JOIN (VALUES (0, 'avg', '>', 51.5), (1, 'max', '>', 86), (2, 'p95', '>', 69.5), (3, 'zscore', '>', 0.15),
                 (4, 'rate', '>', 4), (5, 'min', '<', 14), (6, 'p99', '>', 78), (7, 'count', '<', 150),
                 (8, 'last', '>', 70.5), (9, 'stddev', '>', 11.03)) a(k, aggregate, cmp, threshold)
      ON a.k = (i / 100) % 10;
$$;

CREATE TABLE bench_rule_times (what text, rules int, rows bigint, run int, ms float8);
-- one cycle of the rules, and the plain GROUP BY of the same windows' values
CREATE PROCEDURE bench_cycle(n int, runs int) LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := (SELECT b.at FROM bench_at b);
    t0 timestamptz;
    rows bigint := (SELECT count(*) FROM kpi.metrics);
BEGIN
    CALL bench_rules(n);
    COMMIT;
    FOR r IN 0..runs LOOP  -- run 0 warms caches (and opens the alerts) and is not recorded
        t0 := clock_timestamp();
        PERFORM count(*) FROM kpi.evaluate_alerts(at);
        COMMIT;
        IF r > 0 THEN
            INSERT INTO bench_rule_times VALUES ('pg_kpi', n, rows, r, extract(epoch FROM clock_timestamp() - t0) * 1000);
        END IF;
        t0 := clock_timestamp();
        PERFORM count(*) FROM (
            SELECT metric, tags -> 'host', avg(value), min(value), max(value), count(*), stddev_samp(value),
                   (array_agg(value ORDER BY ts DESC))[1],
                   percentile_cont(ARRAY[0.95, 0.99]) WITHIN GROUP (ORDER BY value)
            FROM kpi.metrics WHERE ts > at - interval '1 minute' AND ts <= at GROUP BY 1, 2) w;
        PERFORM count(*) FROM (
            SELECT metric, tags -> 'host', avg(value), stddev_samp(value)
            FROM kpi.metrics WHERE ts > at - interval '5 minutes' AND ts <= at - interval '1 minute' GROUP BY 1, 2) b;
        IF r > 0 THEN
            INSERT INTO bench_rule_times VALUES ('GROUP BY', n, rows, r, extract(epoch FROM clock_timestamp() - t0) * 1000);
        END IF;
        COMMIT;
    END LOOP;
END $$;
CALL bench_cycle(100, :runs);
CALL bench_cycle(1000, :runs);
CALL bench_cycle(10000, :runs);
SELECT count(*) AS open_alerts, count(*) FILTER (WHERE state = 'firing') AS firing FROM kpi.alerts \gset
CALL bench_load(:rules_rows);
VACUUM ANALYZE kpi.metrics;
CALL bench_cycle(1000, :runs);

\echo 'One evaluation cycle of the alert rules (median of the runs) beside one plain GROUP BY computing the same windows'' values (target: ratio <= 1.5 at 1,000 rules, cycle under 1 s)'
WITH med AS (
    SELECT what, rules, rows, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms
    FROM bench_rule_times GROUP BY 1, 2, 3
)
SELECT p.rules, p.rows, round(p.ms::numeric, 0) AS pg_kpi_ms, round(g.ms::numeric, 0) AS group_by_ms,
       round((p.ms / g.ms)::numeric, 2) AS ratio
FROM med p JOIN med g USING (rules, rows)
WHERE p.what = 'pg_kpi' AND g.what = 'GROUP BY'
ORDER BY p.rows, p.rules;
\echo 'Alerts open after the 10,000-rule cycles:' :open_alerts ', firing:' :firing

-- backtest: one rule (avg over 1 minute by host, "for" 2 minutes) over one day
-- of one row per second, evaluated every 15 seconds
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'bt', 50 + 40 * sin(g / 3000.0) + random() * 10, (SELECT at FROM bench_at) - interval '1 day' + g * interval '1 second',
       jsonb_build_object('host', 'h' || g % 3)
FROM generate_series(0, 86399) g;
VACUUM ANALYZE kpi.metrics;
CREATE TABLE bench_backtest_times (run int, ms float8, rows bigint);
CREATE PROCEDURE bench_backtest(runs int) LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := (SELECT b.at FROM bench_at b);
    t0 timestamptz;
    n bigint;
BEGIN
    FOR r IN 0..runs LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO n FROM kpi.backtest_rule(
            '{"metric": "bt", "aggregate": "avg", "window": "1 minute", "comparator": ">", "warning": 80,
              "critical": 90, "for": "2 minutes", "group_by": ["host"]}'::jsonb, at - interval '1 day', at);
        IF r > 0 THEN
            INSERT INTO bench_backtest_times VALUES (r, extract(epoch FROM clock_timestamp() - t0) * 1000, n);
        END IF;
    END LOOP;
END $$;
CALL bench_backtest(:runs);
\echo 'Backtest of one rule (3 series) over one day at 15-second steps (5,761 evaluations, raw rows; median of the runs)'
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 0) AS ms, max(rows) AS rows_returned
FROM bench_backtest_times;

-- the same day backtested with a 1-hour p95 window, once from raw rows and once
-- from 1-minute summaries (complete buckets from kpi.summaries, the ends raw)
CREATE TABLE bench_backtest_long (source text, run int, ms float8, rows bigint);
CREATE PROCEDURE bench_backtest_long(runs int, source text) LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := (SELECT b.at FROM bench_at b);
    t0 timestamptz;
    n bigint;
BEGIN
    FOR r IN 0..runs LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO n FROM kpi.backtest_rule(
            '{"metric": "bt", "aggregate": "p95", "window": "1 hour", "comparator": ">", "warning": 85,
              "group_by": ["host"]}'::jsonb, at - interval '1 day' + interval '1 hour', at);
        IF r > 0 THEN
            INSERT INTO bench_backtest_long VALUES (source, r, extract(epoch FROM clock_timestamp() - t0) * 1000, n);
        END IF;
    END LOOP;
END $$;
CALL bench_backtest_long(:runs, 'raw rows');
SELECT kpi.add_rollup('1 minute', metrics => 'bt', group_by_tags => '{host}', lag => '0') AS bt_rollup \gset
SELECT kpi.refresh(:bt_rollup, (SELECT at FROM bench_at) - interval '1 day', (SELECT at FROM bench_at)) > 0 AS refreshed;
UPDATE kpi.rollups SET watermark = kpi.bucket('1 minute', (SELECT at FROM bench_at)) WHERE id = :bt_rollup;
CALL bench_backtest_long(:runs, '1-minute summaries');
\echo 'Backtest of a 1-hour p95 rule (3 series) over one day at 15-second steps (5,521 evaluations; median of the runs)'
SELECT source, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 0) AS ms, max(rows) AS rows_returned
FROM bench_backtest_long GROUP BY source ORDER BY source DESC;
