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
    span interval;
    raw_keep interval;
    ak text;
    av jsonb;
    problem text;
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
    FOR ak, av IN SELECT e.key, e.value FROM jsonb_each(r.annotations) e LOOP
        IF jsonb_typeof(av) <> 'string' THEN
            RAISE EXCEPTION 'alert rule "%": annotation "%" must be a string, got %', r.name, ak, av
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        problem := kpi_internal.template_problem(av #>> '{}');
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'alert rule "%": annotation "%" is malformed: %', r.name, ak, problem
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Placeholders: {{rule}}, {{metric}}, {{value}}, {{threshold}}, {{severity}}, {{forecast_at}}, {{labels.KEY}}.';
        END IF;
    END LOOP;
    IF array_position(r.group_by, NULL) IS NOT NULL OR array_position(r.group_by, '') IS NOT NULL THEN
        RAISE EXCEPTION 'alert rule "%": group_by must name tag keys', r.name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF r.aggregate IS NULL OR NOT kpi_internal.rule_aggregate_known(r.aggregate) THEN
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
    -- what the rule reads must be kept that long: the raw rows, or the
    -- summaries of a rollup it can read (see kpi_internal.rule_values)
    span := r."window" + CASE WHEN r.aggregate = 'zscore' THEN r.baseline ELSE interval '0' END;
    raw_keep := (SELECT p.keep FROM kpi.retention_policies p WHERE p.target = 'metrics');
    IF raw_keep IS NOT NULL AND span > raw_keep AND NOT EXISTS (
        SELECT 1 FROM kpi.rollups ro
        WHERE r.aggregate <> 'last'
          AND ro.resolution * 10 <= CASE WHEN r.aggregate = 'zscore' THEN r.baseline ELSE r."window" END
          AND ro.group_by_tags @> (coalesce(r.group_by, '{}') || ARRAY(SELECT jsonb_object_keys(r.tags)))
          AND kpi_internal.rollup_covers(ro.id, r.metric)
          AND NOT EXISTS (SELECT 1 FROM kpi.retention_policies p WHERE p.target = ro.resolution::text AND p.keep < span)) THEN
        RAISE EXCEPTION 'alert rule "%": it reads % back (window%), beyond the % that raw rows of kpi.metrics are kept',
            r.name, span, CASE WHEN r.aggregate = 'zscore' THEN ' and baseline' ELSE '' END, raw_keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Shorten it, or add a rollup the rule can read (grouped by at least its group_by and tag keys, at least ten buckets in the range) whose summaries are kept that long.';
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

-- the fraction of a percentile aggregate (p95 -> 0.95), NULL for the others
CREATE FUNCTION kpi_internal.rule_fraction(aggregate text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN $1 ~ '^p[0-9]{1,2}(\.[0-9]+)?$' THEN (substr($1, 2)::numeric / 100)::float8 END
$$;
COMMENT ON FUNCTION kpi_internal.rule_fraction(text) IS 'Internal: the fraction of a percentile rule aggregate (p95 -> 0.95), NULL for others';

-- Whether a rule aggregate is known: avg, min, max, sum, count, rate, last,
-- stddev, absent, ratio, zscore, forecast, or a percentile pNN.N.
CREATE FUNCTION kpi_internal.rule_aggregate_known(aggregate text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT $1 IN ('avg', 'min', 'max', 'sum', 'count', 'rate', 'last', 'stddev', 'absent', 'ratio', 'zscore', 'forecast')
           OR kpi_internal.rule_fraction($1) IS NOT NULL
$$;
COMMENT ON FUNCTION kpi_internal.rule_aggregate_known(text) IS 'Internal: whether a rule aggregate is known';

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

-- The values engine. Rules are turned into groups of rows they read: a
-- metric's rows whose tags contain the rule's, split by its group_by, over a
-- range (at - lo, at - hi] (the window, a ratio's denominator over the same
-- window, a zscore's baseline before it). Groups over the same range are read
-- in one pass: one scan of the range for all their metrics, grouped by metric
-- and series, computing the aggregates any of them needs. A metric read with
-- two groupings over one range takes a second pass.
CREATE TYPE kpi_internal.rule_group AS (
    metric text, tags jsonb, group_by text[], lo interval, hi interval, pass integer,
    need_sd boolean, need_last boolean, need_trend boolean, fracs float8[],
    rollup bigint, res interval, wm timestamptz, rkeys text[]);
COMMENT ON TYPE kpi_internal.rule_group IS 'Internal: rows read by alert rules: a metric, tags, grouping and range, with the aggregates wanted';

CREATE TYPE kpi_internal.rule_stats AS (
    at timestamptz, metric text, tags jsonb, group_by text[], lo interval, hi interval, series jsonb,
    n bigint, sum float8, min float8, max float8, sd float8, last float8, fracs float8[], pcts float8[], trend kpi.trend);
COMMENT ON TYPE kpi_internal.rule_stats IS 'Internal: the aggregates of one series of a rule group at an instant';

-- one rule's value for one series at an instant
CREATE TYPE kpi_internal.rule_value AS (at timestamptz, rule_id bigint, series jsonb, value float8);
COMMENT ON TYPE kpi_internal.rule_value IS 'Internal: one rule''s value for one series at an instant';

-- A series from its grouping keys and their values (a missing tag is JSON null).
CREATE FUNCTION kpi_internal.series_of(keys text[], vals jsonb[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(u.k, coalesce(u.v, 'null'::jsonb)), '{}'::jsonb)
    FROM unnest(keys, vals) AS u(k, v) WHERE u.k IS NOT NULL
$$;
COMMENT ON FUNCTION kpi_internal.series_of(text[], jsonb[]) IS 'Internal: the series of a row from its grouping keys and their values';

-- The SQL of one pass that reads a rollup: the complete buckets of the range
-- below the rollup's watermark from kpi.summaries, the rest of the range from
-- raw rows, merged per instant, metric and series (counts and sums add up,
-- the standard deviation is pooled, sketches and trends merge; percentiles
-- are then the sketches' approximations). $1 the instants, $2 the groups.
CREATE FUNCTION kpi_internal.rule_summary_pass_sql(groups kpi_internal.rule_group[], single boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    g kpi_internal.rule_group := groups[1];
    metrics text[];
    fracs float8[];
    nslots integer;
    trend boolean;
    mslots text := '';
    sslots text := '';
    pslots text := '';
    keys text := '';
    groupby text;
    mtagf text := '';
    stagf text := '';
    tat text;
    blo text;
    bhi text;
    mfrom text;
    sfrom text;
    raw text;
BEGIN
    SELECT array_agg(x.metric ORDER BY x.metric), coalesce(max(cardinality(x.group_by)), 0), bool_or(x.need_trend)
    INTO metrics, nslots, trend FROM unnest(groups) x;
    SELECT array_agg(DISTINCT f ORDER BY f) INTO fracs FROM unnest(groups) x, unnest(x.fracs) f;
    -- one slot per key position; a missing tag is JSON null on both sides
    FOR i IN 1..nslots LOOP
        mslots := mslots || format(', coalesce(CASE m.metric %s END, ''null''::jsonb) AS k%s',
            (SELECT string_agg(format('WHEN %L THEN m.tags -> %L', x.metric, x.group_by[i]), ' ')
             FROM unnest(groups) x WHERE cardinality(x.group_by) >= i), i);
        sslots := sslots || format(', coalesce(CASE s.metric %s END, ''null''::jsonb) AS k%s',
            (SELECT string_agg(format('WHEN %L THEN s.series -> %L', x.metric, x.group_by[i]), ' ')
             FROM unnest(groups) x WHERE cardinality(x.group_by) >= i), i);
        pslots := pslots || format(', p.k%s', i);
        keys := keys || format(', q.k%s', i);
    END LOOP;
    groupby := '1, 2' || coalesce((SELECT string_agg(', ' || (i + 2), '') FROM generate_series(1, nslots) i), '');
    IF EXISTS (SELECT FROM unnest(groups) x WHERE x.tags <> '{}') THEN
        SELECT ' AND CASE m.metric ' || string_agg(format('WHEN %L THEN m.tags @> %L::jsonb', x.metric, x.tags), ' ') || ' END',
               ' AND CASE s.metric ' || string_agg(format('WHEN %L THEN s.series @> %L::jsonb', x.metric, x.tags), ' ') || ' END'
        INTO mtagf, stagf FROM unnest(groups) x;
    END IF;
    -- complete buckets: from the first boundary after the range's (open) start
    -- to the last one at or before its end, and not above the watermark;
    -- computed once per instant
    tat := CASE WHEN single THEN '$1[1]' ELSE 't.at' END;
    blo := format('kpi_internal.ceil_bucket(%L::interval, %s - %L::interval + interval ''1 microsecond'')', g.res, tat, g.lo);
    bhi := format('greatest(least(kpi.bucket(%L::interval, %s - %L::interval), %L::timestamptz), %s)', g.res, tat, g.hi, g.wm, blo);
    IF single THEN
        mfrom := 'kpi.metrics m WHERE ';
        sfrom := format('kpi.summaries s WHERE s.bucket >= %s AND s.bucket < %s AND ', blo, bhi);
    ELSE
        -- the raw ends are index ranges whose bounds are computed once per
        -- instant; for the summaries, a materialized CTE computes them once
        -- per instant, whichever side of the join the planner puts it on
        mfrom := 'unnest($1::timestamptz[]) t(at) JOIN kpi.metrics m ON ';
        sfrom := format('(WITH steps AS MATERIALIZED (SELECT t.at, %s AS blo, %s AS bhi FROM unnest($1::timestamptz[]) t(at)) '
                        'SELECT * FROM steps) t JOIN kpi.summaries s ON s.bucket >= t.blo AND s.bucket < t.bhi WHERE ', blo, bhi);
    END IF;
    -- the raw rows at the two ends of the range, each one index range
    raw := format($q$
        SELECT %1$s AS at, m.metric%2$s, count(*) AS n, sum(m.value) AS sum, min(m.value) AS min, max(m.value) AS max,
               avg(m.value) AS mean, coalesce(var_samp(m.value) * (count(*) - 1), 0) AS m2, %3$s AS sk, %4$s AS tr
        FROM %5$s%%s AND m.metric = ANY (%6$L::text[])%7$s
        GROUP BY %8$s $q$,
        tat, mslots,
        CASE WHEN fracs IS NULL THEN 'NULL::kpi.sketch' ELSE 'kpi.sketch_agg(m.value)' END,
        CASE WHEN trend THEN 'kpi.trend_agg(m.ts, m.value)' ELSE 'NULL::kpi.trend' END,
        mfrom, metrics, mtagf, groupby);
    RETURN format($q$
        SELECT array_agg(ROW(x.at, g.metric, g.tags, g.group_by, g.lo, g.hi, %1$s, x.n, x.sum, x.min, x.max, x.sd,
                             NULL::float8, %2$L::float8[], x.pcts, x.trend)::kpi_internal.rule_stats)
        FROM (SELECT p.at, p.metric%3$s, sum(p.n)::bigint AS n, sum(p.sum) AS sum, min(p.min) AS min, max(p.max) AS max,
                     sqrt(greatest(sum(p.m2 + p.n * (p.mean - p.gmean) ^ 2), 0) / nullif(sum(p.n) - 1, 0)) AS sd,
                     %4$s AS pcts, %5$s AS trend
              FROM (SELECT q.*, sum(q.sum) OVER w / sum(q.n) OVER w AS gmean
                    FROM (%6$s
                          UNION ALL
                          %7$s
                          UNION ALL
                          SELECT %8$s, s.metric%9$s, s.count, s.sum, s.min, s.max, s.avg,
                                 coalesce(s.stddev ^ 2 * (s.count - 1), 0), s.sketch, s.trend
                          FROM %10$s s.resolution = %11$L::interval AND s.metric = ANY (%12$L::text[])
                            AND kpi_internal.series_keys_match(s.series, %13$L::text[])%14$s) q
                    WINDOW w AS (PARTITION BY q.at, q.metric%15$s)) p
              GROUP BY p.at, p.metric%3$s) x
        JOIN unnest($2::kpi_internal.rule_group[]) g ON g.metric = x.metric $q$,
        CASE WHEN nslots = 0 THEN '''{}''::jsonb'
             ELSE format('kpi_internal.series_of(g.group_by, ARRAY[%s]::jsonb[])',
                         (SELECT string_agg('x.k' || i, ', ') FROM generate_series(1, nslots) i)) END,
        fracs,
        pslots,
        CASE WHEN fracs IS NULL THEN 'NULL::float8[]'
             ELSE format('kpi.approx_percentiles(kpi.sketch_agg(p.sk), %L::float8[])', fracs) END,
        CASE WHEN trend THEN 'kpi.trend_agg(p.tr)' ELSE 'NULL::kpi.trend' END,
        format(raw, format('m.ts > %s - %L::interval AND m.ts < %s', tat, g.lo, blo)),
        format(raw, format('m.ts >= %s AND m.ts <= %s - %L::interval', bhi, tat, g.hi)),
        tat, sslots, sfrom, g.res, metrics, g.rkeys, stagf, keys);
END
$fn$;
COMMENT ON FUNCTION kpi_internal.rule_summary_pass_sql(kpi_internal.rule_group[], boolean) IS
    'Internal: the query of one pass of rule groups over a range read from a rollup''s summaries and raw rows at its ends';

-- The SQL of one pass: the groups' ranges (all equal), one row per instant,
-- metric and series, as kpi_internal.rule_stats[]. $1 the instants, $2 the groups.
CREATE FUNCTION kpi_internal.rule_pass_sql(groups kpi_internal.rule_group[], single boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    g kpi_internal.rule_group := groups[1];
    metrics text[];
    fracs float8[];
    series text;
    slots text[] := '{}';
    keycols text;
    tagf text := '';
    nkeys bigint;
    ntags bigint;
BEGIN
    IF g.rollup IS NOT NULL THEN
        RETURN kpi_internal.rule_summary_pass_sql(groups, single);
    END IF;
    SELECT array_agg(x.metric ORDER BY x.metric), count(DISTINCT x.group_by), count(DISTINCT x.tags)
    INTO metrics, nkeys, ntags FROM unnest(groups) x;
    SELECT array_agg(DISTINCT f ORDER BY f) INTO fracs FROM unnest(groups) x, unnest(x.fracs) f;
    -- the series is built after grouping, from the values of its keys (one
    -- slot per key position): cheaper than a jsonb object per row
    FOR i IN 1..coalesce((SELECT max(cardinality(x.group_by)) FROM unnest(groups) x), 0) LOOP
        IF nkeys = 1 THEN
            slots := slots || format('m.tags -> %L', g.group_by[i]);
        ELSE
            slots := slots || ('CASE m.metric ' || (SELECT string_agg(format('WHEN %L THEN m.tags -> %L', x.metric, x.group_by[i]), ' ')
                                                     FROM unnest(groups) x WHERE cardinality(x.group_by) >= i) || ' END');
        END IF;
    END LOOP;
    IF cardinality(slots) = 0 THEN
        series := '''{}''::jsonb';
        keycols := '';
    ELSE
        series := format('kpi_internal.series_of(g.group_by, ARRAY[%s]::jsonb[])',
                         (SELECT string_agg('v.k' || i, ', ') FROM generate_series(1, cardinality(slots)) i));
        keycols := (SELECT string_agg(format(', %s AS k%s', slots[i], i), '') FROM generate_series(1, cardinality(slots)) i);
    END IF;
    IF ntags = 1 AND g.tags <> '{}' THEN
        tagf := format(' AND m.tags @> %L::jsonb', g.tags);
    ELSIF ntags > 1 THEN
        SELECT ' AND CASE m.metric ' || string_agg(format('WHEN %L THEN m.tags @> %L::jsonb', x.metric, x.tags), ' ')
               || ' ELSE false END' INTO tagf FROM unnest(groups) x;
    END IF;
    RETURN format($q$
        SELECT array_agg(ROW(v.at, g.metric, g.tags, g.group_by, g.lo, g.hi, %3$s, v.n, v.sum, v.min, v.max, v.sd,
                             v.last, %1$L::float8[], v.pcts, v.trend)::kpi_internal.rule_stats)
        FROM (SELECT %2$s AS at, m.metric%11$s, count(*) AS n, sum(m.value) AS sum,
                     min(m.value) AS min, max(m.value) AS max, %4$s AS sd, %5$s AS last, %6$s AS pcts, %7$s AS trend
              FROM %8$s
              WHERE %9$s%10$s
              GROUP BY %12$s) v
        JOIN unnest($2::kpi_internal.rule_group[]) g ON g.metric = v.metric $q$,
        fracs,
        CASE WHEN single THEN '$1[1]' ELSE 't.at' END,
        series,
        kpi_internal.rule_pass_agg(groups, 'stddev_samp(m.value)', 'float8', (SELECT array_agg(x.metric) FROM unnest(groups) x WHERE x.need_sd)),
        kpi_internal.rule_pass_agg(groups, 'max(ARRAY[date_part(''epoch'', m.ts), m.value])', 'float8[]',
                                   (SELECT array_agg(x.metric) FROM unnest(groups) x WHERE x.need_last)) || '[2]',
        kpi_internal.rule_pass_agg(groups, format('kpi.percentiles(m.value, %L::float8[])', fracs), 'float8[]',
                                   (SELECT array_agg(x.metric) FROM unnest(groups) x WHERE x.fracs IS NOT NULL)),
        kpi_internal.rule_pass_agg(groups, 'kpi.trend_agg(m.ts, m.value)', 'kpi.trend',
                                   (SELECT array_agg(x.metric) FROM unnest(groups) x WHERE x.need_trend)),
        CASE WHEN single THEN 'kpi.metrics m'
             ELSE format('unnest($1::timestamptz[]) t(at) JOIN kpi.metrics m ON m.ts > t.at - %L::interval AND m.ts <= t.at - %L::interval',
                         g.lo, g.hi) END,
        CASE WHEN single THEN format('m.ts > $1[1] - %L::interval AND m.ts <= $1[1] - %L::interval AND ', g.lo, g.hi) ELSE '' END
            || CASE WHEN cardinality(metrics) = 1 THEN format('m.metric = %L', metrics[1])
                    ELSE format('m.metric = ANY (%L::text[])', metrics) END,
        tagf,
        keycols,
        (SELECT string_agg(i::text, ', ') FROM generate_series(1, 2 + cardinality(slots)) i));
END
$fn$;
COMMENT ON FUNCTION kpi_internal.rule_pass_sql(kpi_internal.rule_group[], boolean) IS
    'Internal: the query of one pass over the rows of rule groups sharing a range';

-- An aggregate of a pass, computed only for the metrics that need it.
CREATE FUNCTION kpi_internal.rule_pass_agg(groups kpi_internal.rule_group[], agg text, type text, wanted text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN wanted IS NULL THEN format('(NULL::%s)', type)
                WHEN cardinality(wanted) = cardinality(groups) THEN format('(%s)', agg)
                ELSE format('(%s FILTER (WHERE m.metric = ANY (%L::text[])))', agg, wanted) END
$$;
COMMENT ON FUNCTION kpi_internal.rule_pass_agg(kpi_internal.rule_group[], text, text, text[]) IS
    'Internal: an aggregate of a rules pass, filtered to the metrics that need it';

-- The error of a rule whose aggregate is unknown (only when the table was
-- changed with its check disabled).
CREATE FUNCTION kpi_internal.rule_unknown_aggregate(r kpi.alert_rules) RETURNS float8
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RAISE EXCEPTION 'alert rule "%": unknown aggregate "%"', r.name, r.aggregate USING ERRCODE = 'invalid_parameter_value';
END
$$;
COMMENT ON FUNCTION kpi_internal.rule_unknown_aggregate(kpi.alert_rules) IS 'Internal: raises the error of a rule with an unknown aggregate';

-- The values of rules at each of the instants: one row per rule, series and
-- instant (an absent rule with no rows at all: one row with value 0).
CREATE FUNCTION kpi_internal.rule_values(rules kpi.alert_rules[], ats timestamptz[])
RETURNS SETOF kpi_internal.rule_value
-- The joins of arrays below have filtered sizes the planner cannot estimate:
-- nested loops over them would be quadratic. The queries are new at every
-- evaluation: JIT compilation would cost more than it saves.
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS $fn$
DECLARE
    groups kpi_internal.rule_group[];
    stats kpi_internal.rule_stats[] := '{}';
    part kpi_internal.rule_stats[];
    p record;
BEGIN
    -- what the rules read: their metric over the window; a ratio also its
    -- denominator over the window; a zscore also the baseline before it
    SELECT array_agg(ROW(g.metric, g.tags, g.group_by, g.lo, g.hi, g.pass,
                         g.need_sd, g.need_last, g.need_trend, g.fracs,
                         ro.id, ro.resolution, ro.watermark, ro.group_by_tags)::kpi_internal.rule_group)
    INTO groups
    FROM (
        SELECT q.metric,
               q.tags, q.group_by, q.lo, q.hi,
               (dense_rank() OVER (PARTITION BY q.lo, q.hi, q.metric ORDER BY q.tags, q.group_by))::integer AS pass,
               bool_or(q.want = 'stddev') AS need_sd, bool_or(q.want = 'last') AS need_last,
               bool_or(q.want = 'forecast') AS need_trend,
               array_agg(DISTINCT kpi_internal.rule_fraction(q.want) ORDER BY kpi_internal.rule_fraction(q.want))
                   FILTER (WHERE kpi_internal.rule_fraction(q.want) IS NOT NULL) AS fracs
        FROM (
            SELECT r.metric, r.tags, r.group_by, r."window" AS lo, interval '0' AS hi, r.aggregate AS want
            FROM unnest(rules) r
            UNION ALL
            SELECT r.denominator_metric, r.tags, r.group_by, r."window", interval '0', 'sum'
            FROM unnest(rules) r WHERE r.aggregate = 'ratio'
            UNION ALL
            SELECT r.metric, r.tags, r.group_by, r."window" + r.baseline, r."window", 'stddev'
            FROM unnest(rules) r WHERE r.aggregate = 'zscore'
        ) q
        GROUP BY q.metric, q.tags, q.group_by, q.lo, q.hi
    ) g
    -- a long range (ten buckets or more) reads the complete buckets of the
    -- coarsest rollup that covers the metric and can regroup to the rule's
    -- series (its grouping tags hold the rule's group_by and tag keys) from
    -- kpi.summaries, and only the partial buckets at its ends (and those
    -- above the rollup's watermark) from raw rows; `last` always reads raw rows
    LEFT JOIN LATERAL (
        SELECT ro.id, ro.resolution, ro.watermark, ro.group_by_tags
        FROM kpi.rollups ro
        WHERE NOT g.need_last AND ro.watermark IS NOT NULL
          AND ro.resolution * 10 <= g.lo - g.hi
          AND ro.group_by_tags @> (g.group_by || ARRAY(SELECT jsonb_object_keys(g.tags)))
          AND kpi_internal.rollup_covers(ro.id, g.metric)
        ORDER BY ro.resolution DESC, ro.id
        LIMIT 1
    ) ro ON true;
    FOR p IN SELECT array_agg(g ORDER BY g.metric) AS groups
             FROM unnest(groups) g GROUP BY g.lo, g.hi, g.pass, g.rollup ORDER BY g.lo, g.hi, g.pass, g.rollup
    LOOP
        EXECUTE kpi_internal.rule_pass_sql(p.groups, cardinality(ats) = 1) INTO part USING ats, p.groups;
        stats := stats || coalesce(part, '{}');
    END LOOP;
    -- EXECUTE: planned with the arrays' real sizes (hash joins)
    RETURN QUERY EXECUTE $q$
    WITH r AS (SELECT * FROM unnest($1)),
    s AS (SELECT * FROM unnest($2))
    SELECT s.at, r.id, s.series,
           CASE r.aggregate
               WHEN 'avg' THEN s.sum / s.n
               WHEN 'min' THEN s.min
               WHEN 'max' THEN s.max
               WHEN 'sum' THEN s.sum
               WHEN 'count' THEN s.n::float8
               WHEN 'absent' THEN s.n::float8
               WHEN 'rate' THEN s.n / extract(epoch FROM r."window")::float8
               WHEN 'last' THEN s.last
               WHEN 'stddev' THEN s.sd
               WHEN 'forecast' THEN kpi.forecast(s.trend, s.at + r.horizon)
               ELSE CASE WHEN kpi_internal.rule_fraction(r.aggregate) IS NOT NULL
                         THEN s.pcts[array_position(s.fracs, kpi_internal.rule_fraction(r.aggregate))]
                         ELSE kpi_internal.rule_unknown_aggregate(r) END
           END
    FROM r JOIN s ON s.metric = r.metric AND s.tags = r.tags AND s.group_by = r.group_by
                 AND s.lo = r."window" AND s.hi = interval '0'
    WHERE r.aggregate NOT IN ('ratio', 'zscore')
    UNION ALL
    -- absent: no row at all in the window
    SELECT t.at, r.id, '{}'::jsonb, 0
    FROM r CROSS JOIN unnest($3) t(at)
    WHERE r.aggregate = 'absent'
      AND NOT EXISTS (SELECT FROM s WHERE s.at = t.at AND s.metric = r.metric AND s.tags = r.tags
                                      AND s.group_by = r.group_by AND s.lo = r."window" AND s.hi = interval '0')
    UNION ALL
    -- ratio: the metric's sum over the denominator's (0 when the metric has no rows)
    SELECT d.at, r.id, d.series, coalesce(nu.sum, 0) / nullif(d.sum, 0)
    FROM r JOIN s d ON d.metric = r.denominator_metric AND d.tags = r.tags AND d.group_by = r.group_by
                   AND d.lo = r."window" AND d.hi = interval '0'
    LEFT JOIN s nu ON nu.at = d.at AND nu.series = d.series AND nu.metric = r.metric AND nu.tags = r.tags
                  AND nu.group_by = r.group_by AND nu.lo = r."window" AND nu.hi = interval '0'
    WHERE r.aggregate = 'ratio'
    UNION ALL
    -- zscore: the window's mean against the baseline's mean and stddev
    SELECT w.at, r.id, w.series, (w.sum / w.n - b.sum / b.n) / nullif(b.sd, 0)
    FROM r JOIN s w ON w.metric = r.metric AND w.tags = r.tags AND w.group_by = r.group_by
                   AND w.lo = r."window" AND w.hi = interval '0'
    JOIN s b ON b.at = w.at AND b.series = w.series AND b.metric = r.metric AND b.tags = r.tags
            AND b.group_by = r.group_by AND b.lo = r."window" + r.baseline AND b.hi = r."window"
    WHERE r.aggregate = 'zscore' $q$
    USING rules, stats, ats;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.rule_values(kpi.alert_rules[], timestamptz[]) IS
    'Internal: the values of alert rules per series at each instant, one pass per range over the rows they read';

-- Renders an annotation template: {{rule}}, {{metric}}, {{value}},
-- {{threshold}}, {{severity}}, {{forecast_at}} (a forecast rule's predicted
-- time) and {{labels.KEY}}, in one pass (kpi_core::rules::render_template);
-- values are text, never SQL and never templates.
CREATE FUNCTION kpi_internal.render_template(template text, rule text, metric text, value float8,
                                             threshold float8, severity text, labels jsonb,
                                             forecast_at timestamptz DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN $1 IS NOT NULL THEN
        kpi_internal.render_template_text($1, $2, $3, kpi_internal.format_number($4),
                                          kpi_internal.format_number($5), $6, $7,
                                          to_char($8 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END
$$;
COMMENT ON FUNCTION kpi_internal.render_template_text(text, text, text, text, text, text, jsonb, text) IS
    'Internal: an annotation template rendered (kpi_core::rules::render_template), numbers and the forecast time formatted';
COMMENT ON FUNCTION kpi_internal.render_template(text, text, text, float8, float8, text, jsonb, timestamptz) IS
    'Internal: an annotation with {{rule}}, {{metric}}, {{value}}, {{threshold}}, {{severity}}, {{forecast_at}} and {{labels.KEY}} filled in';

-- Why an annotation template is malformed (NULL when it is fine): only the
-- placeholders render_template knows, in balanced double braces.
CREATE FUNCTION kpi_internal.template_problem(template text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT format('unknown placeholder {{%s}}', m[1])
         FROM regexp_matches($1, '\{\{([^{}]*)\}\}', 'g') m
         WHERE m[1] !~ '^(rule|metric|value|threshold|severity|forecast_at|labels\.[^{}]+)$'
         LIMIT 1),
        CASE WHEN regexp_replace($1, '\{\{[^{}]*\}\}', '', 'g') ~ '\{\{|\}\}' THEN 'unbalanced {{ or }}' END)
$$;
COMMENT ON FUNCTION kpi_internal.template_problem(text) IS 'Internal: why an annotation template is malformed, NULL when it is fine';

-- one row of kpi.evaluate_alerts
CREATE TYPE kpi_internal.rule_result AS (rule text, series jsonb, state text, severity kpi.severity_level, value float8);
COMMENT ON TYPE kpi_internal.rule_result IS 'Internal: a series pending, firing or resolved by an evaluation';

-- The message of a rule's alert: its summary annotation rendered, or a default.
CREATE FUNCTION kpi_internal.rule_message(r kpi.alert_rules, series jsonb, value float8, crossed float8,
                                          severity kpi.severity_level, forecast_at timestamptz DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(kpi_internal.render_template(r.annotations->>'summary', r.name, r.metric, value, crossed,
                                                 severity::text, series, forecast_at),
                    format('%s%s: %s %s%s is %s %s', r.name, CASE WHEN series <> '{}' THEN ' ' || series::text ELSE '' END,
                           r.aggregate, kpi_internal.format_number(value),
                           CASE WHEN forecast_at IS NOT NULL
                                THEN format(' at %s', to_char(forecast_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ELSE '' END,
                           r.comparator, kpi_internal.format_number(crossed)))
$$;
COMMENT ON FUNCTION kpi_internal.rule_message(kpi.alert_rules, jsonb, float8, float8, kpi.severity_level, timestamptz) IS
    'Internal: the message of a rule''s alert (the summary annotation, or a default)';

-- Evaluates rules at "at" into kpi.alerts, set-based: the values of all the
-- rules, then every series whose condition may hold or that has an open
-- alert is judged and stepped (kpi_core::rules::step) in one query, and the
-- changes are written by kpi_internal.apply_rule_changes; the other series
-- cost nothing more.
-- Returns the series pending or firing, or resolved by this evaluation.
CREATE FUNCTION kpi_internal.evaluate_rules(rules kpi.alert_rules[], at timestamptz)
RETURNS kpi_internal.rule_result[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    vals kpi_internal.rule_value[];
    ch kpi_internal.alert_change[];
    out kpi_internal.rule_result[];
BEGIN
    vals := ARRAY(SELECT v FROM kpi_internal.rule_values(rules, ARRAY[at]) v);
    -- EXECUTE: planned with the arrays' real sizes (hash joins, not nested loops)
    EXECUTE $q$
    SELECT array_agg(ROW(c.alert_id, r.id, r.metric, c.series, c.value, j.holds, j.severity, c.old_severity, j.crossed,
                         CASE WHEN j.holds THEN kpi_internal.rule_message(r, c.series, c.value, j.crossed, j.severity,
                                                                          CASE WHEN r.aggregate = 'forecast' THEN $3 + r.horizon END) END,
                         st.state, st.active_at, st.fired_at, st.keep_firing_since, st.event)::kpi_internal.alert_change)
    FROM (
        SELECT coalesce(v.rule_id, o.rule_id) AS rule_id, coalesce(v.series, o.labels) AS series, v.value,
               o.id AS alert_id, o.state AS old_state, o.started_at, o.fired_at, o.keep_firing_since,
               o.severity AS old_severity
        FROM (SELECT x.rule_id, x.series, x.value,
                     CASE WHEN r.aggregate = 'absent' THEN x.value = 0
                          WHEN r.warning IS NULL AND r.critical IS NULL THEN true  -- the metric's definition judges
                          ELSE kpi_internal.beyond(x.value, r.comparator, coalesce(r.warning, r.critical)) END AS may_hold
              FROM unnest($1) x JOIN unnest($2) r ON r.id = x.rule_id) v
        FULL JOIN (SELECT a.id, a.rule_id, a.labels, a.state, a.started_at, a.fired_at, a.keep_firing_since, a.severity
                   FROM kpi.alerts a
                   WHERE a.state <> 'resolved' AND a.source = 'rule'
                     AND a.rule_id = ANY (ARRAY(SELECT r.id FROM unnest($2) r))) o
          ON o.rule_id = v.rule_id AND o.labels = v.series
        WHERE v.may_hold OR o.id IS NOT NULL
    ) c
    JOIN unnest($2) r ON r.id = c.rule_id
    CROSS JOIN LATERAL kpi_internal.judge_rule(r, c.value) j
    CROSS JOIN LATERAL kpi_internal.rule_step(c.old_state, c.started_at, c.fired_at, c.keep_firing_since,
                                              r."for", r.keep_firing_for, $3, j.holds, j.cleared) st $q$
    INTO ch USING vals, rules, at;
    IF ch IS NULL THEN
        RETURN '{}';
    END IF;

    -- written where every alert is written (sql/alerts.sql)
    PERFORM kpi_internal.apply_rule_changes(ch, at);

    EXECUTE $q$
    SELECT array_agg(ROW(r.name, c.series, CASE WHEN c.event = 'resolved' THEN 'resolved' ELSE c.state END,
                   coalesce(c.severity, c.old_severity), c.value)::kpi_internal.rule_result ORDER BY r.id, c.series)
        FROM unnest($1) c JOIN unnest($2) r ON r.id = c.rule_id
        WHERE c.state IN ('pending', 'firing') OR c.event = 'resolved' $q$
    INTO out USING ch, rules;
    RETURN coalesce(out, '{}');
END
$fn$;
COMMENT ON FUNCTION kpi_internal.evaluate_rules(kpi.alert_rules[], timestamptz) IS
    'Internal: evaluates alert rules at an instant into kpi.alerts, set-based; returns the series pending, firing or resolved';

-- Evaluates every enabled rule at "at": the window is the rows with ts in
-- (at - window, at], one value per series (the group_by tags), judged
-- against the thresholds and stepped through the lifecycle; kpi.alerts holds
-- the result. All the rules are evaluated together; if that fails, each on
-- its own: a rule that fails records last_error and is skipped (and is
-- evaluated on its own until it succeeds again), the others still run.
-- Returns a row per series that is pending or firing, or that this
-- evaluation resolved.
CREATE FUNCTION kpi.evaluate_alerts(at timestamptz DEFAULT now())
RETURNS TABLE (rule text, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    together kpi.alert_rules[];
    alone kpi.alert_rules[];
    r kpi.alert_rules;
    out kpi_internal.rule_result[] := '{}';
    msg text;
BEGIN
    IF at IS NULL OR at > now() THEN
        RAISE EXCEPTION 'kpi.evaluate_alerts: at must be a time up to now(), got %', coalesce(at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one evaluation at a time: a concurrent one waits, then continues from
    -- the state this one leaves (no duplicate alerts)
    PERFORM pg_advisory_xact_lock(hashtext('pg_kpi.alert_rules'), 0);
    -- the rows are read under a share lock on kpi.metrics and its partitions,
    -- taken before any snapshot of the evaluation: a partition the partitions
    -- job is attaching (moving rows out of the default partition) is either
    -- committed before or waits until after, never half seen
    LOCK TABLE kpi.metrics IN ACCESS SHARE MODE;
    SELECT array_agg(ar ORDER BY ar.id) FILTER (WHERE ar.last_error IS NULL),
           array_agg(ar ORDER BY ar.id) FILTER (WHERE ar.last_error IS NOT NULL)
    INTO together, alone
    FROM kpi.alert_rules ar WHERE ar.enabled;
    IF together IS NOT NULL THEN
        BEGIN
            out := kpi_internal.evaluate_rules(together, at);
        EXCEPTION WHEN OTHERS THEN
            -- find the culprit: each rule on its own
            alone := together || coalesce(alone, '{}');
        END;
    END IF;
    FOREACH r IN ARRAY coalesce(alone, '{}') LOOP
        BEGIN
            out := out || kpi_internal.evaluate_rules(ARRAY[r], at);
            IF r.last_error IS NOT NULL THEN
                UPDATE kpi.alert_rules ar SET last_error = NULL WHERE ar.id = r.id;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            UPDATE kpi.alert_rules ar SET last_error = msg WHERE ar.id = r.id;
            RAISE WARNING 'pg_kpi: alert rule "%" failed: %', r.name, msg;
        END;
    END LOOP;
    UPDATE kpi.alert_rules ar SET last_evaluated_at = at WHERE ar.enabled;
    RETURN QUERY SELECT o.rule, o.series, o.state, o.severity, o.value FROM unnest(out) o;
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
-- with the lifecycle kept in memory; kpi.alerts is not touched. The values
-- of all the evaluations come from one pass per range (kpi_internal.rule_values).
CREATE FUNCTION kpi_internal.backtest(r kpi.alert_rules, "from" timestamptz, "to" timestamptz, step interval)
RETURNS TABLE ("at" timestamptz, series jsonb, state text, severity kpi.severity_level, value float8)
-- VOLATILE only for its share lock on kpi.metrics (see kpi.evaluate_alerts); it writes nothing
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
    ats timestamptz[];
    vals kpi_internal.rule_value[];
    v kpi_internal.rule_value;
    i integer := 1;
    n integer;
    j record;
    st record;
    mem jsonb := '{}';   -- series (as text) -> {state, active_at, fired_at, keep_firing_since, severity}
    cur jsonb;
    k text;
    seen text[];
    t timestamptz;
    val float8;
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
    LOCK TABLE kpi.metrics IN ACCESS SHARE MODE;
    ats := ARRAY(SELECT generate_series("from", "to", step));
    vals := ARRAY(SELECT x FROM kpi_internal.rule_values(ARRAY[r], ats) x ORDER BY x.at, x.series);
    n := cardinality(vals);
    FOREACH t IN ARRAY ats LOOP
        seen := '{}';
        -- the series with a value at t, then those with an open alert and no value
        LOOP
            IF i <= n AND vals[i].at = t THEN
                v := vals[i];
                i := i + 1;
                k := v.series::text;
                seen := seen || k;
                val := v.value;
            ELSE
                k := (SELECT key FROM jsonb_object_keys(mem) key WHERE NOT (key = ANY (seen)) LIMIT 1);
                EXIT WHEN k IS NULL;
                seen := seen || k;
                val := NULL;
            END IF;
            cur := mem->k;
            SELECT * INTO j FROM kpi_internal.judge_rule(r, val);
            SELECT * INTO st FROM kpi_internal.rule_step(cur->>'state', (cur->>'active_at')::timestamptz,
                (cur->>'fired_at')::timestamptz, (cur->>'keep_firing_since')::timestamptz,
                r."for", r.keep_firing_for, t, j.holds, j.cleared);
            IF st.state = 'inactive' THEN
                mem := mem - k;
            ELSE
                mem := mem || jsonb_build_object(k, jsonb_build_object('state', st.state, 'active_at', st.active_at,
                    'fired_at', st.fired_at, 'keep_firing_since', st.keep_firing_since,
                    'severity', coalesce(j.severity::text, cur->>'severity')));
            END IF;
            IF st.state IN ('pending', 'firing') OR st.event = 'resolved' THEN
                "at" := t; series := k::jsonb; state := CASE WHEN st.event = 'resolved' THEN 'resolved' ELSE st.state END;
                severity := coalesce(j.severity, (cur->>'severity')::kpi.severity_level); value := val;
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION kpi_internal.backtest(kpi.alert_rules, timestamptz, timestamptz, interval) IS
    'Internal: the evaluations of a rule from "from" to "to" every step, without touching kpi.alerts';


CREATE FUNCTION kpi.backtest_rule(rule text, "from" timestamptz, "to" timestamptz, step interval DEFAULT '15 seconds')
RETURNS TABLE ("at" timestamptz, series jsonb, state text, severity kpi.severity_level, value float8)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
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
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    every interval := coalesce(nullif(current_setting('kpi.alert_interval', true), ''), '15s')::interval;
BEGIN
    -- the built-in job follows kpi.alert_interval when the setting changes
    -- (its next run is scheduled from it); kpi.alter_job overrides it until then
    UPDATE kpi.jobs j SET schedule_interval = every,
                          config = j.config || jsonb_build_object('alert_interval', every::text)
    WHERE j.kind = 'rules' AND j.builtin
      AND coalesce((j.config->>'alert_interval')::interval, interval '15 seconds') <> every;
    SELECT count(*), 0, false INTO rows, buckets, more FROM kpi.evaluate_alerts();
END
$$;
COMMENT ON FUNCTION kpi_internal.run_rules_job(jsonb) IS 'Internal: runs the rules job (kpi.evaluate_alerts; the built-in job follows kpi.alert_interval)';
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
