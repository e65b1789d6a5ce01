-- Severity, breach ratios, health, grades, and alerts raised by the kpi.metrics trigger.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
SET extra_float_digits = 0;
SET timezone = 'UTC';
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql

-- five bands, lower is better, at and just past each boundary
SELECT v, kpi.severity(v, 100, 200, 500, 1000) AS severity
FROM unnest(array[-1, 100, 100.001, 200, 200.001, 500, 500.001, 1000, 1000.001, 'Infinity']::float8[]) v;
-- higher is better mirrors the bands; 99.999% availability is optimal
SELECT v, kpi.severity(v, 99.99, 99.95, 99.90, 99.80, 'higher_is_better') AS severity
FROM unnest(array[100, 99.999, 99.99, 99.98, 99.95, 99.9, 99.85, 99.8, 99.79, 0]::float8[]) v;
-- a NULL threshold removes its band; no thresholds at all gives NULL; NULL value gives NULL
SELECT kpi.severity(5000, NULL, 1000, 500, 100, 'higher_is_better') AS rps_5000,
       kpi.severity(700, NULL, 1000, 500, 100, 'higher_is_better') AS rps_700,
       kpi.severity(10, NULL, NULL, 500, 1000) AS only_warning_and_critical,
       kpi.severity(10, NULL, NULL, NULL, NULL) AS no_thresholds,
       kpi.severity(NULL, 1, 2, 3, 4) AS null_value;
-- the enum is ordered
SELECT 'warning'::kpi.severity_level > 'good' AS ordered,
       enum_range(NULL::kpi.severity_level) AS levels;
-- bad input
SELECT pg_temp.try($$SELECT kpi.severity('NaN', 1, 2, 3, 4)$$);
SELECT pg_temp.try($$SELECT kpi.severity(1, 1, 2, 'NaN', 4)$$);
SELECT pg_temp.try($$SELECT kpi.severity(1, 1, 2, 5, 4)$$);
SELECT pg_temp.try($$SELECT kpi.severity(1, 1, 2, 3, 4, 'higher_is_better')$$);
SELECT pg_temp.try($$SELECT kpi.severity(1, 1, 2, 3, 4, 'sideways')$$);
SELECT pg_temp.try($$SELECT kpi.severity(1, 1, 2, 3, 4, NULL)$$);

-- breach ratio: boundaries at 2, 3 and 5 exactly
SELECT v, kpi.breach_severity(v, 100) AS breach
FROM unnest(array[50, 100, 150, 200, 200.5, 300, 301, 500, 500.5, 'Infinity']::float8[]) v;
SELECT pg_temp.try($$SELECT kpi.breach_severity(1, 0)$$);
SELECT pg_temp.try($$SELECT kpi.breach_severity(1, -3)$$);
SELECT pg_temp.try($$SELECT kpi.breach_severity('NaN', 3)$$);
SELECT kpi.breach_severity(NULL, 3) AS null_value;

-- health: points per band, the mean, statuses; no data is 'unknown'
SELECT s, kpi.severity_score(s) FROM unnest(enum_range(NULL::kpi.severity_level)) s;
SELECT kpi.health_score(s) FROM unnest(array['optimal', 'good', 'warning', NULL]::kpi.severity_level[]) s;
SELECT kpi.health_score(s) IS NULL AS no_rows_is_null FROM unnest('{}'::kpi.severity_level[]) s;
SELECT score, kpi.health_status(score)
FROM unnest(array[100, 90, 89.9, 80, 79.9, 70, 69.9, 50, 49.9, 0, NULL]::float8[]) score;
SELECT pg_temp.try($$SELECT kpi.health_status(101)$$);
SELECT pg_temp.try($$SELECT kpi.health_status('NaN')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.health('-1 minute')$$);

-- grades
SELECT p, kpi.grade(p) FROM unnest(array[100, 95, 94.9, 85, 75, 65, 64.9, 0]::float8[]) p;
SELECT avg_ms, err, kpi.performance_grade(avg_ms, err, 100) AS grade
FROM (VALUES (100, 10.5), (100, 10), (100, 5), (301, 0), (300, 0), (200, 0), (150, 0), (120, 0), (50, 0)) x(avg_ms, err);
SELECT kpi.overall_grade(g) FROM unnest(array['A', 'A', 'B', 'C', NULL]) g;        -- mean 3.25
SELECT kpi.overall_grade(g) FROM unnest(array['A', 'B']) g;                        -- mean 3.5
SELECT kpi.overall_grade(g) IS NULL AS no_rows_is_null FROM unnest('{}'::text[]) g;
SELECT pg_temp.try($$SELECT kpi.grade(120)$$);
SELECT pg_temp.try($$SELECT kpi.performance_grade(100, 1, 0)$$);
SELECT pg_temp.try($$SELECT kpi.performance_grade(-1, 1, 10)$$);
SELECT pg_temp.try($$SELECT kpi.overall_grade(g) FROM unnest(array['A', 'Z']) g$$);

-- the fingerprint formula is part of the API: it must not change between releases
SELECT kpi.alert_fingerprint('threshold', 'api_response_time', '{"host": "a", "az": "1"}') AS fingerprint,
       kpi.alert_fingerprint('threshold', 'api_response_time', '{"az": "1", "host": "a"}')
     = kpi.alert_fingerprint('threshold', 'api_response_time', '{"host": "a", "az": "1"}') AS key_order_irrelevant;

-- alerts raised by the trigger (rolled back at the end)
BEGIN;
TRUNCATE kpi.metrics, kpi.alerts, kpi.metric_definitions;
INSERT INTO kpi.metric_definitions (metric, category, unit, direction, optimal, good, warning, critical, alert_cooldown)
VALUES ('api_response_time', 'response_time', 'ms', 'lower_is_better', 100, 200, 500, 1000, '15 min'),
       ('system_availability', 'availability', '%', 'higher_is_better', 99.99, 99.95, 99.90, 99.80, NULL),
       ('error_rate', 'Error Rate', '%', 'lower_is_better', 0.1, 0.5, 1.0, 5.0, NULL),
       ('idle', NULL, NULL, 'lower_is_better', 1, 2, 3, 4, NULL);
UPDATE kpi.metric_definitions SET active = false WHERE metric = 'idle';
CREATE VIEW pg_temp.a AS
SELECT id, metric, labels, severity, state, value, threshold, occurrences,
       to_char(started_at, 'HH24:MI') AS started, to_char(last_seen_at, 'HH24:MI') AS last_seen,
       to_char(resolved_at, 'HH24:MI') AS resolved
FROM kpi.alerts ORDER BY id;

-- good values raise nothing; neither do inactive or undefined metrics
INSERT INTO kpi.metrics (metric, value, ts) VALUES
    ('api_response_time', 150, '2026-01-01 00:00'), ('idle', 99, '2026-01-01 00:00'), ('other', 1e9, '2026-01-01 00:00');
SELECT count(*) AS alerts FROM kpi.alerts;

-- a warning opens a firing alert, with the row's tags as labels
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 300, '2026-01-01 00:00', '{"host": "a"}');
SELECT * FROM pg_temp.a;
SELECT message, recommendations FROM kpi.alerts;
-- within the 15 minute cooldown: one more occurrence, no new alert; a worse breach escalates
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 250, '2026-01-01 00:10', '{"host": "a"}');
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 1200, '2026-01-01 00:20', '{"host": "a"}');
SELECT * FROM pg_temp.a;
SELECT message FROM kpi.alerts;
-- a milder breach never lowers the severity
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 300, '2026-01-01 00:30', '{"host": "a"}');
SELECT * FROM pg_temp.a;
-- another host is another fingerprint
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 600, '2026-01-01 00:30', '{"host": "b"}');
-- outside the cooldown (more than 15 minutes after the last breach): the open alert
-- is resolved 15 minutes after its last breach and a new one opens
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', 300, '2026-01-01 01:00', '{"host": "a"}');
SELECT * FROM pg_temp.a;
SELECT count(*) AS open_alerts_for_host_a FROM kpi.alerts WHERE labels = '{"host": "a"}' AND state <> 'resolved';

-- one COPY/INSERT statement with breaches more than a cooldown apart gives the
-- same alerts as separate statements; availability uses kpi.alert_cooldown (5 min)
INSERT INTO kpi.metrics (metric, value, ts) VALUES
    ('system_availability', 99.999, '2026-01-01 00:00'),
    ('system_availability', 99.92, '2026-01-01 00:01'),
    ('system_availability', 99.85, '2026-01-01 00:04'),
    ('system_availability', 99.7, '2026-01-01 00:20'),
    ('error_rate', 0.7, '2026-01-01 00:20');
SELECT * FROM pg_temp.a WHERE metric <> 'api_response_time';
SELECT message, recommendations[1] FROM kpi.alerts WHERE metric = 'error_rate';

-- the cooldown setting applies to definitions without their own
SET kpi.alert_cooldown = '1h';
SHOW kpi.alert_cooldown;
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('system_availability', 99.91, '2026-01-01 00:50');
SELECT * FROM pg_temp.a WHERE metric = 'system_availability';
RESET kpi.alert_cooldown;

-- kpi.trigger_alerts = off stores rows and raises nothing
SET kpi.trigger_alerts = off;
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('error_rate', 50, '2026-01-01 02:00');
SELECT count(*) AS alerts_for_error_rate FROM kpi.alerts WHERE metric = 'error_rate';
RESET kpi.trigger_alerts;

-- your own recommendations replace the built-in ones for a category
INSERT INTO kpi.alert_recommendations VALUES ('availability', array['Page the on-call engineer']);
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('system_availability', 90, '2026-01-01 03:00', '{"region": "eu"}');
SELECT severity, message, recommendations FROM kpi.alerts WHERE labels = '{"region": "eu"}';

-- acknowledge and resolve
SELECT id, state, acknowledged_by, acknowledged_at IS NOT NULL AS acknowledged FROM kpi.acknowledge(1, 'alice');
SELECT id, state, acknowledged_by FROM kpi.acknowledge(1, 'bob');   -- the first acknowledgement is kept
SELECT id, state, resolved_at IS NOT NULL AS has_resolved_at FROM kpi.resolve((SELECT max(id) FROM kpi.alerts));
SELECT pg_temp.try($$SELECT kpi.acknowledge(999999, 'x')$$);
SELECT pg_temp.try($$SELECT kpi.resolve(999999)$$);
SELECT pg_temp.try($$SELECT kpi.resolve(NULL)$$);
-- the unique partial index allows one open alert per fingerprint
SELECT pg_temp.try($$INSERT INTO kpi.alerts (fingerprint, metric, severity) SELECT fingerprint, metric, severity FROM kpi.alerts WHERE state = 'firing' LIMIT 1$$);

-- health over the definitions and kpi.metrics (window relative to now())
DELETE FROM kpi.metrics;
INSERT INTO kpi.metrics (metric, value, ts) VALUES
    ('api_response_time', 120, now() - interval '1 minute'), ('api_response_time', 180, now() - interval '2 minutes'),
    ('error_rate', 2, now() - interval '1 minute'), ('api_response_time', 5000, now() - interval '1 hour');
SELECT * FROM kpi.health();
SELECT metric, samples, severity, score, status FROM kpi.health('2 hours');
-- a metric's status is its band (warning reads warning, not the overall cut-offs'
-- critical); each metric's measurement_window is the default window; at looks back
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('system_availability', 99.92, now() - interval '50 minutes');
UPDATE kpi.metric_definitions SET measurement_window = '1 hour' WHERE metric = 'system_availability';
SELECT metric, samples, mean_value, severity, status FROM kpi.health();
SELECT metric, samples, mean_value, severity, status FROM kpi.health(since => '15 minutes', at => now() - interval '55 minutes');
SELECT split_part(pg_temp.try($$SELECT * FROM kpi.health(at => now() + interval '1 hour')$$), ', got', 1) AS future_at;
SELECT pg_temp.try($$SELECT * FROM kpi.health('0 minutes')$$);

-- a failing alert side keeps the metric rows and says why in a WARNING
ALTER TABLE kpi.metric_definitions DISABLE TRIGGER metric_definitions_check;
UPDATE kpi.metric_definitions SET good = 50 WHERE metric = 'api_response_time';  -- out of order
ALTER TABLE kpi.metric_definitions ENABLE TRIGGER metric_definitions_check;
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('api_response_time', 900, '2026-01-02 00:00');
SELECT count(*) AS stored FROM kpi.metrics WHERE ts = '2026-01-02 00:00';
ROLLBACK;

-- threshold alerts resolve once their metric has been quiet for the cooldown
BEGIN;
SET LOCAL timezone = 'UTC';
TRUNCATE kpi.metrics, kpi.alerts, kpi.metric_definitions;
INSERT INTO kpi.metric_definitions (metric, direction, optimal, good, warning, critical, alert_cooldown)
VALUES ('error_rate', 'lower_is_better', 0.1, 0.5, 1.0, 5.0, '5 minutes');
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES
    ('error_rate', 3, now() - interval '20 minutes', '{"host": "quiet"}'),
    ('error_rate', 0.2, now() - interval '10 minutes', '{"host": "quiet"}'),
    ('error_rate', 3, now() - interval '20 minutes', '{"host": "late"}'),
    ('error_rate', 3, now() - interval '2 minutes', '{"host": "recent"}');
-- breaches stored while alerting was off count: one 8 minutes ago is over
-- (resolved 5 minutes after it), one 2 minutes ago keeps its alert open
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 3, now() - interval '20 minutes', '{"host": "late_recent"}');
SET LOCAL kpi.trigger_alerts = off;
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('error_rate', 4, now() - interval '8 minutes', '{"host": "late"}'),
    ('error_rate', 4, now() - interval '2 minutes', '{"host": "late_recent"}');
RESET kpi.trigger_alerts;
SELECT metric, labels, severity, occurrences FROM kpi.active_alerts ORDER BY labels::text;
SELECT kpi.resolve_quiet_alerts() AS resolved;
SELECT labels->>'host' AS host, state, resolved_at - last_seen_at AS resolved_after_last_breach,
       round(extract(epoch FROM now() - last_seen_at) / 60) AS last_breach_minutes_ago
FROM kpi.alerts ORDER BY 1;
SELECT labels->>'host' AS host FROM kpi.active_alerts ORDER BY 1;
SELECT kpi.resolve_quiet_alerts() AS again;
-- the built-in job does it every minute
SELECT kind, schedule_interval FROM kpi.jobs WHERE kind = 'alerts';
SELECT split_part(pg_temp.try($$SELECT kpi.resolve_quiet_alerts(now() + interval '1 hour')$$), ', got', 1) AS future_at;
ROLLBACK;

-- a late breach from before an open alert started, further back than the cooldown,
-- is an incident of its own (stored resolved); the open alert is left alone, so the
-- order statements arrive in does not change the incidents
BEGIN;
SET LOCAL timezone = 'UTC';
TRUNCATE kpi.metrics, kpi.alerts, kpi.metric_definitions;
INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical, alert_cooldown)
VALUES ('lat', 100, 200, 500, 1000, '5 minutes');
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('lat', 700, '2026-11-01 02:20+00');
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('lat', 1500, '2026-11-01 02:00+00');
-- and one within the cooldown of the open alert's start folds into it
INSERT INTO kpi.metrics (metric, value, ts) VALUES ('lat', 800, '2026-11-01 02:17+00');
SELECT severity, state, occurrences, started_at, last_seen_at, resolved_at FROM kpi.alerts ORDER BY started_at;
ROLLBACK;

-- the outbox gets a row per notification; a silence stops them while alerts still change
BEGIN;
SET LOCAL timezone = 'UTC';
TRUNCATE kpi.metrics, kpi.alerts, kpi.metric_definitions, kpi.notifications;
INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical, alert_cooldown)
VALUES ('lat', 100, 200, 500, 1000, '5 minutes');
SELECT kpi.silence('{"metric": "lat", "labels": {"host": "quiet"}}', starts_at => now() - interval '1 hour',
                   comment => 'maintenance') > 0 AS silenced;
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES
    ('lat', 700, now() - interval '1 minute', '{"host": "loud"}'), ('lat', 700, now() - interval '1 minute', '{"host": "quiet"}');
SELECT labels->>'host' AS host, severity, silenced FROM kpi.active_alerts ORDER BY 1;
SELECT event, payload->'labels'->>'host' AS host, payload->>'severity' AS severity FROM kpi.notifications ORDER BY id;
-- escalation notifies again; expiring the silence lets the quiet host's next change through
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 1500, now(), '{"host": "loud"}');
SELECT kpi.expire_silence(id) FROM kpi.silences;
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 1500, now(), '{"host": "quiet"}');
SELECT event, payload->'labels'->>'host' AS host, payload->>'severity' AS severity FROM kpi.notifications ORDER BY id;
SELECT pg_temp.try($$SELECT kpi.silence('{}')$$);
SELECT pg_temp.try($$SELECT kpi.silence('{"host": "a"}')$$);
SELECT pg_temp.try($$SELECT kpi.silence('{"severity": "bad"}')$$);
SELECT pg_temp.try($$SELECT kpi.silence('{"metric": "x"}', '2026-01-02 00:00+00', '2026-01-01 00:00+00')$$);
SELECT pg_temp.try($$SELECT kpi.expire_silence(12345)$$);
ROLLBACK;

-- kpi.severity(metric, value) on an unknown metric: NULL and one NOTICE per session and name
SET client_min_messages = notice;
SELECT kpi.severity('api_respnse_time', 300) AS typo;
SELECT kpi.severity('api_respnse_time', 400) AS typo_again;
SET client_min_messages = warning;

-- empty data: one overall row, 'unknown'
BEGIN;
TRUNCATE kpi.metrics, kpi.alerts, kpi.metric_definitions;
SELECT * FROM kpi.health();
ROLLBACK;

-- numbers in alert messages
SELECT x, kpi_internal.format_number(x)
FROM unnest(array[0, 725.6995282821076, 99.90006465065497, 0.554049000394082, 1000, -12.5, 1e-9, 1e20, 123456789,
                   'NaN', 'Infinity', '-Infinity']::float8[]) x;
