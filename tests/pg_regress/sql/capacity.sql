-- Capacity planning: scaling efficiency at its edges, a capacity forecast
-- against an independently computed regression, load-test reports at each
-- cut-off, empty data and bad input.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS kpi_regress_capacity;
CREATE DATABASE kpi_regress_capacity;
\c kpi_regress_capacity
SET client_min_messages = warning;
CREATE EXTENSION pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET client_min_messages = notice;
SET timezone = 'UTC';
SET extra_float_digits = 0;

-- the replaced scaling policies, as documented examples
INSERT INTO kpi.scaling_policies (service, metric, min_instances, max_instances, scale_up_threshold, scale_down_threshold, cooldown) VALUES
  ('api', 'cpu_utilization', 2, 50, 70, 30, '300 seconds'),
  ('worker', 'queue_length', 1, 20, 100, 10, '600 seconds');
SELECT service, min_instances, max_instances, scale_up_threshold, scale_down_threshold, cooldown FROM kpi.scaling_policies ORDER BY service;

-- no events: counts of 0 and no score
SELECT * FROM kpi.scaling_efficiency('api', '24 hours', '2026-05-01 12:00+00');
-- four events in the day: 3 of 4 succeed (30), a mean of 60 s (30 - 10 = 20), 4/24 an hour (30 - 1.8333 x 5 = 20.8333): 70.8333
INSERT INTO kpi.scaling_events (service, occurred_at, trigger, direction, capacity_before, capacity_after, duration, trigger_value, threshold, success, error, cost_impact) VALUES
  ('api', '2026-05-01 01:00+00', 'cpu', 'out', 2, 4, '60 seconds', 82, 70, true, NULL, 12.50),
  ('api', '2026-05-01 05:00+00', 'cpu', 'out', 4, 6, '120 seconds', 75, 70, true, NULL, 12.50),
  ('api', '2026-05-01 09:00+00', 'cpu', 'in', 6, 4, '0 seconds', 20, 30, true, NULL, -12.50),
  ('api', '2026-05-01 11:00+00', 'request_rate', 'out', 4, 4, '60 seconds', 900, 800, false, 'quota exceeded', 0),
  ('api', '2026-04-29 11:00+00', 'cpu', 'out', 2, 4, '60 seconds', 90, 70, true, NULL, 12.50);
SELECT service, events, successes, success_rate, mean_duration, round(events_per_hour::numeric, 4) AS per_hour, cost,
       round(score::numeric, 4) AS score
FROM kpi.scaling_efficiency('api', '24 hours', '2026-05-01 12:00+00');
-- all failures, exactly 2 an hour, instant: 0 + 30 + 30
INSERT INTO kpi.scaling_events (service, occurred_at, trigger, direction, capacity_before, capacity_after, success) VALUES
  ('db', '2026-05-01 11:10+00', 'memory', 'up', 8, 16, false), ('db', '2026-05-01 11:40+00', 'memory', 'up', 8, 16, false);
SELECT events, success_rate, score FROM kpi.scaling_efficiency('db', '1 hour', '2026-05-01 12:00+00');
-- an unknown service: a NOTICE and the empty result
SELECT events, score FROM kpi.scaling_efficiency('nope', '1 hour', '2026-05-01 12:00+00');

-- bad events and policies name the field
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, success) VALUES ('api', 'cpu', 'sideways', 1, 2, true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, success) VALUES ('api', 'vibes', 'up', 1, 2, true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, success) VALUES ('api', 'cpu', 'up', -1, 2, true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, success) VALUES ('api', 'cpu', 'up', 1, 'NaN', true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, duration, success) VALUES ('api', 'cpu', 'up', 1, 2, '-5 seconds', true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_policies (service, min_instances, max_instances) VALUES ('x', 5, 2)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_policies (service, min_instances, max_instances, scale_up_threshold, scale_down_threshold) VALUES ('x', 1, 2, 30, 70)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_policies (service, min_instances, max_instances) VALUES ('x', -1, 2)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, occurred_at, trigger, direction, capacity_before, capacity_after, success) VALUES ('api', 'infinity', 'cpu', 'up', 1, 2, true)$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_events (service, trigger, direction, capacity_before, capacity_after, success, cost_impact) VALUES ('api', 'cpu', 'up', 1, 2, true, 'NaN')$$);
SELECT pg_temp.try($$INSERT INTO kpi.scaling_policies (service, min_instances, max_instances, scale_up_threshold, scale_down_threshold) VALUES ('x', 1, 2, 'Infinity', 30)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.scaling_efficiency('api', '0 hours')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.scaling_efficiency(NULL)$$);

-- capacity forecast: throughput one value an hour for 30 days, rising 0.5 an hour, +-1 alternately
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'throughput_rps', 100 + 0.5 * h + CASE WHEN h % 2 = 0 THEN 1 ELSE -1 END,
       '2026-05-01 12:00+00'::timestamptz - interval '30 days' + h * interval '1 hour', '{"service": "api"}'
FROM generate_series(0, 719) h;
CREATE TEMP TABLE f AS SELECT * FROM kpi.capacity_forecast('throughput_rps', horizon => '30 days', at => '2026-05-01 12:00+00');
-- the same line, its prediction interval and r computed here from the raw rows (t(718, 0.975) = 1.963305)
CREATE TEMP TABLE ref AS
WITH x AS (SELECT extract(epoch FROM ts)::float8 AS x, value AS y FROM kpi.metrics WHERE metric = 'throughput_rps'),
     s AS (SELECT count(*) AS n, regr_slope(y, x) AS b, regr_intercept(y, x) AS a, corr(y, x) AS r, avg(x) AS mx,
                  regr_sxx(y, x) AS sxx, regr_syy(y, x) - regr_slope(y, x) ^ 2 * regr_sxx(y, x) AS sse FROM x)
SELECT s.*, extract(epoch FROM '2026-05-31 12:00+00'::timestamptz)::float8 AS x0 FROM s;
SELECT f.points, round(f.current::numeric, 4) AS current,
       abs(f.forecast - (ref.a + ref.b * ref.x0)) < 1e-6 AS forecast_ok,
       abs((f.forecast_high - f.forecast)
           - 1.963305 * sqrt(ref.sse / (ref.n - 2)) * sqrt(1 + 1.0 / ref.n + (ref.x0 - ref.mx) ^ 2 / ref.sxx)) < 1e-4 AS interval_ok,
       round(f.growth_pct::numeric, 4) AS growth_pct, abs(f.confidence - abs(ref.r) * 100) < 1e-9 AS confidence_ok,
       f.recommendation
FROM f, ref;
-- the advice on both sides of each cut-off (growth 78.8 %)
SELECT x.args, (SELECT recommendation FROM kpi.capacity_forecast('throughput_rps', NULL, '30 days', '2026-05-01 12:00+00', '30 days',
                0.95, 10, x.major, x.gradual, x.reduction)) AS recommendation
FROM (SELECT 'major just below' AS args, g - 0.001 AS major, 20.0::float8 AS gradual, 20.0::float8 AS reduction FROM (SELECT growth_pct AS g FROM f) y
      UNION ALL SELECT 'major at', g, 20, 20 FROM (SELECT growth_pct AS g FROM f) y
      UNION ALL SELECT 'gradual at', 1000, g, 20 FROM (SELECT growth_pct AS g FROM f) y
      UNION ALL SELECT 'gradual just below', 1000, g - 0.001, 20 FROM (SELECT growth_pct AS g FROM f) y) x;
-- a shrinking metric: cost reduction; too few points: insufficient data
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'load', 1000 - h, '2026-05-01 12:00+00'::timestamptz - interval '30 days' + h * interval '1 hour' FROM generate_series(0, 719) h;
SELECT points, recommendation FROM kpi.capacity_forecast('load', at => '2026-05-01 12:00+00');
SELECT points, forecast, recommendation FROM kpi.capacity_forecast('load', horizon => '1 day', at => '2026-04-01 14:00+00', history => '3 hours');
-- the series of one service (by its tag)
SELECT points, abs(forecast - (SELECT forecast FROM f)) < 1e-6 AS same_forecast
FROM kpi.capacity_forecast('throughput_rps', 'api', at => '2026-05-01 12:00+00');
-- a service the metric has no series of: a NOTICE and no forecast
SELECT points, recommendation FROM kpi.capacity_forecast('throughput_rps', 'billing', at => '2026-05-01 12:00+00');
-- a history that starts inside an hour: the service's rows in that first hour count too
SELECT a.points = b.points AS same_points, abs(a.forecast - b.forecast) < 1e-6 AS same_forecast
FROM kpi.capacity_forecast('throughput_rps', 'api', '7 days', '2026-05-01 12:00+00', '2 days 30 minutes') a,
     kpi.capacity_forecast('throughput_rps', NULL, '7 days', '2026-05-01 12:00+00', '2 days 30 minutes') b;
-- unknown metric: a NOTICE and no forecast
SELECT points, recommendation FROM kpi.capacity_forecast('nope', at => '2026-05-01 12:00+00');
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast('load', horizon => '0 days')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast('load', horizon => '-1 day')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast('load', level => 1)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast('load', min_points => 2)$$);
SELECT pg_temp.try($$SELECT * FROM kpi.capacity_forecast('load', major_growth_pct => 10, gradual_growth_pct => 20)$$);

-- load tests: 10 response times 100..1000 ms (mean 550, p95 955), expected 200 ms (2.75x: D), 3 % errors, 10 requests/s
INSERT INTO kpi.load_test_results (scenario, run_at, users, duration, expected_ms, requests, errors, response_times_ms)
VALUES ('checkout', '2026-05-01 12:00+00', 8, '10 seconds', 200, 100, 3, ARRAY(SELECT 100.0 * g FROM generate_series(1, 10) g))
RETURNING id AS run \gset
SELECT jsonb_pretty(kpi.load_test_report(:run) - 'run_at');
-- bottlenecks on both sides of each cut-off (mean 550, 3 % errors, 10 requests/s)
SELECT x.args, coalesce((SELECT string_agg(b->>'kind' || ':' || (b->>'severity'), ', ')
                         FROM jsonb_array_elements(x.r->'bottlenecks') b), '-') AS bottlenecks
FROM (VALUES ('defaults', kpi.load_test_report(:run)),
             ('slow 550', kpi.load_test_report(:run, slow_ms => 550)),
             ('slow 549.99', kpi.load_test_report(:run, slow_ms => 549.99)),
             ('very slow 549.99', kpi.load_test_report(:run, slow_ms => 100, very_slow_ms => 549.99)),
             ('errors 3', kpi.load_test_report(:run, error_pct => 3)),
             ('errors 2.99', kpi.load_test_report(:run, error_pct => 2.99)),
             ('high errors 2.99', kpi.load_test_report(:run, error_pct => 1, high_error_pct => 2.99)),
             ('throughput 10', kpi.load_test_report(:run, min_throughput => 10)),
             ('throughput 10.01', kpi.load_test_report(:run, min_throughput => 10.01))) x(args, r);
-- grades at the error cut-offs; no response times: graded on errors alone
INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, errors, response_times_ms) VALUES
  ('e11', 4, '10 seconds', 200, 100, 11, '{100}'), ('e6', 4, '10 seconds', 200, 100, 6, '{100}'),
  ('e5', 4, '10 seconds', 200, 100, 5, '{100}'), ('none', 4, '10 seconds', 200, 0, 0, '{}'),
  ('e0', 4, '10 seconds', 200, 100, 0, '{}'), ('e7', 4, '10 seconds', 200, 100, 7, '{}');
SELECT scenario, kpi.load_test_report(id)->>'grade' AS grade, kpi.load_test_report(id)->'response_ms'->'p95' AS p95
FROM kpi.load_test_results WHERE scenario IN ('e11', 'e6', 'e5', 'none', 'e0', 'e7') ORDER BY id;
-- bad results and arguments
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests) VALUES ('x', 0, '1 minute', 200, 1)$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests) VALUES ('x', 1, '-1 minute', 200, 1)$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, errors) VALUES ('x', 1, '1 minute', 200, 1, 2)$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, response_times_ms) VALUES ('x', 1, '1 minute', 200, 1, '{-5}')$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests) VALUES ('x', 1, '1 minute', 0, 1)$$);
SELECT pg_temp.try($$SELECT kpi.load_test_report(999999)$$);
SELECT pg_temp.try($$SELECT kpi.load_test_report(NULL)$$);
SELECT pg_temp.try(format('SELECT kpi.load_test_report(%s, slow_ms => 1000, very_slow_ms => 500)', :run));
SELECT pg_temp.try(format('SELECT kpi.load_test_report(%s, error_pct => 10, high_error_pct => 5)', :run));
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, response_times_ms) VALUES ('x', 1, '1 minute', 200, 1, '{{1,2},{3,4}}')$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, response_times_ms) VALUES ('x', 1, '1 minute', 200, 1, '{1e308,1e308}')$$);
SELECT pg_temp.try($$INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, metadata) VALUES ('x', 1, '1 minute', 200, 1, '[1]')$$);
SELECT pg_temp.try(format('SELECT kpi.load_test_report(%s, slow_ms => %L)', :run, 'NaN'));

\c postgres
DROP DATABASE kpi_regress_capacity;
