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
