-- Alert delivery: receivers, the delivery queue fed by the notification
-- outbox, the bodies each kind of receiver understands (Alertmanager's
-- webhook format, Slack's incoming webhooks, Alertmanager's API), every
-- attempt, and the sending (src/delivery.rs): the delivery worker of each
-- database with a receiver, or kpi.deliver_now from any session, with
-- retries and backoff.

CREATE TABLE kpi.alert_receivers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    kind             text NOT NULL,
    url              text NOT NULL,
    headers          jsonb NOT NULL DEFAULT '{}',
    matchers         jsonb NOT NULL DEFAULT '{}',
    repeat_interval  interval NOT NULL DEFAULT '4 hours',
    send_resolved    boolean NOT NULL DEFAULT true,
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kpi.alert_receivers IS
    'Where alert notifications are sent: a webhook (Alertmanager''s webhook JSON), a Slack incoming webhook, or an Alertmanager';

-- A receiver's config, checked at definition time: every mistake is an
-- ERROR naming the field (22023).
CREATE FUNCTION kpi_internal.check_alert_receiver() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_receivers := NEW;
    problem text;
    hk text;
    hv jsonb;
BEGIN
    IF r.name IS NULL OR btrim(r.name) = '' THEN
        RAISE EXCEPTION 'alert receiver: name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.kind IS NULL OR r.kind NOT IN ('webhook', 'slack', 'alertmanager') THEN
        RAISE EXCEPTION 'alert receiver "%": kind must be webhook, slack or alertmanager, got %', r.name,
            coalesce(r.kind, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    problem := kpi_internal.receiver_url_problem(r.url);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'alert receiver "%": url %', r.name, problem USING ERRCODE = 'invalid_parameter_value',
            HINT = 'For example http://localhost:9093 (an Alertmanager) or https://hooks.slack.com/services/...';
    END IF;
    IF jsonb_typeof(r.headers) <> 'object' THEN
        RAISE EXCEPTION 'alert receiver "%": headers must be a JSON object of strings', r.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR hk, hv IN SELECT e.key, e.value FROM jsonb_each(r.headers) e LOOP
        IF hk !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$' THEN
            RAISE EXCEPTION 'alert receiver "%": header name "%" is not a valid HTTP header name', r.name, hk
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(hv) <> 'string' OR (hv #>> '{}') ~ '[\r\n]' THEN
            RAISE EXCEPTION 'alert receiver "%": header "%" must be a string on one line', r.name, hk
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    problem := kpi_internal.matchers_problem(r.matchers);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'alert receiver "%": matchers %', r.name, problem USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Matchers are metric, severity, source, rule and labels, e.g. {"severity": "critical"}.';
    END IF;
    IF r.repeat_interval IS NULL OR r.repeat_interval < interval '0' THEN
        RAISE EXCEPTION 'alert receiver "%": repeat_interval must not be negative', r.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER alert_receivers_check BEFORE INSERT OR UPDATE ON kpi.alert_receivers
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.check_alert_receiver();

CREATE FUNCTION kpi.add_receiver(
    name text, kind text, url text, headers jsonb DEFAULT '{}', matchers jsonb DEFAULT '{}',
    repeat_interval interval DEFAULT '4 hours', send_resolved boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM kpi.alert_receivers r WHERE r.name = add_receiver.name) THEN
        RAISE EXCEPTION 'kpi.add_receiver: a receiver named "%" exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO kpi.alert_receivers (name, kind, url, headers, matchers, repeat_interval, send_resolved)
    VALUES (name, kind, url, coalesce(headers, '{}'), coalesce(matchers, '{}'), coalesce(repeat_interval, '4 hours'),
            coalesce(send_resolved, true))
    RETURNING id INTO rid;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION kpi.add_receiver(text, text, text, jsonb, jsonb, interval, boolean) IS
    'Adds an alert receiver (kind webhook, slack or alertmanager) for the notifications its matchers select; returns its id';

CREATE FUNCTION kpi.drop_receiver(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM kpi.alert_receivers r WHERE r.name = drop_receiver.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.drop_receiver: no receiver named "%"', coalesce(name, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION kpi.drop_receiver(text) IS 'Drops an alert receiver and its pending deliveries';

-- The queue: one row per notification and receiver it goes to.
CREATE TABLE kpi.deliveries (
    -- no foreign key to the outbox: it may be pruned or truncated; a delivery
    -- whose notification is gone is dropped by kpi_internal.delivery_housekeeping
    notification_id  bigint NOT NULL,
    receiver_id      bigint NOT NULL REFERENCES kpi.alert_receivers (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, receiver_id)
);
CREATE INDEX deliveries_due_idx ON kpi.deliveries (receiver_id, next_attempt_at, notification_id) WHERE status = 'pending';
CREATE INDEX deliveries_receiver_idx ON kpi.deliveries (receiver_id, status);
CREATE INDEX deliveries_done_idx ON kpi.deliveries (coalesce(delivered_at, created_at)) WHERE status <> 'pending';
COMMENT ON TABLE kpi.deliveries IS 'Delivery queue: each notification to each receiver whose matchers select it';

CREATE TABLE kpi.delivery_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint NOT NULL,
    receiver_id      bigint NOT NULL,
    attempted_at     timestamptz NOT NULL DEFAULT now(),
    status_code      integer,
    error            text,
    duration_ms      double precision
);
CREATE INDEX delivery_attempts_receiver_idx ON kpi.delivery_attempts (receiver_id, attempted_at);
CREATE INDEX delivery_attempts_at_idx ON kpi.delivery_attempts (attempted_at);
COMMENT ON TABLE kpi.delivery_attempts IS 'Every delivery attempt: HTTP status or error, and how long it took';

-- every notification is queued for the enabled receivers that select it
CREATE FUNCTION kpi_internal.queue_deliveries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM kpi.alert_receivers r WHERE r.enabled) THEN
        RETURN NULL;
    END IF;
    -- the payload is the alert as it was notified (what the matchers read),
    -- so no lookup in kpi.alerts per notification
    INSERT INTO kpi.deliveries (notification_id, receiver_id)
    SELECT n.id, r.id
    FROM new_notifications n
    JOIN kpi.alert_receivers r ON r.enabled AND (n.event <> 'resolved' OR r.send_resolved)
    WHERE kpi_internal.alert_matches(r.matchers, jsonb_populate_record(NULL::kpi.alerts, n.payload))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER notifications_queue_deliveries AFTER INSERT ON kpi.notifications
    REFERENCING NEW TABLE AS new_notifications
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_internal.queue_deliveries();

-- A receiver added (or enabled, or given new matchers) while alerts fire
-- hears of them: the latest notification of each firing, unsilenced alert
-- it selects is queued for it, as Alertmanager tells a new route about the
-- alerts it already has.
CREATE FUNCTION kpi_internal.queue_firing_for_receiver() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT NEW.enabled THEN
        RETURN NULL;
    END IF;
    INSERT INTO kpi.deliveries (notification_id, receiver_id)
    SELECT last.id, NEW.id
    FROM kpi.alerts a
    CROSS JOIN LATERAL (SELECT max(n.id) AS id FROM kpi.notifications n WHERE n.alert_id = a.id) last
    JOIN kpi.notifications n ON n.id = last.id AND n.event = 'firing'
    WHERE a.state = 'firing'
      AND kpi_internal.alert_matches(NEW.matchers, a)
      AND NOT kpi_internal.silenced(a)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER alert_receivers_queue_firing AFTER INSERT OR UPDATE OF enabled, matchers ON kpi.alert_receivers
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.queue_firing_for_receiver();

-- new deliveries, and new or changed receivers, wake the database's delivery
-- worker when the transaction commits (or have the launcher start one)
CREATE FUNCTION kpi_internal.wake_delivery_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM kpi_internal.wake_delivery();
    RETURN NULL;
END
$$;
CREATE TRIGGER deliveries_wake AFTER INSERT ON kpi.deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_internal.wake_delivery_trigger();
CREATE TRIGGER alert_receivers_wake AFTER INSERT OR UPDATE ON kpi.alert_receivers
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_internal.wake_delivery_trigger();

-- a timestamp as RFC 3339 in UTC, as Alertmanager writes them
CREATE FUNCTION kpi_internal.rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- When an alert ends, as a receiver of this kind is told: its resolution;
-- while it fires, for an Alertmanager 4 times the longer of
-- kpi.alert_interval and kpi.alertmanager_resend ahead (as Prometheus: it is
-- re-sent before then), for a webhook Alertmanager's zero time.
CREATE FUNCTION kpi_internal.delivery_ends_at(kind text, event text, resolved_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN event = 'resolved' THEN kpi_internal.rfc3339(resolved_at)
                WHEN kind = 'alertmanager' THEN kpi_internal.rfc3339(now() + 4 * greatest(
                    coalesce(nullif(current_setting('kpi.alert_interval', true), ''), '15s')::interval,
                    coalesce(nullif(current_setting('kpi.alertmanager_resend', true), ''), '1min')::interval))
                ELSE '0001-01-01T00:00:00Z' END
$$;

-- The body a receiver gets for a notification (kpi_core::delivery::body):
-- webhook (Alertmanager's webhook JSON, version 4), slack (an
-- incoming-webhook message) or alertmanager (the alerts array of POST
-- /api/v2/alerts). Labels: the rule's labels and the series' tags (empty
-- ones left out), alertname, severity, metric, source; annotations: the
-- rule's other annotations rendered and the message as summary; names made
-- valid for Alertmanager.
CREATE FUNCTION kpi_internal.delivery_body(kind text, receiver text, n kpi.notifications, a kpi.alerts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT kpi_internal.delivery_body_text(kind, receiver, n.event, ru.name, ru.labels, ru.annotations, a.metric,
                                           a.severity::text, a.source, a.labels, a.message,
                                           kpi_internal.format_number(a.value), kpi_internal.format_number(a.threshold),
                                           a.fingerprint, kpi_internal.rfc3339(a.started_at),
                                           kpi_internal.delivery_ends_at(kind, n.event, a.resolved_at))::jsonb
    FROM (SELECT NULL) x
    LEFT JOIN kpi.alert_rules ru ON ru.id = a.rule_id
$$;

-- Re-sends while an alert fires: its latest notification, delivered to a
-- receiver longer ago than the receiver's repeat_interval (0: never), or
-- than kpi.alertmanager_resend for an Alertmanager (which otherwise ends the
-- alert at its endsAt), is queued again; the body is built from the alert
-- as it is now. Returns how many.
CREATE FUNCTION kpi_internal.queue_repeats() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    resend interval := coalesce(nullif(current_setting('kpi.alertmanager_resend', true), ''), '1min')::interval;
    n bigint;
BEGIN
    UPDATE kpi.deliveries d SET status = 'pending', next_attempt_at = now(), attempts = 0, last_error = NULL,
                                delivered_at = NULL, created_at = now()
    FROM kpi.alerts a
    JOIN LATERAL (SELECT max(x.id) AS id FROM kpi.notifications x WHERE x.alert_id = a.id) last ON true
    JOIN kpi.notifications nt ON nt.id = last.id AND nt.event = 'firing'
    JOIN kpi.alert_receivers r ON r.enabled
    WHERE a.state = 'firing'
      AND d.notification_id = nt.id AND d.receiver_id = r.id AND d.status = 'delivered'
      AND d.delivered_at <= now() - CASE WHEN r.kind = 'alertmanager' THEN resend ELSE r.repeat_interval END
      AND (r.kind = 'alertmanager' OR r.repeat_interval > interval '0');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION kpi_internal.queue_repeats() IS
    'Internal: queues again the latest notification of firing alerts for receivers whose repeat_interval (or kpi.alertmanager_resend) has passed';

-- Housekeeping before sending: re-sends of firing alerts, and (prune)
-- deliveries whose notification or alert is gone (the outbox was pruned or
-- truncated) and finished deliveries and attempts older than
-- kpi.delivery_retention (the latest delivery of a firing alert is kept:
-- re-sends start from it).
CREATE FUNCTION kpi_internal.delivery_housekeeping(prune boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keep interval := coalesce(nullif(current_setting('kpi.delivery_retention', true), ''), '7d')::interval;
BEGIN
    PERFORM kpi_internal.queue_repeats();
    IF prune THEN
        -- (claims skip these; this scans the pending queue, so not every round)
        DELETE FROM kpi.deliveries d
        WHERE d.status = 'pending'
          AND NOT EXISTS (SELECT 1 FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id
                          WHERE n.id = d.notification_id);
        DELETE FROM kpi.deliveries d
        WHERE d.status <> 'pending' AND coalesce(d.delivered_at, d.created_at) < now() - keep
          AND NOT EXISTS (SELECT 1 FROM kpi.notifications n JOIN kpi.alerts a ON a.id = n.alert_id
                          WHERE n.id = d.notification_id AND a.state = 'firing');
        DELETE FROM kpi.delivery_attempts t WHERE t.attempted_at < now() - keep;
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.delivery_housekeeping(boolean) IS
    'Internal: queues re-sends, drops deliveries whose notification is gone and (prune) finished deliveries and attempts older than kpi.delivery_retention';

-- The due deliveries, at most per_receiver of each enabled receiver (so a
-- receiver with a backlog does not crowd the others out), locked for this
-- session (others skip them), with where and what to send.
CREATE FUNCTION kpi_internal.claim_deliveries(per_receiver integer)
RETURNS TABLE (notification_id bigint, receiver_id bigint, receiver text, kind text, url text, headers jsonb,
               body text, attempts integer, alert_id bigint)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.notification_id, d.receiver_id, r.name, r.kind,
           CASE WHEN r.kind = 'alertmanager' THEN rtrim(r.url, '/') || '/api/v2/alerts' ELSE r.url END,
           r.headers,
           kpi_internal.delivery_body_text(r.kind, r.name, n.event, ru.name, ru.labels, ru.annotations, a.metric,
                                           a.severity::text, a.source, a.labels, a.message,
                                           kpi_internal.format_number(a.value), kpi_internal.format_number(a.threshold),
                                           a.fingerprint, kpi_internal.rfc3339(a.started_at),
                                           kpi_internal.delivery_ends_at(r.kind, n.event, a.resolved_at)),
           d.attempts, a.id
    FROM kpi.alert_receivers r
    CROSS JOIN LATERAL (
        SELECT x.notification_id, x.receiver_id, x.attempts, x.next_attempt_at
        FROM kpi.deliveries x
        WHERE x.receiver_id = r.id AND x.status = 'pending' AND x.next_attempt_at <= now()
          -- a delivery whose notification or alert is gone is never claimed
          -- (kpi_internal.delivery_housekeeping drops it)
          AND EXISTS (SELECT 1 FROM kpi.notifications y JOIN kpi.alerts z ON z.id = y.alert_id
                      WHERE y.id = x.notification_id)
        ORDER BY x.next_attempt_at, x.notification_id
        LIMIT per_receiver
        FOR UPDATE SKIP LOCKED) d
    -- index probes per claimed row (OFFSET 0 keeps the planner from hashing
    -- all of kpi.alerts, which grows with the history, for a batch)
    CROSS JOIN LATERAL (SELECT x.* FROM kpi.notifications x WHERE x.id = d.notification_id OFFSET 0) n
    CROSS JOIN LATERAL (SELECT x.* FROM kpi.alerts x WHERE x.id = n.alert_id OFFSET 0) a
    LEFT JOIN LATERAL (SELECT x.* FROM kpi.alert_rules x WHERE x.id = a.rule_id OFFSET 0) ru ON true
    WHERE r.enabled
    ORDER BY r.id, d.next_attempt_at, d.notification_id
$$;

-- The outcomes of a round, one element per claimed delivery: attempted ones
-- are recorded (delivered on a 2xx; otherwise tried again after retry_ms,
-- or failed once the notification is older than kpi.delivery_max_age); the
-- others were not sent because their receiver was unavailable and wait
-- retry_ms. Returns each delivery's status.
CREATE FUNCTION kpi_internal.record_deliveries(notification_ids bigint[], receiver_ids bigint[], status_codes integer[],
                                               errors text[], durations_ms float8[], retries_ms bigint[],
                                               attempted boolean[])
RETURNS TABLE (notification_id bigint, receiver_id bigint, status text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_age interval := coalesce(nullif(current_setting('kpi.delivery_max_age', true), ''), '1d')::interval;
BEGIN
    INSERT INTO kpi.delivery_attempts (notification_id, receiver_id, status_code, error, duration_ms)
    SELECT o.n, o.r, o.code,
           CASE WHEN o.code BETWEEN 200 AND 299 THEN NULL ELSE coalesce(o.err, format('HTTP %s', o.code)) END, o.ms
    FROM unnest(notification_ids, receiver_ids, status_codes, errors, durations_ms, attempted) o(n, r, code, err, ms, tried)
    WHERE o.tried;
    UPDATE kpi.deliveries d SET
        attempts = d.attempts + CASE WHEN o.tried THEN 1 ELSE 0 END,
        status = CASE WHEN NOT o.tried THEN d.status WHEN o.ok THEN 'delivered'
                      WHEN d.created_at + max_age <= now() THEN 'failed' ELSE 'pending' END,
        delivered_at = CASE WHEN o.tried AND o.ok THEN now() ELSE d.delivered_at END,
        next_attempt_at = CASE WHEN o.tried AND o.ok THEN d.next_attempt_at
                               ELSE now() + o.retry * interval '1 millisecond' END,
        last_error = CASE WHEN NOT o.tried THEN d.last_error WHEN o.ok THEN NULL
                          ELSE coalesce(o.err, format('HTTP %s', o.code)) END
    FROM (SELECT u.*, coalesce(u.code BETWEEN 200 AND 299, false) AS ok
          FROM unnest(notification_ids, receiver_ids, status_codes, errors, retries_ms, attempted)
               u(n, r, code, err, retry, tried)) o
    -- (the ANY conditions let the primary key find the rows: a round costs
    -- the same however long the queue and its history)
    WHERE d.notification_id = ANY (notification_ids) AND d.notification_id = o.n AND d.receiver_id = o.r;
    -- an outbox row is done when no receiver still waits for it
    UPDATE kpi.notifications n SET delivered_at = now()
    WHERE n.id = ANY (notification_ids) AND n.delivered_at IS NULL
      AND n.id NOT IN (SELECT d.notification_id FROM kpi.deliveries d
                       WHERE d.notification_id = ANY (notification_ids) AND d.status = 'pending');
    RETURN QUERY
    SELECT d.notification_id, d.receiver_id, d.status
    FROM unnest(notification_ids, receiver_ids) o(n, r)
    JOIN kpi.deliveries d ON d.notification_id = o.n AND d.receiver_id = o.r
    WHERE d.notification_id = ANY (notification_ids);
END
$$;

CREATE VIEW kpi.delivery_status AS
SELECT r.name AS receiver, r.kind, r.enabled,
       count(d.*) FILTER (WHERE d.status = 'pending') AS pending,
       count(d.*) FILTER (WHERE d.status = 'delivered' AND d.delivered_at > now() - interval '1 hour') AS delivered_last_hour,
       (SELECT count(*) FROM kpi.delivery_attempts t
        WHERE t.receiver_id = r.id AND t.attempted_at > now() - interval '1 hour' AND t.error IS NOT NULL) AS failed_attempts_last_hour,
       count(d.*) FILTER (WHERE d.status = 'failed') AS given_up,
       (SELECT t.error FROM kpi.delivery_attempts t WHERE t.receiver_id = r.id AND t.error IS NOT NULL
        ORDER BY t.id DESC LIMIT 1) AS last_error,
       now() - min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest_undelivered_age
FROM kpi.alert_receivers r
LEFT JOIN kpi.deliveries d ON d.receiver_id = r.id
GROUP BY r.id, r.name, r.kind, r.enabled;

SELECT pg_catalog.pg_extension_config_dump('kpi.alert_receivers', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.alert_receivers_id_seq', '');

COMMENT ON FUNCTION kpi_internal.receiver_url_problem(text) IS 'Internal: why a receiver URL is not acceptable (kpi_core::delivery::url_problem), NULL when it is';
COMMENT ON FUNCTION kpi.deliver_now(integer) IS
    'Sends the alert deliveries that are due (at most max per receiver, default 100) and records each attempt; the delivery worker does the same on its own';
COMMENT ON FUNCTION kpi_internal.wake_delivery() IS 'Internal: wakes the database''s delivery worker (or has the launcher start one) when the transaction commits';
COMMENT ON FUNCTION kpi_internal.wake_delivery_trigger() IS 'Internal: trigger waking the delivery worker after new deliveries or receiver changes';
COMMENT ON COLUMN kpi.delivery_status.receiver IS 'Receiver name';
COMMENT ON COLUMN kpi.delivery_status.kind IS 'webhook, slack or alertmanager';
COMMENT ON COLUMN kpi.delivery_status.enabled IS 'Whether the receiver is enabled';
COMMENT ON COLUMN kpi.delivery_status.pending IS 'Deliveries not yet sent (due or waiting for a retry)';
COMMENT ON COLUMN kpi.delivery_status.delivered_last_hour IS 'Deliveries answered with a 2xx in the last hour';
COMMENT ON COLUMN kpi.delivery_status.failed_attempts_last_hour IS 'Attempts that failed in the last hour';
COMMENT ON COLUMN kpi.delivery_status.given_up IS 'Deliveries given up after kpi.delivery_max_age';
COMMENT ON COLUMN kpi.delivery_status.last_error IS 'The last failed attempt''s error';
COMMENT ON COLUMN kpi.delivery_status.oldest_undelivered_age IS 'Age of the oldest pending delivery';
COMMENT ON VIEW kpi.delivery_status IS
    'Per receiver: deliveries pending, delivered in the last hour, failed attempts in the last hour, given up, the last error and the oldest undelivered age';
COMMENT ON FUNCTION kpi_internal.check_alert_receiver() IS 'Internal: trigger checking an alert receiver''s config';
COMMENT ON FUNCTION kpi_internal.queue_firing_for_receiver() IS 'Internal: queues the alerts already firing for a receiver that is added, enabled or given new matchers';
COMMENT ON FUNCTION kpi_internal.queue_deliveries() IS 'Internal: queues each new notification for the receivers whose matchers select it';
COMMENT ON FUNCTION kpi_internal.rfc3339(timestamptz) IS 'Internal: a timestamp as RFC 3339 in UTC';
COMMENT ON FUNCTION kpi_internal.label_name(text) IS 'Internal: a label or annotation name made valid for Alertmanager ([a-zA-Z_][a-zA-Z0-9_]*)';
COMMENT ON FUNCTION kpi_internal.delivery_body_text(text, text, text, text, jsonb, jsonb, text, text, text, jsonb, text, text, text, text, text, text) IS 'Internal: the JSON body a receiver of a kind gets for a notification (kpi_core::delivery::body)';
COMMENT ON FUNCTION kpi_internal.delivery_ends_at(text, text, timestamptz) IS 'Internal: the endsAt a receiver of a kind is told for an alert';
COMMENT ON FUNCTION kpi_internal.delivery_body(text, text, kpi.notifications, kpi.alerts) IS 'Internal: the JSON body a receiver of this kind gets for a notification';
COMMENT ON FUNCTION kpi_internal.claim_deliveries(integer) IS 'Internal: locks and returns the due deliveries (at most per_receiver of each receiver) with their URL, headers and body';
COMMENT ON FUNCTION kpi_internal.record_deliveries(bigint[], bigint[], integer[], text[], float8[], bigint[], boolean[]) IS 'Internal: records a round of delivery attempts and their outcomes (delivered, retried later, or given up)';
COMMENT ON COLUMN kpi.alert_receivers.id IS 'Receiver id';
COMMENT ON COLUMN kpi.alert_receivers.name IS 'Unique name (the receiver of Alertmanager''s webhook JSON)';
COMMENT ON COLUMN kpi.alert_receivers.kind IS 'webhook (Alertmanager''s webhook JSON, version 4), slack (incoming webhook) or alertmanager (POST /api/v2/alerts)';
COMMENT ON COLUMN kpi.alert_receivers.url IS 'http(s) URL: the webhook, or the Alertmanager''s base URL';
COMMENT ON COLUMN kpi.alert_receivers.headers IS 'HTTP headers sent with every delivery (e.g. Authorization); never in a body';
COMMENT ON COLUMN kpi.alert_receivers.matchers IS 'Which notifications: metric, severity, source, rule and labels (contained), as for silences; {} is all';
COMMENT ON COLUMN kpi.alert_receivers.repeat_interval IS 'How often a still-firing alert is sent again (0: never; Alertmanagers get kpi.alertmanager_resend)';
COMMENT ON COLUMN kpi.alert_receivers.send_resolved IS 'Whether resolutions are sent too';
COMMENT ON COLUMN kpi.alert_receivers.enabled IS 'false: nothing is queued or sent';
COMMENT ON COLUMN kpi.alert_receivers.created_at IS 'When the receiver was added';
COMMENT ON COLUMN kpi.deliveries.notification_id IS 'The notification (kpi.notifications.id)';
COMMENT ON COLUMN kpi.deliveries.receiver_id IS 'The receiver (kpi.alert_receivers.id)';
COMMENT ON COLUMN kpi.deliveries.status IS 'pending, delivered or failed (given up after kpi.delivery_max_age)';
COMMENT ON COLUMN kpi.deliveries.attempts IS 'Attempts so far';
COMMENT ON COLUMN kpi.deliveries.next_attempt_at IS 'When it is due (backoff after a failure)';
COMMENT ON COLUMN kpi.deliveries.delivered_at IS 'When a 2xx answer was received';
COMMENT ON COLUMN kpi.deliveries.last_error IS 'Why the last attempt failed';
COMMENT ON COLUMN kpi.deliveries.created_at IS 'When it was queued';
COMMENT ON COLUMN kpi.delivery_attempts.id IS 'Attempt id';
COMMENT ON COLUMN kpi.delivery_attempts.notification_id IS 'The notification';
COMMENT ON COLUMN kpi.delivery_attempts.receiver_id IS 'The receiver';
COMMENT ON COLUMN kpi.delivery_attempts.attempted_at IS 'When it was made';
COMMENT ON COLUMN kpi.delivery_attempts.status_code IS 'HTTP status (NULL when no answer)';
COMMENT ON COLUMN kpi.delivery_attempts.error IS 'NULL for a 2xx; otherwise the HTTP status or the transport error';
COMMENT ON COLUMN kpi.delivery_attempts.duration_ms IS 'How long the request took';
