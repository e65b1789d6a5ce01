-- Demo workload for scripts/run.sh: definitions from the replaced systems and
-- a day of synthetic measurements.
CREATE EXTENSION IF NOT EXISTS pg_kpi;

INSERT INTO kpi.metric_definitions
    (metric, category, unit, direction, optimal, good, warning, critical, measurement_window, alert_cooldown)
VALUES
    ('api_response_time',   'response_time',        'ms',    'lower_is_better',  100,   200,   500,   1000, '5 min',  '15 min'),
    ('database_query_time', 'response_time',        'ms',    'lower_is_better',  50,    100,   250,   500,  '5 min',  '10 min'),
    ('system_availability', 'availability',         '%',     'higher_is_better', 99.99, 99.95, 99.90, 99.80, '1 hour', '30 min'),
    ('throughput_rps',      'throughput',           'req/s', 'higher_is_better', NULL,  1000,  500,   100,  '5 min',  '10 min'),
    ('error_rate',          'error_rate',           '%',     'lower_is_better',  0.1,   0.5,   1.0,   5.0,  '5 min',  '5 min'),
    ('memory_utilization',  'resource_utilization', '%',     'lower_is_better',  60,    75,    85,    95,   '5 min',  '10 min'),
    ('cpu_utilization',     'resource_utilization', '%',     'lower_is_better',  50,    70,    85,    95,   '5 min',  '10 min')
ON CONFLICT (metric) DO NOTHING;

-- KPI targets (the replaced roadmap's): baseline -> target -> stretch, a dated phase, and a
-- looser target for degraded mode
UPDATE kpi.metric_definitions SET baseline = 350, target = 150 WHERE metric = 'api_response_time';
UPDATE kpi.metric_definitions SET baseline = 99.5, target = 99.9, stretch = 99.95 WHERE metric = 'system_availability';
UPDATE kpi.metric_definitions SET baseline = 1, target = 0.5, stretch = 0.1 WHERE metric = 'error_rate';
UPDATE kpi.metric_definitions SET baseline = 800, target = 1000, stretch = 1200 WHERE metric = 'throughput_rps';
INSERT INTO kpi.kpi_targets (metric, phase, due_at, target)
VALUES ('api_response_time', 'phase 1', date_trunc('month', now()) + interval '3 months', 250);
INSERT INTO kpi.kpi_targets (metric, mode, target) VALUES ('system_availability', 'degraded', 99.0);

-- day partitions for the demo's time range (the built-in partitions job keeps a week ahead)
SELECT kpi.create_partitions(now() - interval '2 days', now() + interval '7 days');

-- one point a minute per metric and host for the last 24 hours (COPY-like bulk path)
SELECT setseed(0.42);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT d.metric,
       CASE d.metric
         WHEN 'api_response_time'   THEN exp(4.8 + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))
         WHEN 'database_query_time' THEN exp(3.5 + 0.6 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))
         WHEN 'system_availability' THEN 99.9 + 0.1 * random()
         WHEN 'throughput_rps'      THEN 800 + 400 * random() + 2 * extract(hour FROM g.ts)
         WHEN 'error_rate'          THEN 0.6 * random() * random()
         WHEN 'memory_utilization'  THEN 55 + 10 * random() + 0.01 * i
         ELSE 30 + 40 * random()
       END,
       g.ts,
       jsonb_build_object('host', h.host)
FROM kpi.metric_definitions d
CROSS JOIN (VALUES ('web-1'), ('web-2')) AS h(host)
CROSS JOIN LATERAL (
    SELECT i, date_trunc('minute', now()) - make_interval(mins => i) AS ts
    FROM generate_series(0, 1439) AS i
) AS g;

-- the validated entry points the replaced service API used
SELECT kpi.record('api_response_time', 1450, now(), '{"host": "web-1"}', '{"endpoint": "/orders"}');
SELECT kpi.record_batch('[{"metric_name": "error_rate", "value": 2.5, "tags": {"host": "web-2"}},
                          {"metric_name": "cpu_utilization", "value": 91, "tags": {"host": "web-1"}}]');
ANALYZE kpi.metrics;

-- rollups: 1-minute summaries per host, and all-series minutes -> hours -> days;
-- raw rows kept 30 days, minutes 90 days. The worker runs the jobs from now on;
-- the first runs happen here so that the report has them.
SELECT kpi.add_rollup('1 minute', group_by_tags => '{host}');
SELECT kpi.add_rollup('1 minute');
SELECT kpi.add_rollup('1 hour', '1 minute');
SELECT kpi.add_rollup('1 day', '1 hour');
SELECT kpi.add_retention('metrics', '30 days');
SELECT kpi.add_retention('1 minute', '90 days');
SELECT kpi.add_retention('alerts', '90 days');
SELECT kpi.run_due_jobs();
-- the day's incidents that are over (the built-in alerts job does this every minute)
SELECT kpi.resolve_quiet_alerts();
-- an alert rule on a window, as Prometheus would write it (the rules job evaluates it every 15 s)
SELECT kpi.add_alert_rule(name => 'HighLatencyP95', metric => 'api_response_time', aggregate => 'p95',
                          "window" => '10 minutes', comparator => '>', warning => 300, critical => 1000,
                          "for" => '2 minutes', group_by => '{host}',
                          annotations => '{"summary": "{{labels.host}}: p95 latency {{value}} ms is above {{threshold}} ms"}');

-- a year of revenue for 300 customers: monthly or annual subscriptions that start,
-- upgrade, lapse and sometimes return, plus one-off purchases of premium features
SELECT setseed(0.17);
INSERT INTO kpi.customers (customer_id, segment, acquired_at, acquisition_cost, billing_cycle)
SELECT format('cust-%s', lpad(g::text, 3, '0')),
       (array['enterprise', 'smb', 'startup', 'individual'])[1 + g % 4],
       date_trunc('day', now()) - make_interval(days => 365 - (g * 331) % 330),
       round((50 + 450 * random())::numeric, 2),
       CASE WHEN g % 5 = 0 THEN 'annual' ELSE 'monthly' END
FROM generate_series(1, 300) g
ON CONFLICT (customer_id) DO NOTHING;

INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period)
SELECT format('%s-sub-%s', c.customer_id, k), c.acquired_at + make_interval(months => k * CASE c.billing_cycle WHEN 'annual' THEN 12 ELSE 1 END),
       c.customer_id, 'subscription',
       CASE c.billing_cycle WHEN 'annual' THEN 1200 ELSE 100 END * (1 + (k / 4) * 0.25)
         * CASE c.segment WHEN 'enterprise' THEN 5 WHEN 'smb' THEN 1 WHEN 'startup' THEN 0.5 ELSE 0.2 END,
       c.customer_id || '-s', c.billing_cycle
FROM kpi.customers c
CROSS JOIN LATERAL generate_series(0, 11) k
WHERE c.acquired_at + make_interval(months => k * CASE c.billing_cycle WHEN 'annual' THEN 12 ELSE 1 END) < now()
  -- each customer stops renewing after a customer-specific number of months
  AND k < 3 + (hashtext(c.customer_id) & 15)
ON CONFLICT (event_id) DO NOTHING;

-- premium-feature purchases: each customer buys at its own rate (lognormal, per week) and,
-- after each repeat purchase, may stop for good ("buy till you die"); spend varies around
-- a customer-specific level
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, feature_id)
WITH RECURSIVE c AS (
    SELECT customer_id, acquired_at,
           exp(-1.2 + 0.9 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS per_week,
           0.05 + 0.3 * random() AS p_stop,
           exp(3.5 + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS spend
    FROM kpi.customers
), walk AS (
    SELECT customer_id, acquired_at, per_week, p_stop, spend, 0::float8 AS weeks, 0 AS n, true AS alive FROM c
    UNION ALL
    SELECT w.customer_id, w.acquired_at, w.per_week, w.p_stop, w.spend, s.next, w.n + 1, random() >= w.p_stop
    FROM walk w, LATERAL (SELECT w.weeks - ln(1 - random()) / w.per_week AS next) s
    WHERE w.alive AND w.acquired_at + make_interval(secs => s.next * 604800) < now() AND w.n < 200
)
SELECT format('%s-feat-%s', customer_id, n), acquired_at + make_interval(secs => weeks * 604800), customer_id,
       'premium_feature', round((spend * exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::numeric, 2),
       'advanced_reports'
FROM walk
ON CONFLICT (event_id) DO NOTHING;
ANALYZE kpi.revenue_events;

-- a weekly performance report every Friday at 17:00 in Berlin, kept in
-- kpi.report_snapshots (a 'report' job on a cron schedule), and one taken now
SELECT kpi.add_job('report', '{"name": "weekly performance", "report": "performance_report", "period": "7 days"}',
                   schedule_cron => '0 17 * * 5', schedule_timezone => 'Europe/Berlin');
SELECT kpi.take_report_snapshot('weekly performance', 'performance_report', '7 days');
