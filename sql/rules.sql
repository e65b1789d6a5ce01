-- Alert rules (first part of the rules feature): windowed conditions on one
-- metric, evaluated by kpi.evaluate_alerts(at) -- by the built-in 'rules' job
-- every 15 seconds -- with Prometheus semantics: pending at the first
-- evaluation where the condition holds, firing once it has held for "for",
-- resolved at the first evaluation at least keep_firing_for after it stopped
-- (and, with a resolve_threshold, once the value has crossed it). The
-- lifecycle is kpi_core::rules::step; its state lives in kpi.alerts, so a
-- restart changes nothing.

CREATE TABLE kpi.alert_rules (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    metric             text NOT NULL,
    tags               jsonb NOT NULL DEFAULT '{}',
    group_by           text[] NOT NULL DEFAULT '{}',
    aggregate          text NOT NULL,
    "window"           interval NOT NULL,
    comparator         text NOT NULL,
    warning            double precision,
    critical           double precision,
    resolve_threshold  double precision,
    "for"              interval NOT NULL DEFAULT '0',
    keep_firing_for    interval NOT NULL DEFAULT '0',
    labels             jsonb NOT NULL DEFAULT '{}',
    annotations        jsonb NOT NULL DEFAULT '{}',
    enabled            boolean NOT NULL DEFAULT true,
    last_error         text,
    last_evaluated_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kpi.alert_rules IS
    'Alert rules: an aggregate of one metric over a window, compared with warning and critical thresholds, evaluated by kpi.evaluate_alerts';

-- A rule's config, checked at definition time: every mistake is an ERROR
-- naming the field (22023, or 22004 for a missing one).
CREATE FUNCTION kpi_internal.check_alert_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_rules := NEW;
    up boolean;
BEGIN
    IF r.name IS NULL OR btrim(r.name) = '' THEN
        RAISE EXCEPTION 'alert rule: name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.metric IS NULL OR r.metric = '' THEN
        RAISE EXCEPTION 'alert rule "%": metric must not be empty', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(r.tags) <> 'object' THEN
        RAISE EXCEPTION 'alert rule "%": tags must be a JSON object, got %', r.name, r.tags USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(r.labels) <> 'object' OR jsonb_typeof(r.annotations) <> 'object' THEN
        RAISE EXCEPTION 'alert rule "%": labels and annotations must be JSON objects', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(r.group_by, NULL) IS NOT NULL OR array_position(r.group_by, '') IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%": group_by must name tag keys', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kpi_internal.rule_aggregate_sql(r.aggregate) IS NULL THEN
        RAISE EXCEPTION 'alert rule "%": unknown aggregate "%"', r.name, r.aggregate USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Aggregates: avg, min, max, sum, count, rate, last, stddev, absent, and percentiles p50, p95, p99 or any pNN.N.';
    END IF;
    IF r."window" IS NULL OR r."window" <= interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": window must be a positive interval, got %', r.name, coalesce(r."window"::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.comparator IS NULL OR r.comparator NOT IN ('>', '>=', '<', '<=') THEN
        RAISE EXCEPTION 'alert rule "%": comparator must be >, >=, < or <=, got %', r.name, coalesce(r.comparator, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r."for" < interval '0' OR r.keep_firing_for < interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": "for" and keep_firing_for must not be negative', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    up := r.comparator IN ('>', '>=');
    IF r.aggregate <> 'absent' AND r.warning IS NULL AND r.critical IS NULL
       AND NOT EXISTS (SELECT 1 FROM kpi.metric_definitions d WHERE d.metric = r.metric AND d.breach_edge IS NOT NULL) THEN
        RAISE EXCEPTION 'alert rule "%": give warning or critical (metric "%" has no thresholds to use)', r.name, r.metric
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.warning IS NOT NULL AND r.critical IS NOT NULL
       AND (CASE WHEN up THEN r.critical < r.warning ELSE r.critical > r.warning END) THEN
        RAISE EXCEPTION 'alert rule "%": critical (%) must be % warning (%) for comparator %', r.name, r.critical,
            CASE WHEN up THEN 'at or above' ELSE 'at or below' END, r.warning, r.comparator
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.resolve_threshold IS NOT NULL AND coalesce(r.warning, r.critical) IS NOT NULL
       AND (CASE WHEN up THEN r.resolve_threshold > coalesce(r.warning, r.critical)
                 ELSE r.resolve_threshold < coalesce(r.warning, r.critical) END) THEN
        RAISE EXCEPTION 'alert rule "%": resolve_threshold (%) must be on the good side of the threshold (%)', r.name,
            r.resolve_threshold, coalesce(r.warning, r.critical) USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Hysteresis: with > 300, a resolve_threshold of 250 resolves only once the value is back below 250.';
    END IF;
    NEW.group_by := ARRAY(SELECT DISTINCT k FROM unnest(r.group_by) k ORDER BY k);
    RETURN NEW;
END
$$;
CREATE TRIGGER alert_rules_check
    BEFORE INSERT OR UPDATE OF name, metric, tags, group_by, aggregate, "window", comparator, warning, critical,
                               resolve_threshold, "for", keep_firing_for, labels, annotations ON kpi.alert_rules
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.check_alert_rule();

-- The SQL expression of an aggregate over the window's rows (m.value, m.ts),
-- or NULL for an unknown one; %1$s is the window in seconds.
CREATE FUNCTION kpi_internal.rule_aggregate_sql(aggregate text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN $1 IN ('avg', 'min', 'max', 'sum') THEN $1 || '(m.value)'
        WHEN $1 = 'count' THEN 'count(*)::float8'
        WHEN $1 = 'absent' THEN 'count(*)::float8'
        WHEN $1 = 'rate' THEN 'count(*)::float8 / %1$s'
        WHEN $1 = 'last' THEN '(array_agg(m.value ORDER BY m.ts DESC))[1]'
        WHEN $1 = 'stddev' THEN 'stddev_samp(m.value)'
        WHEN $1 ~ '^p[0-9]{1,2}(\.[0-9]+)?$' AND substr($1, 2)::numeric BETWEEN 0 AND 100
            THEN format('kpi.percentile(m.value, %s)', substr($1, 2)::numeric / 100)
        END
$$;
COMMENT ON FUNCTION kpi_internal.rule_aggregate_sql(text) IS 'Internal: the SQL of a rule aggregate over the window''s rows, NULL when unknown';

-- Whether value is beyond threshold on the comparator's side; false for a NULL threshold.
CREATE FUNCTION kpi_internal.beyond(value float8, comparator text, threshold float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(CASE $2 WHEN '>' THEN $1 > $3 WHEN '>=' THEN $1 >= $3
                            WHEN '<' THEN $1 < $3 WHEN '<=' THEN $1 <= $3 END, false)
$$;
COMMENT ON FUNCTION kpi_internal.beyond(float8, text, float8) IS 'Internal: value compared with threshold by a rule''s comparator (false for NULL)';

CREATE FUNCTION kpi.add_alert_rule(
    name text, metric text, aggregate text, "window" interval, comparator text,
    warning float8 DEFAULT NULL, critical float8 DEFAULT NULL, "for" interval DEFAULT '0',
    keep_firing_for interval DEFAULT '0', group_by text[] DEFAULT '{}', tags jsonb DEFAULT '{}',
    resolve_threshold float8 DEFAULT NULL, labels jsonb DEFAULT '{}', annotations jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM kpi.alert_rules r WHERE r.name = add_alert_rule.name) THEN
        RAISE EXCEPTION 'kpi.add_alert_rule: a rule named "%" exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO kpi.alert_rules (name, metric, aggregate, "window", comparator, warning, critical, "for",
                                 keep_firing_for, group_by, tags, resolve_threshold, labels, annotations)
    VALUES (name, metric, aggregate, "window", comparator, warning, critical, coalesce("for", '0'),
            coalesce(keep_firing_for, '0'), coalesce(group_by, '{}'), coalesce(tags, '{}'), resolve_threshold,
            coalesce(labels, '{}'), coalesce(annotations, '{}'))
    RETURNING id INTO rid;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION kpi.add_alert_rule(text, text, text, interval, text, float8, float8, interval, interval, text[], jsonb, float8, jsonb, jsonb) IS
    'Adds an alert rule: aggregate (avg, min, max, sum, count, rate, last, stddev, absent, pNN) of metric over window compared with warning/critical; returns its id';

CREATE FUNCTION kpi.drop_alert_rule(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    DELETE FROM kpi.alert_rules r WHERE r.name = drop_alert_rule.name RETURNING id INTO rid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.drop_alert_rule: no rule named "%"', name USING ERRCODE = 'undefined_object';
    END IF;
    -- its open alerts end with it
    UPDATE kpi.alerts SET state = 'resolved', resolved_at = now()
    WHERE rule_id = rid AND state <> 'resolved';
END
$$;
COMMENT ON FUNCTION kpi.drop_alert_rule(text) IS 'Drops an alert rule; its open alerts are resolved, its history stays';

-- Renders an annotation template: {{metric}}, {{value}}, {{threshold}},
-- {{severity}}, {{rule}} and {{labels.KEY}}; values are text, never SQL.
CREATE FUNCTION kpi_internal.render_template(template text, rule text, metric text, value float8,
                                             threshold float8, severity text, labels jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    out text := template;
    k text;
BEGIN
    IF out IS NULL THEN
        RETURN NULL;
    END IF;
    out := replace(out, '{{rule}}', coalesce(rule, ''));
    out := replace(out, '{{metric}}', coalesce(metric, ''));
    out := replace(out, '{{value}}', coalesce(kpi_internal.format_number(value), ''));
    out := replace(out, '{{threshold}}', coalesce(kpi_internal.format_number(threshold), ''));
    out := replace(out, '{{severity}}', coalesce(severity, ''));
    FOR k IN SELECT jsonb_object_keys(coalesce(labels, '{}')) LOOP
        out := replace(out, '{{labels.' || k || '}}', coalesce(labels->>k, ''));
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi_internal.render_template(text, text, text, float8, float8, text, jsonb) IS
    'Internal: an annotation with {{rule}}, {{metric}}, {{value}}, {{threshold}}, {{severity}} and {{labels.KEY}} filled in';

-- Evaluates every enabled rule at "at": the window is the rows with ts in
-- (at - window, at], one value per series (the group_by tags), judged
-- against the thresholds and stepped through the lifecycle; kpi.alerts holds
-- the result. A rule that fails records last_error and is skipped; the
-- others still run. Returns a row per series that is pending or firing, or
-- that this evaluation resolved.
CREATE FUNCTION kpi.evaluate_alerts(at timestamptz DEFAULT now())
RETURNS TABLE (rule text, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    r kpi.alert_rules;
    q text;
    s record;
    st record;
    sev kpi.severity_level;
    crossed float8;
    holds boolean;
    cleared boolean;
    up boolean;
    msg text;
    a kpi.alerts;
BEGIN
    IF at IS NULL OR at > now() THEN
        RAISE EXCEPTION 'kpi.evaluate_alerts: at must be a time up to now(), got %', coalesce(at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR r IN SELECT * FROM kpi.alert_rules ar WHERE ar.enabled ORDER BY ar.id LOOP
        BEGIN
            -- one evaluation of a rule at a time: a concurrent one waits and then
            -- continues from the state this one leaves (no duplicate alerts)
            PERFORM pg_advisory_xact_lock(hashtext('pg_kpi.alert_rules'), r.id::integer);
            up := r.comparator IN ('>', '>=');
            q := format($q$
                WITH vals AS (
                    SELECT %s AS series, %s AS value
                    FROM kpi.metrics m
                    WHERE m.metric = $1 AND m.tags @> $2 AND m.ts > $3 - $4 AND m.ts <= $3
                    GROUP BY 1
                ), vals2 AS (
                    SELECT * FROM vals
                    UNION ALL
                    SELECT '{}'::jsonb, 0 WHERE $5 AND NOT EXISTS (SELECT FROM vals)
                ), open AS (
                    SELECT a.id, a.labels, a.state, a.started_at, a.fired_at, a.keep_firing_since, a.severity
                    FROM kpi.alerts a WHERE a.rule_id = $6 AND a.state IN ('pending', 'firing')
                )
                SELECT coalesce(v.series, o.labels) AS series, v.value, o.id, o.state AS old_state,
                       o.started_at, o.fired_at, o.keep_firing_since, o.severity AS old_severity
                FROM vals2 v FULL JOIN open o ON o.labels = v.series
                ORDER BY 1 $q$,
                kpi_internal.series_expr(r.group_by, 'm.tags'),
                format(kpi_internal.rule_aggregate_sql(r.aggregate), extract(epoch FROM r."window")));
            FOR s IN EXECUTE q USING r.metric, r.tags, at, r."window", r.aggregate = 'absent', r.id LOOP
                -- judge the value: the worst threshold breached
                sev := NULL; crossed := NULL; holds := false; cleared := true;
                IF r.aggregate = 'absent' THEN
                    holds := s.value = 0;
                    IF holds THEN
                        sev := CASE WHEN r.critical IS NULL AND r.warning IS NOT NULL THEN 'warning' ELSE 'critical' END;
                    END IF;
                ELSIF s.value IS NOT NULL AND (r.warning IS NOT NULL OR r.critical IS NOT NULL) THEN
                    IF kpi_internal.beyond(s.value, r.comparator, r.critical) THEN
                        sev := 'critical'; crossed := r.critical;
                    ELSIF kpi_internal.beyond(s.value, r.comparator, r.warning) THEN
                        sev := 'warning'; crossed := r.warning;
                    END IF;
                    holds := sev IS NOT NULL;
                ELSIF s.value IS NOT NULL THEN
                    -- no thresholds of its own: the metric's definition and its direction
                    sev := kpi.severity(r.metric, s.value);
                    holds := coalesce(sev >= 'warning', false);
                    IF NOT holds THEN
                        sev := NULL;
                    ELSE
                        crossed := (SELECT kpi_internal.crossed_threshold(sev::text, d.optimal, d.good, d.warning, d.critical)
                                    FROM kpi.metric_definitions d WHERE d.metric = r.metric);
                    END IF;
                END IF;
                cleared := NOT holds;
                IF r.resolve_threshold IS NOT NULL AND s.value IS NOT NULL AND NOT holds THEN
                    -- hysteresis: resolved only once back on the good side of resolve_threshold
                    cleared := NOT kpi_internal.beyond(s.value, r.comparator, r.resolve_threshold)
                               AND s.value <> r.resolve_threshold;
                END IF;
                SELECT * INTO st FROM kpi_internal.rule_step(s.old_state, s.started_at, s.fired_at, s.keep_firing_since,
                                                             r."for", r.keep_firing_for, at, holds, cleared);
                IF st.event = 'pending' OR (st.event = 'fired' AND s.id IS NULL) THEN
                    INSERT INTO kpi.alerts AS x (fingerprint, source, rule_id, metric, labels, severity, state, value,
                                                 threshold, message, started_at, last_seen_at, fired_at)
                    VALUES (kpi.alert_fingerprint('rule', r.id::text, s.series), 'rule', r.id, r.metric, s.series, sev,
                            st.state, s.value, crossed,
                            coalesce(kpi_internal.render_template(r.annotations->>'summary', r.name, r.metric, s.value,
                                                                  crossed, sev::text, s.series),
                                     format('%s%s: %s %s is %s %s', r.name,
                                            CASE WHEN s.series <> '{}' THEN ' ' || s.series::text ELSE '' END,
                                            r.aggregate, kpi_internal.format_number(s.value), r.comparator,
                                            kpi_internal.format_number(crossed))),
                            st.active_at, at, st.fired_at)
                    RETURNING * INTO a;
                    IF st.event = 'fired' THEN
                        PERFORM kpi_internal.notify_alert(a);
                    END IF;
                ELSIF st.event = 'dropped' THEN
                    -- a pending alert that never fired leaves no row and no notification
                    DELETE FROM kpi.alerts x WHERE x.id = s.id;
                ELSIF st.event = 'resolved' THEN
                    UPDATE kpi.alerts x SET state = 'resolved', resolved_at = at, keep_firing_since = NULL
                    WHERE x.id = s.id RETURNING * INTO a;
                    PERFORM kpi_internal.notify_alert(a);
                ELSIF s.id IS NOT NULL THEN
                    -- still pending or firing: follow the value and severity while the condition holds
                    UPDATE kpi.alerts x SET
                        state = st.state, fired_at = st.fired_at, keep_firing_since = st.keep_firing_since,
                        last_seen_at = CASE WHEN holds THEN at ELSE x.last_seen_at END,
                        severity = CASE WHEN holds THEN sev ELSE x.severity END,
                        value = CASE WHEN holds THEN s.value ELSE x.value END,
                        threshold = CASE WHEN holds THEN crossed ELSE x.threshold END,
                        message = CASE WHEN holds THEN
                            coalesce(kpi_internal.render_template(r.annotations->>'summary', r.name, r.metric, s.value,
                                                                  crossed, sev::text, s.series),
                                     format('%s%s: %s %s is %s %s', r.name,
                                            CASE WHEN s.series <> '{}' THEN ' ' || s.series::text ELSE '' END,
                                            r.aggregate, kpi_internal.format_number(s.value), r.comparator,
                                            kpi_internal.format_number(crossed)))
                            ELSE x.message END,
                        occurrences = CASE WHEN holds THEN least(x.occurrences::bigint + 1, 2147483647)::integer
                                           ELSE x.occurrences END
                    WHERE x.id = s.id RETURNING * INTO a;
                    IF st.event = 'fired' OR (st.state = 'firing' AND holds AND sev IS DISTINCT FROM s.old_severity) THEN
                        PERFORM kpi_internal.notify_alert(a);
                    END IF;
                END IF;
                IF st.state IN ('pending', 'firing') OR st.event = 'resolved' THEN
                    rule := r.name; series := s.series; state := CASE WHEN st.event = 'resolved' THEN 'resolved' ELSE st.state END;
                    severity := coalesce(sev, a.severity); value := s.value;
                    RETURN NEXT;
                END IF;
            END LOOP;
            UPDATE kpi.alert_rules ar SET last_error = NULL, last_evaluated_at = at WHERE ar.id = r.id;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            UPDATE kpi.alert_rules ar SET last_error = msg, last_evaluated_at = at WHERE ar.id = r.id;
            RAISE WARNING 'pg_kpi: alert rule "%" failed: %', r.name, msg;
        END;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION kpi.evaluate_alerts(timestamptz) IS
    'Evaluates every enabled alert rule at "at" (default now()) into kpi.alerts; returns the series pending, firing or resolved by this evaluation';

-- the 'rules' job kind and its built-in job: every 15 seconds
CREATE FUNCTION kpi_internal.run_rules_job(config jsonb, OUT rows bigint, OUT buckets bigint, OUT more boolean)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT count(*), 0::bigint, false FROM kpi.evaluate_alerts()
$$;
COMMENT ON FUNCTION kpi_internal.run_rules_job(jsonb) IS 'Internal: runs the rules job (kpi.evaluate_alerts)';
SELECT kpi_internal.register_job_kind('rules', 'kpi_internal.run_rules_job(jsonb)', NULL, false,
                                      'Evaluates the alert rules');
INSERT INTO kpi.jobs (kind, config, schedule_interval, builtin) VALUES ('rules', '{}', '15 seconds', true);

SELECT pg_catalog.pg_extension_config_dump('kpi.alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.alert_rules_id_seq', '');

-- columns
COMMENT ON COLUMN kpi.alert_rules.id IS 'Rule id (kpi.alerts.rule_id)';
COMMENT ON COLUMN kpi.alert_rules.name IS 'Unique name (Prometheus'' alertname)';
COMMENT ON COLUMN kpi.alert_rules.metric IS 'Metric the rule reads';
COMMENT ON COLUMN kpi.alert_rules.tags IS 'Only rows whose tags contain these';
COMMENT ON COLUMN kpi.alert_rules.group_by IS 'Tag keys that split the rule into one alert per series';
COMMENT ON COLUMN kpi.alert_rules.aggregate IS 'avg, min, max, sum, count, rate (per second), last, stddev, absent, or a percentile pNN';
COMMENT ON COLUMN kpi.alert_rules."window" IS 'The rows with ts in (at - window, at]';
COMMENT ON COLUMN kpi.alert_rules.comparator IS '>, >=, < or <=: the bad side of the thresholds';
COMMENT ON COLUMN kpi.alert_rules.warning IS 'Warning threshold (NULL: none; both NULL: the metric''s definition)';
COMMENT ON COLUMN kpi.alert_rules.critical IS 'Critical threshold';
COMMENT ON COLUMN kpi.alert_rules.resolve_threshold IS 'Hysteresis: a firing alert resolves only once the value is back beyond it';
COMMENT ON COLUMN kpi.alert_rules."for" IS 'How long the condition must hold before the alert fires (pending until then)';
COMMENT ON COLUMN kpi.alert_rules.keep_firing_for IS 'How long an alert keeps firing after the condition stops';
COMMENT ON COLUMN kpi.alert_rules.labels IS 'Labels attached to the rule''s alerts (for delivery and routing)';
COMMENT ON COLUMN kpi.alert_rules.annotations IS 'Templates, e.g. {"summary": "{{metric}} p95 is {{value}} ms"}; summary becomes the alert message';
COMMENT ON COLUMN kpi.alert_rules.enabled IS 'false: not evaluated';
COMMENT ON COLUMN kpi.alert_rules.last_error IS 'Why the last evaluation of the rule failed (NULL after a success)';
COMMENT ON COLUMN kpi.alert_rules.last_evaluated_at IS 'The at of the last evaluation';
COMMENT ON COLUMN kpi.alert_rules.created_at IS 'When the rule was created';
COMMENT ON FUNCTION kpi_internal.check_alert_rule() IS 'Internal: trigger checking an alert rule''s config';
COMMENT ON FUNCTION kpi_internal.rule_step(text, timestamptz, timestamptz, timestamptz, interval, interval, timestamptz, boolean, boolean) IS 'Internal: one evaluation of a series'' alert lifecycle (kpi_core::rules::step): next state, its times and the event';
