-- Run by scripts/bench.sh (ONLY=reports). Reports over 100 metrics with one
-- value a minute for 30 days (4.32 million rows) rolled up into 1-minute and
-- 1-hour summaries: kpi.performance_report over 24 hours and 30 days beside
-- the same statistics computed by one plain GROUP BY over the raw rows,
-- kpi.report and kpi.metric_summary of one metric, and kpi.dashboard with
-- 10,000 open alerts, and kpi.business_value_report over 30 days of 5,000
-- customers beside one GROUP BY of the same revenue rows by segment (the
-- least any such report reads), and kpi.kpi_status of 1,000 KPIs beside a
-- GROUP BY of their last hour, and kpi.capacity_forecast over 90 days beside
-- regr_slope over the raw rows. Medians of :runs runs after a warm-up.
\set ON_ERROR_STOP 1
\pset footer off
SET jit = off;
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
SET kpi.trigger_alerts = off;
SET kpi.max_future = -1;
SET kpi.rollup_batch_buckets = 10000000;
SELECT setseed(0.5);
UPDATE kpi.jobs SET enabled = false;
CREATE TEMP TABLE bench_at AS SELECT date_trunc('hour', now()) AS at;
SELECT kpi.create_partitions((SELECT at FROM bench_at) - interval '31 days', (SELECT at FROM bench_at) + interval '1 day') IS NOT NULL AS partitions;
INSERT INTO kpi.metric_definitions (metric, warning, critical)
SELECT 'm' || lpad(i::text, 3, '0'), 80, 95 FROM generate_series(0, 99) i;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'm' || lpad(i::text, 3, '0'), 50 + 10 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + m * 0.0002,
       (SELECT at FROM bench_at) - interval '30 days' + m * interval '1 minute'
FROM generate_series(0, 30 * 1440 - 1) m, generate_series(0, 99) i;
VACUUM ANALYZE kpi.metrics;
SELECT kpi.add_rollup('1 minute', lag => '0') AS minute \gset
SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0') AS hour \gset
SELECT kpi.refresh(:minute, (SELECT at FROM bench_at) - interval '30 days', (SELECT at FROM bench_at)) AS minute_buckets;
SELECT kpi.refresh(:hour, (SELECT at FROM bench_at) - interval '30 days', (SELECT at FROM bench_at)) AS hour_buckets;
UPDATE kpi.rollups SET watermark = (SELECT at FROM bench_at);
VACUUM ANALYZE kpi.summaries;

CREATE TABLE bench_report_times (what text, who text, run int, ms float8);
CREATE PROCEDURE bench_time(what text, who text, sql text, runs int) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR r IN 0..runs LOOP
        t0 := clock_timestamp();
        EXECUTE sql;
        IF r > 0 THEN
            INSERT INTO bench_report_times VALUES (what, who, r, extract(epoch FROM clock_timestamp() - t0) * 1000);
        END IF;
    END LOOP;
END
$$;
\set metrics '(SELECT array_agg(''m'' || lpad(i::text, 3, ''0'')) FROM generate_series(0, 99) i)'
SELECT format($$SELECT kpi.performance_report(%L::timestamptz - interval '24 hours', %L, %s)$$, at, at, :'metrics') AS pr24,
       format($$SELECT kpi.performance_report(%L::timestamptz - interval '30 days', %L, %s)$$, at, at, :'metrics') AS pr30,
       format($$SELECT metric, count(*), min(value), max(value), avg(value), stddev_samp(value),
                       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value),
                       regr_slope(value, extract(epoch FROM ts)), corr(value, extract(epoch FROM ts))
                FROM kpi.metrics WHERE ts >= %L::timestamptz - interval '24 hours' AND ts < %L GROUP BY metric$$, at, at) AS native24,
       format($$SELECT metric, count(*), min(value), max(value), avg(value), stddev_samp(value),
                       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value),
                       regr_slope(value, extract(epoch FROM ts)), corr(value, extract(epoch FROM ts))
                FROM kpi.metrics WHERE ts >= %L::timestamptz - interval '30 days' AND ts < %L GROUP BY metric$$, at, at) AS native30,
       format($$SELECT count(*) FROM kpi.report('m042', '30 days', '1 day', %L)$$, at) AS rep30,
       format($$SELECT date_trunc('day', ts), count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value)
                FROM kpi.metrics WHERE metric = 'm042' AND ts >= %L::timestamptz - interval '30 days' AND ts < %L GROUP BY 1$$, at, at) AS nrep30,
       format($$SELECT * FROM kpi.metric_summary('m042', '30 days', %L)$$, at) AS sum30,
       format($$SELECT count(*), min(value), max(value), avg(value), stddev_samp(value),
                       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value)
                FROM kpi.metrics WHERE metric = 'm042' AND ts >= %L::timestamptz - interval '30 days' AND ts < %L$$, at, at) AS nsum30
FROM bench_at \gset
CALL bench_time('performance_report, 100 metrics, 24 hours', 'pg_kpi', :'pr24', :runs);
CALL bench_time('performance_report, 100 metrics, 24 hours', 'native', :'native24', :runs);
CALL bench_time('performance_report, 100 metrics, 30 days', 'pg_kpi', :'pr30', :runs);
CALL bench_time('performance_report, 100 metrics, 30 days', 'native', :'native30', 1);
CALL bench_time('kpi.report, 1 metric, 30 days by day', 'pg_kpi', :'rep30', :runs);
CALL bench_time('kpi.report, 1 metric, 30 days by day', 'native', :'nrep30', :runs);
CALL bench_time('kpi.metric_summary, 1 metric, 30 days', 'pg_kpi', :'sum30', :runs);
CALL bench_time('kpi.metric_summary, 1 metric, 30 days', 'native', :'nsum30', :runs);

-- 10,000 open alerts for the dashboard
SELECT kpi.add_alert_rule('bench_open', 'bench_open', 'max', '5 minutes', '>', 1, group_by => '{host}') > 0 AS rule;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'bench_open', 5, (SELECT at FROM bench_at) - interval '10 seconds', jsonb_build_object('host', 'h' || g)
FROM generate_series(1, 10000) g;
SELECT count(*) AS open_alerts FROM kpi.evaluate_alerts((SELECT at FROM bench_at));
SELECT format($$SELECT kpi.dashboard(%L)$$, at) AS dash FROM bench_at \gset
CALL bench_time('kpi.dashboard, 10,000 open alerts', 'pg_kpi', :'dash', :runs);

-- the business value report: 5,000 customers with a year of monthly
-- subscriptions and 200,000 usage events on 20 features in the last 60 days
INSERT INTO kpi.customers (customer_id, segment, acquired_at, acquisition_cost)
SELECT 'c' || g, (ARRAY['enterprise', 'smb', 'startup', 'individual'])[1 + g % 4],
       (SELECT at FROM bench_at) - interval '400 days' + (g % 400) * interval '1 day', 100 + g % 500
FROM generate_series(1, 5000) g;
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period)
SELECT 's' || g || '-' || k, c.acquired_at + k * interval '1 month', c.customer_id, 'subscription', 50 + g % 200,
       'sub' || g, 'monthly'
FROM generate_series(1, 5000) g JOIN kpi.customers c ON c.customer_id = 'c' || g,
     generate_series(0, 12) k
WHERE c.acquired_at + k * interval '1 month' < (SELECT at FROM bench_at) AND (g % 10 <> 0 OR k < 6);
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, feature_id)
SELECT 'u' || g, (SELECT at FROM bench_at) - random() * interval '60 days', 'c' || (1 + g % 5000), 'usage',
       round((random() * 20)::numeric, 2), 'f' || (g % 20)
FROM generate_series(1, 200000) g;
VACUUM ANALYZE kpi.customers, kpi.revenue_events;
SELECT format($$SELECT kpi.business_value_report(%L::timestamptz - interval '30 days', %L)$$, at, at) AS bv30,
       format($$SELECT c.segment, sum(e.amount), count(DISTINCT e.customer_id)
                FROM kpi.revenue_events e LEFT JOIN kpi.customers c USING (customer_id)
                WHERE e.ts >= %L::timestamptz - interval '30 days' AND e.ts < %L GROUP BY 1$$, at, at) AS nbv30
FROM bench_at \gset
CALL bench_time('business_value_report, 5,000 customers, 30 days', 'pg_kpi', :'bv30', :runs);
CALL bench_time('business_value_report, 5,000 customers, 30 days', 'native', :'nbv30', :runs);

-- kpi.kpi_status: 1,000 KPIs with 1-hour windows over 7 hours of 1-minute values, rolled up
INSERT INTO kpi.metric_definitions (metric, direction, baseline, target, stretch, measurement_window)
SELECT 'kpi' || lpad(i::text, 4, '0'), 'higher_is_better', 40, 60, 70, '1 hour' FROM generate_series(0, 999) i;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'kpi' || lpad(i::text, 4, '0'), 50 + 10 * random(), (SELECT at FROM bench_at) - interval '7 hours' + m * interval '1 minute'
FROM generate_series(0, 419) m, generate_series(0, 999) i;
VACUUM ANALYZE kpi.metrics;
SELECT kpi.refresh(:minute, (SELECT at FROM bench_at) - interval '8 hours', (SELECT at FROM bench_at)) AS kpi_minute_buckets;
SELECT kpi.refresh(:hour, (SELECT at FROM bench_at) - interval '8 hours', (SELECT at FROM bench_at)) AS kpi_hour_buckets;
UPDATE kpi.rollups SET watermark = (SELECT at FROM bench_at);
VACUUM ANALYZE kpi.summaries;
SELECT format($$SELECT * FROM kpi.kpi_status(%L)$$, at) AS ks,
       format($$SELECT metric, avg(value), count(*) FROM kpi.metrics
                WHERE metric LIKE 'kpi%%' AND ts >= %L::timestamptz - interval '1 hour' AND ts < %L GROUP BY metric$$, at, at) AS nks
FROM bench_at \gset
CALL bench_time('kpi_status, 1,000 KPIs, 1-hour windows', 'pg_kpi', :'ks', :runs);
CALL bench_time('kpi_status, 1,000 KPIs, 1-hour windows', 'native', :'nks', :runs);

-- kpi.capacity_forecast over 90 days of one value a minute, rolled up
SELECT kpi.create_partitions((SELECT at FROM bench_at) - interval '91 days', (SELECT at FROM bench_at)) IS NOT NULL AS partitions_90;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'capacity_rps', 500 + m * 0.001 + 20 * random(), (SELECT at FROM bench_at) - interval '90 days' + m * interval '1 minute'
FROM generate_series(0, 90 * 1440 - 1) m;
VACUUM ANALYZE kpi.metrics;
SELECT kpi.refresh(:minute, (SELECT at FROM bench_at) - interval '91 days', (SELECT at FROM bench_at)) AS cap_minute_buckets;
SELECT kpi.refresh(:hour, (SELECT at FROM bench_at) - interval '91 days', (SELECT at FROM bench_at)) AS cap_hour_buckets;
UPDATE kpi.rollups SET watermark = (SELECT at FROM bench_at);
VACUUM ANALYZE kpi.summaries;
SELECT format($$SELECT * FROM kpi.capacity_forecast('capacity_rps', history => '90 days', at => %L)$$, at) AS cf,
       format($$SELECT regr_slope(value, extract(epoch FROM ts)), regr_intercept(value, extract(epoch FROM ts)),
                       corr(value, extract(epoch FROM ts)), count(*)
                FROM kpi.metrics WHERE metric = 'capacity_rps' AND ts >= %L::timestamptz - interval '90 days' AND ts < %L$$, at, at) AS ncf
FROM bench_at \gset
CALL bench_time('capacity_forecast, 90 days of 1-minute values', 'pg_kpi', :'cf', :runs);
CALL bench_time('capacity_forecast, 90 days of 1-minute values', 'native', :'ncf', :runs);

SELECT what, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE who = 'pg_kpi')::numeric, 1) AS pg_kpi_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE who = 'native')::numeric, 1) AS native_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE who = 'pg_kpi')
              / nullif(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE who = 'native'), 0))::numeric, 3) AS ratio,
       CASE WHEN what LIKE '%24 hours%' THEN '< 200 ms' WHEN what LIKE 'performance_report%30 days%' THEN '< 1 s'
            WHEN what LIKE 'kpi.dashboard%' THEN '< 50 ms' WHEN what LIKE 'business_value_report%' THEN '< 1 s'
            WHEN what LIKE 'kpi_status%' THEN '< 100 ms' WHEN what LIKE 'capacity_forecast%' THEN '< 50 ms' END AS target
FROM bench_report_times GROUP BY what ORDER BY min(ctid);
