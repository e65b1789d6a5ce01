-- The replaced systems' alerts as pg_kpi alert rules (tested by
-- tests/pg_regress/sql/rules.sql). Load with:  \i examples/alert_rules.sql
-- Metric names are the ones the replaced services reported; adjust them to
-- yours. Rules are evaluated every 15 seconds by the built-in rules job.

-- The portal's Prometheus rules (PromQL -> pg_kpi)
-- histogram_quantile(0.95, request duration) > 1 s for 2m (warning)
SELECT kpi.add_alert_rule(name => 'HighRequestLatency', metric => 'http_request_duration_seconds',
    aggregate => 'p95', "window" => '5 minutes', comparator => '>', warning => 1, "for" => '2 minutes',
    group_by => '{service}',
    annotations => '{"summary": "{{labels.service}}: p95 request duration {{value}} s is above {{threshold}} s"}');
-- p95 client data query > 0.5 s for 1m
SELECT kpi.add_alert_rule(name => 'SlowClientDataQuery', metric => 'client_data_query_seconds',
    aggregate => 'p95', "window" => '5 minutes', comparator => '>', warning => 0.5, "for" => '1 minute');
-- concurrent users > 10 for 5m (the portal allows at most 12)
SELECT kpi.add_alert_rule(name => 'TooManyConcurrentUsers', metric => 'concurrent_users',
    aggregate => 'max', "window" => '1 minute', comparator => '>', warning => 10, critical => 12,
    "for" => '5 minutes');
-- memory > 2 GB for 5m (critical)
SELECT kpi.add_alert_rule(name => 'HighMemory', metric => 'memory_bytes', aggregate => 'avg',
    "window" => '1 minute', comparator => '>', critical => 2147483648, "for" => '5 minutes', group_by => '{host}');
-- CPU > 80 % for 3m
SELECT kpi.add_alert_rule(name => 'HighCpu', metric => 'cpu_utilization', aggregate => 'avg',
    "window" => '1 minute', comparator => '>', warning => 80, "for" => '3 minutes', group_by => '{host}');
-- the Grafana panel's error ratio: 5xx over all responses above 5 % for 5m
SELECT kpi.add_alert_rule(name => 'HighErrorRatio', metric => 'http_responses_5xx', aggregate => 'ratio',
    denominator_metric => 'http_responses', "window" => '5 minutes', comparator => '>', warning => 0.05,
    "for" => '5 minutes', group_by => '{service}');

-- The roadmap dashboard's alerts
SELECT kpi.add_alert_rule(name => 'ApiErrorRate', metric => 'api_error_rate', aggregate => 'avg',
    "window" => '5 minutes', comparator => '>', critical => 1);
SELECT kpi.add_alert_rule(name => 'Availability', metric => 'service_availability', aggregate => 'avg',
    "window" => '10 minutes', comparator => '<', critical => 99);
SELECT kpi.add_alert_rule(name => 'ApiLatencyP95', metric => 'api_latency', aggregate => 'p95',
    "window" => '5 minutes', comparator => '>', warning => 300, "for" => '10 minutes');
SELECT kpi.add_alert_rule(name => 'TestCoverage', metric => 'test_coverage', aggregate => 'last',
    "window" => '7 days', comparator => '<', warning => 80);

-- The performance tracking plan's alert list
SELECT kpi.add_alert_rule(name => 'SlowResponses', metric => 'response_time', aggregate => 'avg',
    "window" => '5 minutes', comparator => '>', critical => 2000);
SELECT kpi.add_alert_rule(name => 'HighErrorRate', metric => 'error_rate', aggregate => 'avg',
    "window" => '5 minutes', comparator => '>', critical => 5);
SELECT kpi.add_alert_rule(name => 'LowSatisfaction', metric => 'user_satisfaction', aggregate => 'avg',
    "window" => '1 day', comparator => '<', warning => 3.5, critical => 3.0);
-- throughput below 10 per minute: rate counts rows per second
SELECT kpi.add_alert_rule(name => 'LowThroughput', metric => 'requests', aggregate => 'rate',
    "window" => '5 minutes', comparator => '<', warning => 10.0 / 60);
SELECT kpi.add_alert_rule(name => 'SlowPageLoad', metric => 'page_load_seconds', aggregate => 'p95',
    "window" => '15 minutes', comparator => '>', warning => 2);
-- the predictive alert: latency's trend over the last 30 minutes, 15 minutes ahead, above 1.5 s
SELECT kpi.add_alert_rule(name => 'LatencyTrend', metric => 'http_request_duration_seconds',
    aggregate => 'forecast', "window" => '30 minutes', horizon => '15 minutes', comparator => '>',
    warning => 1.5,
    annotations => '{"summary": "latency is heading for {{value}} s within 15 minutes"}');
-- an anomaly: the last 5 minutes' mean 3 standard deviations above the day before
SELECT kpi.add_alert_rule(name => 'LatencyAnomaly', metric => 'http_request_duration_seconds',
    aggregate => 'zscore', "window" => '5 minutes', baseline => '24 hours', comparator => '>',
    warning => 3, critical => 4);
-- a heartbeat that stopped
SELECT kpi.add_alert_rule(name => 'NoHeartbeat', metric => 'heartbeat', aggregate => 'absent',
    "window" => '2 minutes', comparator => '<', critical => 1);
