-- Alert delivery: receivers, the queue, the bodies, attempts and the status view.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kpi;
\getenv abs_srcdir PG_ABS_SRCDIR
\i :abs_srcdir/helpers.sql
SET extra_float_digits = 0;

-- bad input: an ERROR at definition time naming the field
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'email', 'http://localhost:1')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'localhost:9093')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'ftp://localhost/x')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://user:secret@localhost/x')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost:99999/x')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://local host/x')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', headers => '[]')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', headers => '{"X-Token": 5}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', headers => '{"Bad Name": "v"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', headers => '{"X-A": "a\nb"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', matchers => '{"host": "a"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', matchers => '{"severity": "loud"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', matchers => '{"labels": "a"}')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('r', 'webhook', 'http://localhost/x', repeat_interval => '-1 hour')$$);
SELECT pg_temp.try($$SELECT kpi.add_receiver('', 'webhook', 'http://localhost/x')$$);
SELECT pg_temp.try($$SELECT kpi.drop_receiver('nope')$$);
SELECT pg_temp.try($$SELECT * FROM kpi.deliver_now(0)$$);

BEGIN;
-- three receivers: everything, only critical (no resolutions), an Alertmanager
SELECT kpi.add_receiver('all', 'webhook', 'http://127.0.0.1:1/hook', headers => '{"Authorization": "Bearer s3cret"}') > 0 AS all;
SELECT kpi.add_receiver('oncall', 'slack', 'http://127.0.0.1:1/slack',
                        matchers => '{"severity": "critical"}', send_resolved => false) > 0 AS oncall;
SELECT pg_temp.try($$SELECT kpi.add_receiver('all', 'webhook', 'http://127.0.0.1:1/other')$$);
SELECT kpi.add_receiver('am', 'alertmanager', 'http://127.0.0.1:1/') > 0 AS am;
SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '1 minute', '>', 300, 500, group_by => '{host}',
                          labels => '{"team": "api"}',
                          annotations => '{"summary": "{{labels.host}}: latency {{value}} ms", "runbook": "https://wiki/{{rule}}"}') > 0 AS rule;
INSERT INTO kpi.metrics (metric, value, ts, tags)
VALUES ('lat', 400, '2026-01-01 12:00:00+00', '{"host": "a"}'), ('lat', 900, '2026-01-01 12:00:00+00', '{"host": "b"}');
SELECT rule, series, state, severity FROM kpi.evaluate_alerts('2026-01-01 12:00:10+00') ORDER BY series;
-- queued: the warning to "all" and "am", the critical to all three
SELECT n.payload->'series'->>'host' AS host, n.event, r.name AS receiver, d.status, d.attempts
FROM kpi.deliveries d JOIN kpi.notifications n ON n.id = d.notification_id JOIN kpi.alert_receivers r ON r.id = d.receiver_id
ORDER BY 1, 3;
-- the bodies: Alertmanager's webhook JSON, Slack's message, Alertmanager's API (no header secret anywhere)
SELECT jsonb_pretty(kpi_internal.delivery_body('webhook', 'all', n, a) - 'alerts') AS webhook,
       jsonb_pretty((kpi_internal.delivery_body('webhook', 'all', n, a)->'alerts'->0) - 'fingerprint') AS webhook_alert
FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id WHERE a.labels->>'host' = 'b';
SELECT jsonb_pretty(kpi_internal.delivery_body('slack', 'oncall', n, a)) AS slack
FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id WHERE a.labels->>'host' = 'b';
SELECT jsonb_pretty((kpi_internal.delivery_body('alertmanager', 'am', n, a)->0) - 'endsAt') AS alertmanager,
       (kpi_internal.delivery_body('alertmanager', 'am', n, a)->0->>'endsAt')::timestamptz > now() AS ends_in_the_future
FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id WHERE a.labels->>'host' = 'b';
-- label names Alertmanager accepts
SELECT n, kpi_internal.label_name(n) FROM unnest(array['host', 'k8s.pod', '9lives', 'a-b c', '']) n;
SELECT count(*) FILTER (WHERE kpi_internal.delivery_body(r.kind, r.name, n, a)::text LIKE '%s3cret%') AS bodies_with_secrets
FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id CROSS JOIN kpi.alert_receivers r;
-- receivers that are down: every attempt recorded, tried again later, nothing
-- lost; an Alertmanager gets both alerts in one request
SELECT receiver, status, status_code, error IS NOT NULL AS failed FROM kpi.deliver_now() ORDER BY 1, 2;
SELECT r.name, d.status, d.attempts, d.next_attempt_at > now() AS retry_later, d.last_error IS NOT NULL AS has_error
FROM kpi.deliveries d JOIN kpi.alert_receivers r ON r.id = d.receiver_id ORDER BY 1, d.notification_id;
SELECT count(*) AS nothing_due_yet FROM kpi.deliver_now();
SELECT receiver, kind, enabled, pending, delivered_last_hour, failed_attempts_last_hour >= 2 AS failing, given_up,
       last_error IS NOT NULL AS has_last_error FROM kpi.delivery_status ORDER BY 1;
-- re-sends while firing: after repeat_interval (4 hours by default; 0 never) or, to an
-- Alertmanager, after kpi.alertmanager_resend (1 minute)
-- (a receiver added while alerts fire gets them queued at once)
SELECT kpi.add_receiver('once', 'webhook', 'http://127.0.0.1:1/once', repeat_interval => '0') > 0 AS once;
SELECT r.name, d.status, d.attempts FROM kpi.deliveries d JOIN kpi.alert_receivers r ON r.id = d.receiver_id
WHERE r.name = 'once' ORDER BY d.notification_id;
UPDATE kpi.deliveries SET status = 'delivered', delivered_at = now() - interval '2 minutes', attempts = 1;
SELECT kpi_internal.queue_repeats() AS requeued_after_2_minutes;
SELECT r.name, d.status, d.attempts FROM kpi.deliveries d JOIN kpi.alert_receivers r ON r.id = d.receiver_id ORDER BY 1, d.notification_id;
UPDATE kpi.deliveries SET status = 'delivered', delivered_at = now() - interval '5 hours', attempts = 1;
SELECT kpi_internal.queue_repeats() AS requeued_after_5_hours;
SELECT r.name, d.status FROM kpi.deliveries d JOIN kpi.alert_receivers r ON r.id = d.receiver_id ORDER BY 1, d.notification_id;
SELECT kpi.drop_receiver('once');
-- a resolution goes to "all" and "am", not to "oncall" (send_resolved false)
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 100, '2026-01-01 12:01:00+00', '{"host": "b"}');
SELECT rule, series, state FROM kpi.evaluate_alerts('2026-01-01 12:01:30+00') WHERE state = 'resolved';
SELECT r.name, count(*) FROM kpi.deliveries d JOIN kpi.notifications n ON n.id = d.notification_id
JOIN kpi.alert_receivers r ON r.id = d.receiver_id WHERE n.event = 'resolved' GROUP BY 1 ORDER BY 1;
-- dropping a receiver drops its queue
SELECT kpi.drop_receiver('am');
SELECT count(*) AS am_deliveries FROM kpi.deliveries d WHERE NOT EXISTS (SELECT FROM kpi.alert_receivers r WHERE r.id = d.receiver_id);
-- a truncated outbox: the deliveries left are dropped at the next claim
TRUNCATE kpi.notifications;
SELECT count(*) AS sent FROM kpi.deliver_now();
SELECT count(*) AS queued FROM kpi.deliveries;
ROLLBACK;
