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
    denominator_metric text,
    baseline           interval NOT NULL DEFAULT '24 hours',
    horizon            interval NOT NULL DEFAULT '15 minutes',
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
            HINT = 'Aggregates: avg, min, max, sum, count, rate, last, stddev, absent, ratio, zscore, forecast, and percentiles p50, p95, p99 or any pNN.N.';
    END IF;
    IF r."window" IS NULL OR r."window" <= interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": window must be a positive interval, got %', r.name, coalesce(r."window"::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.aggregate = 'ratio' AND (r.denominator_metric IS NULL OR r.denominator_metric = '') THEN
        RAISE EXCEPTION 'alert rule "%": a ratio needs denominator_metric (the metric it divides by)', r.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.horizon IS NULL OR r.horizon <= interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": horizon must be a positive interval', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.baseline IS NULL OR r.baseline <= interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": baseline must be a positive interval', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.comparator IS NULL OR r.comparator NOT IN ('>', '>=', '<', '<=') THEN
        RAISE EXCEPTION 'alert rule "%": comparator must be >, >=, < or <=, got %', r.name, coalesce(r.comparator, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r."for" < interval '0' OR r.keep_firing_for < interval '0' THEN
        RAISE EXCEPTION 'alert rule "%": "for" and keep_firing_for must not be negative', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    up := r.comparator IN ('>', '>=');
    IF r.aggregate NOT IN ('absent', 'ratio', 'zscore', 'forecast') AND r.warning IS NULL AND r.critical IS NULL
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
                               resolve_threshold, denominator_metric, baseline, horizon, "for", keep_firing_for, labels, annotations ON kpi.alert_rules
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
        WHEN $1 IN ('ratio', 'zscore') THEN 'avg(m.value)'
        -- the least-squares line over the window, extrapolated %2$s seconds past "at"
        WHEN $1 = 'forecast' THEN 'kpi.forecast(kpi.trend_agg(m.ts, m.value), $3 + %2$s * interval ''1 second'')'
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
    resolve_threshold float8 DEFAULT NULL, labels jsonb DEFAULT '{}', annotations jsonb DEFAULT '{}',
    denominator_metric text DEFAULT NULL, baseline interval DEFAULT '24 hours', horizon interval DEFAULT '15 minutes')
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM kpi.alert_rules r WHERE r.name = add_alert_rule.name) THEN
        RAISE EXCEPTION 'kpi.add_alert_rule: a rule named "%" exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO kpi.alert_rules (name, metric, aggregate, "window", comparator, warning, critical, "for",
                                 keep_firing_for, group_by, tags, resolve_threshold, labels, annotations,
                                 denominator_metric, baseline, horizon)
    VALUES (name, metric, aggregate, "window", comparator, warning, critical, coalesce("for", '0'),
            coalesce(keep_firing_for, '0'), coalesce(group_by, '{}'), coalesce(tags, '{}'), resolve_threshold,
            coalesce(labels, '{}'), coalesce(annotations, '{}'), denominator_metric, coalesce(baseline, '24 hours'),
            coalesce(horizon, '15 minutes'))
    RETURNING id INTO rid;
    RETURN rid;
END
$$;
COMMENT ON FUNCTION kpi.add_alert_rule(text, text, text, interval, text, float8, float8, interval, interval, text[], jsonb, float8, jsonb, jsonb, text, interval, interval) IS
    'Adds an alert rule: aggregate (avg, min, max, sum, count, rate, last, stddev, absent, ratio, zscore, forecast, pNN) of metric over window compared with warning/critical; returns its id';

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

-- The query of a rule's values at $3: one row (series, value) per series of
-- the group_by tags. Parameters: $1 metric, $2 tags, $3 at, $4 window, $5
-- absent?, $6 denominator metric, $7 baseline.
CREATE FUNCTION kpi_internal.rule_values_sql(r kpi.alert_rules) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    series text := kpi_internal.series_expr(r.group_by, 'm.tags');
BEGIN
    IF r.aggregate = 'ratio' THEN
        -- the metric's sum over the denominator's, same tags and window (5xx over all requests)
        RETURN format($q$
            SELECT %s AS series,
                   sum(m.value) FILTER (WHERE m.metric = $1) / nullif(sum(m.value) FILTER (WHERE m.metric = $6), 0) AS value
            FROM kpi.metrics m
            WHERE m.metric IN ($1, $6) AND m.tags @> $2 AND m.ts > $3 - $4 AND m.ts <= $3
            GROUP BY 1 $q$, series);
    ELSIF r.aggregate = 'zscore' THEN
        -- the window's mean against the baseline window that ends where it starts
        RETURN format($q$
            SELECT w.series, (w.mean - b.mu) / nullif(b.sd, 0) AS value
            FROM (SELECT %1$s AS series, avg(m.value) AS mean FROM kpi.metrics m
                  WHERE m.metric = $1 AND m.tags @> $2 AND m.ts > $3 - $4 AND m.ts <= $3 GROUP BY 1) w
            JOIN (SELECT %1$s AS series, avg(m.value) AS mu, stddev_samp(m.value) AS sd FROM kpi.metrics m
                  WHERE m.metric = $1 AND m.tags @> $2 AND m.ts > $3 - $4 - $7 AND m.ts <= $3 - $4 GROUP BY 1) b
              ON b.series = w.series $q$, series);
    END IF;
    RETURN format($q$
        WITH vals AS (
            SELECT %s AS series, %s AS value
            FROM kpi.metrics m
            WHERE m.metric = $1 AND m.tags @> $2 AND m.ts > $3 - $4 AND m.ts <= $3
            GROUP BY 1
        )
        SELECT * FROM vals
        UNION ALL
        SELECT '{}'::jsonb, 0 WHERE $5 AND NOT EXISTS (SELECT FROM vals) $q$,
        series, format(kpi_internal.rule_aggregate_sql(r.aggregate), extract(epoch FROM r."window"),
                       extract(epoch FROM r.horizon)));
END
$$;
COMMENT ON FUNCTION kpi_internal.rule_values_sql(kpi.alert_rules) IS 'Internal: the query of a rule''s value per series at an instant';

-- A rule's value judged: whether the condition holds, whether a firing alert
-- may resolve (hysteresis), the severity and the threshold crossed.
CREATE FUNCTION kpi_internal.judge_rule(r kpi.alert_rules, value float8,
                                        OUT holds boolean, OUT cleared boolean,
                                        OUT severity kpi.severity_level, OUT crossed float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    holds := false;
    IF r.aggregate = 'absent' THEN
        holds := value = 0;
        IF holds THEN
            severity := CASE WHEN r.critical IS NULL AND r.warning IS NOT NULL THEN 'warning' ELSE 'critical' END;
        END IF;
    ELSIF value IS NOT NULL AND (r.warning IS NOT NULL OR r.critical IS NOT NULL) THEN
        IF kpi_internal.beyond(value, r.comparator, r.critical) THEN
            severity := 'critical'; crossed := r.critical;
        ELSIF kpi_internal.beyond(value, r.comparator, r.warning) THEN
            severity := 'warning'; crossed := r.warning;
        END IF;
        holds := severity IS NOT NULL;
    ELSIF value IS NOT NULL THEN
        -- no thresholds of its own: the metric's definition and its direction
        severity := kpi.severity(r.metric, value);
        holds := coalesce(severity >= 'warning', false);
        IF NOT holds THEN
            severity := NULL;
        ELSE
            crossed := (SELECT kpi_internal.crossed_threshold(severity::text, d.optimal, d.good, d.warning, d.critical)
                        FROM kpi.metric_definitions d WHERE d.metric = r.metric);
        END IF;
    END IF;
    cleared := NOT holds;
    IF r.resolve_threshold IS NOT NULL AND value IS NOT NULL AND NOT holds THEN
        -- hysteresis: resolved only once back on the good side of resolve_threshold
        cleared := NOT kpi_internal.beyond(value, r.comparator, r.resolve_threshold)
                   AND value <> r.resolve_threshold;
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.judge_rule(kpi.alert_rules, float8) IS
    'Internal: a rule''s value judged: holds, cleared (hysteresis), severity, threshold crossed';

-- one rule's value for one series at an evaluation
CREATE TYPE kpi_internal.rule_value AS (rule_id bigint, series jsonb, value float8);
COMMENT ON TYPE kpi_internal.rule_value IS 'Internal: one rule''s value for one series at an evaluation';

-- The values of a group of rules at "at": one pass over the rows they all
-- read (same metric, tags, grouping and window) computing every aggregate
-- they ask for, or, for a rule of its own kind (absent, ratio, zscore,
-- forecast), its own query.
CREATE FUNCTION kpi_internal.rule_group_values(rules kpi.alert_rules[], at timestamptz)
RETURNS kpi_internal.rule_value[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_rules := rules[1];
    out kpi_internal.rule_value[];
    cols text;
BEGIN
    IF cardinality(rules) = 1 AND r.aggregate IN ('absent', 'ratio', 'zscore', 'forecast') THEN
        EXECUTE format('SELECT array_agg(ROW($8, v.series, v.value)::kpi_internal.rule_value) FROM (%s) v',
                       kpi_internal.rule_values_sql(r))
            INTO out
            USING r.metric, r.tags, at, r."window", r.aggregate = 'absent', r.denominator_metric, r.baseline, r.id;
        RETURN out;
    END IF;
    SELECT string_agg(format('%s AS %I', format(kpi_internal.rule_aggregate_sql(a), extract(epoch FROM r."window"), 0), a), ', ')
    INTO cols
    FROM (SELECT DISTINCT x.aggregate AS a FROM unnest(rules) x) d;
    EXECUTE format($q$
        SELECT array_agg(ROW(x.id, v.series, (to_jsonb(v) ->> x.aggregate)::float8)::kpi_internal.rule_value)
        FROM (SELECT %s AS series, %s
              FROM kpi.metrics m
              WHERE m.metric = $1 AND m.tags @> $2 AND m.ts > $3 - $4 AND m.ts <= $3
              GROUP BY 1) v
        CROSS JOIN unnest($5::kpi.alert_rules[]) x $q$,
        kpi_internal.series_expr(r.group_by, 'm.tags'), cols)
        INTO out
        USING r.metric, r.tags, at, r."window", rules;
    RETURN out;
END
$$;
COMMENT ON FUNCTION kpi_internal.rule_group_values(kpi.alert_rules[], timestamptz) IS
    'Internal: the values of a group of rules reading the same rows, in one pass';

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
    s record;
    st record;
    sev kpi.severity_level;
    crossed float8;
    holds boolean;
    cleared boolean;
    msg text;
    a kpi.alerts;
    j record;
    g record;
    vals kpi_internal.rule_value[];
    failed bigint[];
BEGIN
    IF at IS NULL OR at > now() THEN
        RAISE EXCEPTION 'kpi.evaluate_alerts: at must be a time up to now(), got %', coalesce(at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- rules reading the same rows are computed together: one pass per metric,
    -- tags, grouping and window (absent, ratio, zscore and forecast rules alone)
    FOR g IN
        SELECT array_agg(ar ORDER BY ar.id) AS rules
        FROM kpi.alert_rules ar
        WHERE ar.enabled
        GROUP BY ar.metric, ar.tags, ar.group_by, ar."window",
                 CASE WHEN ar.aggregate IN ('absent', 'ratio', 'zscore', 'forecast') THEN ar.id END
        ORDER BY min(ar.id)
    LOOP
      failed := '{}';
      BEGIN
        vals := kpi_internal.rule_group_values(g.rules, at);
      EXCEPTION WHEN OTHERS THEN
        -- one bad rule must not take its group down: each rule on its own
        vals := '{}';
        FOREACH r IN ARRAY g.rules LOOP
            BEGIN
                vals := vals || kpi_internal.rule_group_values(ARRAY[r], at);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                failed := failed || r.id;
                UPDATE kpi.alert_rules ar SET last_error = msg WHERE ar.id = r.id;
                RAISE WARNING 'pg_kpi: alert rule "%" failed: %', r.name, msg;
            END;
        END LOOP;
      END;
      FOREACH r IN ARRAY g.rules LOOP
        CONTINUE WHEN r.id = ANY (failed);
        BEGIN
            -- one evaluation of a rule at a time: a concurrent one waits and then
            -- continues from the state this one leaves (no duplicate alerts)
            PERFORM pg_advisory_xact_lock(hashtext('pg_kpi.alert_rules'), r.id::integer);
            FOR s IN
                WITH v AS (SELECT x.series, x.value FROM unnest(vals) x WHERE x.rule_id = r.id),
                open AS (
                    SELECT a.id, a.labels, a.state, a.started_at, a.fired_at, a.keep_firing_since, a.severity
                    FROM kpi.alerts a WHERE a.rule_id = r.id AND a.state IN ('pending', 'firing')
                )
                SELECT coalesce(v.series, o.labels) AS series, v.value, o.id, o.state AS old_state,
                       o.started_at, o.fired_at, o.keep_firing_since, o.severity AS old_severity
                FROM v FULL JOIN open o ON o.labels = v.series
                ORDER BY 1
            LOOP
                SELECT * INTO j FROM kpi_internal.judge_rule(r, s.value);
                sev := j.severity; crossed := j.crossed; holds := j.holds; cleared := j.cleared;
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
            IF r.last_error IS NOT NULL THEN
                UPDATE kpi.alert_rules ar SET last_error = NULL WHERE ar.id = r.id;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            UPDATE kpi.alert_rules ar SET last_error = msg WHERE ar.id = r.id;
            RAISE WARNING 'pg_kpi: alert rule "%" failed: %', r.name, msg;
        END;
      END LOOP;
    END LOOP;
    UPDATE kpi.alert_rules ar SET last_evaluated_at = at WHERE ar.enabled;
END
$fn$;
COMMENT ON FUNCTION kpi.evaluate_alerts(timestamptz) IS
    'Evaluates every enabled alert rule at "at" (default now()) into kpi.alerts; returns the series pending, firing or resolved by this evaluation';

CREATE FUNCTION kpi.alter_alert_rule(
    name text, metric text DEFAULT NULL, aggregate text DEFAULT NULL, "window" interval DEFAULT NULL,
    comparator text DEFAULT NULL, warning float8 DEFAULT NULL, critical float8 DEFAULT NULL,
    "for" interval DEFAULT NULL, keep_firing_for interval DEFAULT NULL, group_by text[] DEFAULT NULL,
    tags jsonb DEFAULT NULL, resolve_threshold float8 DEFAULT NULL, labels jsonb DEFAULT NULL,
    annotations jsonb DEFAULT NULL, denominator_metric text DEFAULT NULL, baseline interval DEFAULT NULL,
    horizon interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS kpi.alert_rules
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_rules;
BEGIN
    UPDATE kpi.alert_rules t SET
        metric = coalesce(alter_alert_rule.metric, t.metric),
        aggregate = coalesce(alter_alert_rule.aggregate, t.aggregate),
        "window" = coalesce(alter_alert_rule."window", t."window"),
        comparator = coalesce(alter_alert_rule.comparator, t.comparator),
        warning = coalesce(alter_alert_rule.warning, t.warning),
        critical = coalesce(alter_alert_rule.critical, t.critical),
        "for" = coalesce(alter_alert_rule."for", t."for"),
        keep_firing_for = coalesce(alter_alert_rule.keep_firing_for, t.keep_firing_for),
        group_by = coalesce(alter_alert_rule.group_by, t.group_by),
        tags = coalesce(alter_alert_rule.tags, t.tags),
        resolve_threshold = coalesce(alter_alert_rule.resolve_threshold, t.resolve_threshold),
        labels = coalesce(alter_alert_rule.labels, t.labels),
        annotations = coalesce(alter_alert_rule.annotations, t.annotations),
        denominator_metric = coalesce(alter_alert_rule.denominator_metric, t.denominator_metric),
        baseline = coalesce(alter_alert_rule.baseline, t.baseline),
        horizon = coalesce(alter_alert_rule.horizon, t.horizon),
        enabled = coalesce(alter_alert_rule.enabled, t.enabled)
    WHERE t.name = alter_alert_rule.name
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.alter_alert_rule: no rule named "%"', coalesce(name, 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION kpi.alter_alert_rule(text, text, text, interval, text, float8, float8, interval, interval, text[], jsonb, float8, jsonb, jsonb, text, interval, interval, boolean) IS
    'Changes the given settings of an alert rule (NULL keeps one); checked as at creation; returns the rule';

-- What a rule would have done: evaluations every step from "from" to "to",
-- with the lifecycle kept in memory; kpi.alerts is not touched.
CREATE FUNCTION kpi_internal.backtest(r kpi.alert_rules, "from" timestamptz, "to" timestamptz, step interval)
RETURNS TABLE ("at" timestamptz, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    q text := kpi_internal.rule_values_sql(r);
    t timestamptz;
    s record;
    j record;
    st record;
    mem jsonb := '{}';   -- series (as text) -> {state, active_at, fired_at, keep_firing_since, severity}
    cur jsonb;
    k text;
    seen text[];
BEGIN
    IF "from" IS NULL OR "to" IS NULL OR "from" > "to" THEN
        RAISE EXCEPTION 'kpi.backtest_rule: "from" (%) must not be after "to" (%)', "from", "to" USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF step IS NULL OR step < interval '1 second' THEN
        RAISE EXCEPTION 'kpi.backtest_rule: step must be at least 1 second, got %', coalesce(step::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(epoch FROM "to" - "from") / extract(epoch FROM step) > 100000 THEN
        RAISE EXCEPTION 'kpi.backtest_rule: more than 100,000 evaluations' USING ERRCODE = 'program_limit_exceeded',
            HINT = 'Use a longer step or a shorter range.';
    END IF;
    t := "from";
    WHILE t <= "to" LOOP
        seen := '{}';
        FOR s IN EXECUTE q USING r.metric, r.tags, t, r."window", r.aggregate = 'absent', r.denominator_metric, r.baseline LOOP
            k := s.series::text;
            seen := seen || k;
            cur := mem->k;
            SELECT * INTO j FROM kpi_internal.judge_rule(r, s.value);
            SELECT * INTO st FROM kpi_internal.rule_step(cur->>'state', (cur->>'active_at')::timestamptz,
                (cur->>'fired_at')::timestamptz, (cur->>'keep_firing_since')::timestamptz,
                r."for", r.keep_firing_for, t, j.holds, j.cleared);
            mem := mem || jsonb_build_object(k, jsonb_build_object('state', st.state, 'active_at', st.active_at,
                'fired_at', st.fired_at, 'keep_firing_since', st.keep_firing_since,
                'severity', coalesce(j.severity::text, cur->>'severity')));
            IF st.state IN ('pending', 'firing') OR st.event = 'resolved' THEN
                "at" := t; series := s.series; state := CASE WHEN st.event = 'resolved' THEN 'resolved' ELSE st.state END;
                severity := coalesce(j.severity, (cur->>'severity')::kpi.severity_level); value := s.value;
                RETURN NEXT;
            END IF;
        END LOOP;
        -- series with an open alert and no rows now: the condition does not hold
        FOR k IN SELECT key FROM jsonb_each(mem) WHERE NOT (key = ANY (seen)) AND value->>'state' IN ('pending', 'firing') LOOP
            cur := mem->k;
            SELECT * INTO st FROM kpi_internal.rule_step(cur->>'state', (cur->>'active_at')::timestamptz,
                (cur->>'fired_at')::timestamptz, (cur->>'keep_firing_since')::timestamptz,
                r."for", r.keep_firing_for, t, false, true);
            mem := mem || jsonb_build_object(k, (cur || jsonb_build_object('state', st.state,
                'keep_firing_since', st.keep_firing_since)));
            IF st.state = 'firing' OR st.event = 'resolved' THEN
                "at" := t; series := k::jsonb; state := CASE WHEN st.event = 'resolved' THEN 'resolved' ELSE st.state END;
                severity := (cur->>'severity')::kpi.severity_level; value := NULL;
                RETURN NEXT;
            END IF;
        END LOOP;
        t := t + step;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.backtest(kpi.alert_rules, timestamptz, timestamptz, interval) IS
    'Internal: the evaluations of a rule from "from" to "to" every step, without touching kpi.alerts';

CREATE FUNCTION kpi.backtest_rule(rule text, "from" timestamptz, "to" timestamptz, step interval DEFAULT '15 seconds')
RETURNS TABLE ("at" timestamptz, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_rules;
BEGIN
    SELECT * INTO r FROM kpi.alert_rules ar WHERE ar.name = rule;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.backtest_rule: no rule named "%"', coalesce(rule, 'NULL') USING ERRCODE = 'undefined_object',
            HINT = 'To try a rule before creating it, pass it as jsonb: kpi.backtest_rule(''{"metric": ..., "aggregate": ...}''::jsonb, ...).';
    END IF;
    RETURN QUERY SELECT * FROM kpi_internal.backtest(r, "from", "to", step);
END
$$;
COMMENT ON FUNCTION kpi.backtest_rule(text, timestamptz, timestamptz, interval) IS
    'What a rule would have done from "from" to "to", evaluated every step (default 15 s): the series pending, firing or resolved at each instant; kpi.alerts is not touched';

CREATE FUNCTION kpi.backtest_rule(rule jsonb, "from" timestamptz, "to" timestamptz, step interval DEFAULT '15 seconds')
RETURNS TABLE ("at" timestamptz, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r kpi.alert_rules;
BEGIN
    IF rule IS NULL OR jsonb_typeof(rule) <> 'object' THEN
        RAISE EXCEPTION 'kpi.backtest_rule: rule must be a JSON object of alert rule fields' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- checked as kpi.add_alert_rule would, then rolled back: nothing is kept
    BEGIN
        INSERT INTO kpi.alert_rules (name, metric, aggregate, "window", comparator, warning, critical, "for",
                                     keep_firing_for, group_by, tags, resolve_threshold, labels, annotations,
                                     denominator_metric, baseline, horizon)
        SELECT '(backtest)', x.metric, x.aggregate, x."window", x.comparator,
               x.warning, x.critical, coalesce(x."for", '0'), coalesce(x.keep_firing_for, '0'), coalesce(x.group_by, '{}'),
               coalesce(x.tags, '{}'), x.resolve_threshold, '{}', coalesce(x.annotations, '{}'), x.denominator_metric,
               coalesce(x.baseline, '24 hours'), coalesce(x.horizon, '15 minutes')
        FROM jsonb_populate_record(NULL::kpi.alert_rules, rule) x
        RETURNING * INTO r;
        RETURN QUERY SELECT * FROM kpi_internal.backtest(r, "from", "to", step);
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'pg_kpi: backtest done';
    EXCEPTION WHEN assert_failure THEN
        NULL;  -- the rule row is gone with the subtransaction; the rows returned stay
    END;
END
$$;
COMMENT ON FUNCTION kpi.backtest_rule(jsonb, timestamptz, timestamptz, interval) IS
    'Backtests a rule given as jsonb (the fields of kpi.add_alert_rule) before it is created; checked the same way, nothing kept';

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
COMMENT ON COLUMN kpi.alert_rules.denominator_metric IS 'ratio rules: the metric divided by (sum over sum, same tags and window)';
COMMENT ON COLUMN kpi.alert_rules.baseline IS 'zscore rules: the window before the rule''s window that gives the mean and stddev (default 24 hours)';
COMMENT ON COLUMN kpi.alert_rules.horizon IS 'forecast rules: how far past the evaluation the window''s trend is extrapolated (default 15 minutes)';
