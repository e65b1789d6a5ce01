-- KPI targets: what a KPI aims at and how far it has come. The baseline,
-- target and stretch of kpi.metric_definitions are a KPI's final target;
-- kpi.kpi_targets adds dated phase targets, target ranges ("40-60 points"),
-- rate targets ("+50 % a year") and looser targets for a degraded mode.
-- kpi.kpi_status reports each KPI against the target that applies at an
-- instant; the arithmetic is kpi_core::targets.

-- the definition's own target must point the way the metric improves
CREATE FUNCTION kpi_internal.metric_targets_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.metric IS NULL OR NEW.direction IS NULL THEN
        RETURN NEW;  -- the NOT NULL constraints report it
    END IF;
    PERFORM kpi_internal.check_kpi_target('kpi.metric_definitions', NEW.metric, NEW.direction, NEW.baseline,
                                          NEW.target, NULL, NULL, NEW.stretch);
    -- a changed direction, baseline or target must still suit the KPI's other targets
    IF TG_OP = 'UPDATE' THEN
        PERFORM kpi_internal.recheck_kpi_targets(NEW);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.metric_targets_check() IS
    'Internal: trigger checking that a definition''s baseline, target and stretch follow its direction';
CREATE TRIGGER metric_definitions_targets
    BEFORE INSERT OR UPDATE OF direction, baseline, target, stretch ON kpi.metric_definitions
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.metric_targets_check();

-- TRUNCATE kpi.metric_definitions empties kpi.kpi_targets too (its rows
-- would otherwise attach to a later definition of the same name)
CREATE FUNCTION kpi_internal.metric_targets_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM kpi.kpi_targets;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION kpi_internal.metric_targets_truncate() IS 'Internal: empties kpi.kpi_targets when kpi.metric_definitions is truncated';

CREATE TABLE kpi.kpi_targets (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- a metric of kpi.metric_definitions (checked by the trigger, and its
    -- targets follow it: no foreign key, so TRUNCATE kpi.metric_definitions
    -- keeps working)
    metric       text NOT NULL,
    mode         text NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'degraded')),
    phase        text NOT NULL DEFAULT 'final' CHECK (btrim(phase) <> ''),
    due_at       timestamptz CHECK (isfinite(due_at)),
    target       float8,
    target_low   float8,
    target_high  float8,
    rate         float8,
    rate_period  interval CHECK (rate_period > interval '0'),
    stretch      float8,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (metric, mode, phase),
    CONSTRAINT kpi_targets_one_kind CHECK (
        (target IS NOT NULL)::int + (target_low IS NOT NULL OR target_high IS NOT NULL)::int
        + (rate IS NOT NULL OR rate_period IS NOT NULL)::int = 1)
);
CREATE INDEX kpi_targets_metric_idx ON kpi.kpi_targets (metric, mode, due_at);
COMMENT ON TABLE kpi.kpi_targets IS
    'KPI targets beyond a definition''s baseline/target/stretch: dated phases (due_at), ranges (target_low..target_high), rates (rate per rate_period) and degraded-mode targets';
COMMENT ON COLUMN kpi.kpi_targets.id IS 'Target id';
COMMENT ON COLUMN kpi.kpi_targets.metric IS 'The KPI (a metric of kpi.metric_definitions: its direction and baseline apply; its targets are renamed and deleted with it)';
COMMENT ON COLUMN kpi.kpi_targets.mode IS 'normal, or degraded: a looser target for when the system runs degraded (kpi.kpi_status(mode => ''degraded''))';
COMMENT ON COLUMN kpi.kpi_targets.phase IS 'Name of the phase (''phase 1'', ''final''...)';
COMMENT ON COLUMN kpi.kpi_targets.due_at IS 'Deadline of an intermediate target (it applies until then); NULL: the final target';
COMMENT ON COLUMN kpi.kpi_targets.target IS 'A value to reach';
COMMENT ON COLUMN kpi.kpi_targets.target_low IS 'Low edge of a target range (met inside it)';
COMMENT ON COLUMN kpi.kpi_targets.target_high IS 'High edge of a target range';
COMMENT ON COLUMN kpi.kpi_targets.rate IS 'A rate target: the value one rate_period earlier changed by rate (0.5 = +50 %, -0.05 = -5 %)';
COMMENT ON COLUMN kpi.kpi_targets.rate_period IS 'The period of a rate target (''1 year'', ''3 months'')';
COMMENT ON COLUMN kpi.kpi_targets.stretch IS 'Stretch goal beyond the target';
COMMENT ON COLUMN kpi.kpi_targets.created_at IS 'When the target was added';
SELECT pg_catalog.pg_extension_config_dump('kpi.kpi_targets', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.kpi_targets_id_seq', '');

-- Checks a target row against its definition: consistent with the direction
-- and baseline, a rate pointing the way the KPI improves, and phases whose
-- targets do not get less ambitious as their deadlines pass.
CREATE FUNCTION kpi_internal.check_kpi_target_row(t kpi.kpi_targets, d kpi.metric_definitions) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    worse record;
    dup text;
    sgn int := CASE WHEN d.direction = 'higher_is_better' THEN 1 ELSE -1 END;
    v float8 := coalesce(t.target, CASE WHEN d.direction = 'higher_is_better' THEN t.target_low ELSE t.target_high END);
BEGIN
    IF t.rate IS NOT NULL OR t.rate_period IS NOT NULL THEN
        IF t.rate IS NULL OR t.rate_period IS NULL THEN
            RAISE EXCEPTION 'kpi.kpi_targets: metric "%": a rate target needs both rate and rate_period', t.metric
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM kpi_internal.check_kpi_rate('kpi.kpi_targets', t.metric, d.direction, t.rate);
        IF t.stretch IS NOT NULL THEN
            RAISE EXCEPTION 'kpi.kpi_targets: metric "%": a rate target has no stretch value', t.metric
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        -- a degraded-mode target is looser: it may fall short of the baseline
        PERFORM kpi_internal.check_kpi_target('kpi.kpi_targets', t.metric, d.direction,
                                              CASE WHEN t.mode = 'normal' THEN d.baseline END,
                                              t.target, t.target_low, t.target_high,
                                              coalesce(t.stretch, CASE WHEN t.mode = 'normal' AND t.due_at IS NULL THEN d.stretch END));
    END IF;
    -- one target per deadline (and one final target) in a mode
    SELECT x.phase INTO dup FROM kpi.kpi_targets x
    WHERE x.metric = t.metric AND x.mode = t.mode AND x.due_at IS NOT DISTINCT FROM t.due_at
      AND x.id IS DISTINCT FROM t.id LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'kpi.kpi_targets: metric "%": due_at: phase "%" and phase "%" are both due %', t.metric, t.phase, dup,
            coalesce(t.due_at::text, 'at the end (final)')
            USING ERRCODE = 'unique_violation', HINT = 'Give each phase of a mode its own deadline.';
    END IF;
    -- phases in the same mode: a later deadline never asks for less
    IF t.rate IS NULL THEN
        SELECT x.phase, x.due_at,
               coalesce(x.target, CASE WHEN d.direction = 'higher_is_better' THEN x.target_low ELSE x.target_high END) AS v
        INTO worse
        FROM kpi.kpi_targets x
        WHERE x.metric = t.metric AND x.mode = t.mode AND x.id IS DISTINCT FROM t.id AND x.rate IS NULL
          AND sgn * (v - coalesce(x.target, CASE WHEN d.direction = 'higher_is_better' THEN x.target_low ELSE x.target_high END))
              * (CASE WHEN coalesce(t.due_at, 'infinity') > coalesce(x.due_at, 'infinity') THEN 1
                      WHEN coalesce(t.due_at, 'infinity') < coalesce(x.due_at, 'infinity') THEN -1 ELSE 0 END) < 0
        LIMIT 1;
        -- the definition's own target is the final one of the normal mode
        IF worse.phase IS NULL AND t.mode = 'normal' AND t.due_at IS NOT NULL AND d.target IS NOT NULL
           AND sgn * (d.target - v) < 0 THEN
            SELECT 'final (kpi.metric_definitions.target)' AS phase, NULL::timestamptz AS due_at, d.target AS v INTO worse;
        END IF;
        IF worse.phase IS NOT NULL THEN
            RAISE EXCEPTION 'kpi.kpi_targets: metric "%": phase "%" (due %) asks for % but phase "%" (due %) asks for %',
                t.metric, t.phase, coalesce(t.due_at::text, 'at the end'), v,
                worse.phase, coalesce(worse.due_at::text, 'at the end'), worse.v
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Phase targets get more ambitious (in the metric''s direction) as their deadlines pass; check the dates or the values.';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION kpi_internal.check_kpi_target_row(kpi.kpi_targets, kpi.metric_definitions) IS
    'Internal: checks a kpi_targets row against its definition and the KPI''s other targets';

CREATE FUNCTION kpi_internal.kpi_targets_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d kpi.metric_definitions;
BEGIN
    IF NEW.mode IS DISTINCT FROM 'normal' AND NEW.mode IS DISTINCT FROM 'degraded' THEN
        RAISE EXCEPTION 'kpi.kpi_targets: metric "%": mode must be normal or degraded, got %', NEW.metric,
            coalesce('"' || NEW.mode || '"', 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.metric IS NULL THEN
        RETURN NEW;  -- the NOT NULL constraint reports it
    END IF;
    SELECT * INTO d FROM kpi.metric_definitions WHERE metric = NEW.metric;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'kpi.kpi_targets: metric "%" has no definition', NEW.metric
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Add it to kpi.metric_definitions (with its direction and baseline) first.';
    END IF;
    NEW.phase := btrim(NEW.phase);
    PERFORM kpi_internal.check_kpi_target_row(NEW, d);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION kpi_internal.kpi_targets_check() IS 'Internal: trigger checking kpi.kpi_targets rows';
CREATE TRIGGER kpi_targets_check BEFORE INSERT OR UPDATE ON kpi.kpi_targets
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.kpi_targets_check();

-- a definition's targets follow it: renamed with it, deleted with it
CREATE FUNCTION kpi_internal.metric_targets_follow() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM kpi.kpi_targets WHERE metric = OLD.metric;
    ELSIF NEW.metric IS DISTINCT FROM OLD.metric THEN
        UPDATE kpi.kpi_targets SET metric = NEW.metric WHERE metric = OLD.metric;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION kpi_internal.metric_targets_follow() IS
    'Internal: trigger renaming and deleting a definition''s kpi_targets with it';
CREATE TRIGGER metric_definitions_targets_follow AFTER UPDATE OF metric OR DELETE ON kpi.metric_definitions
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.metric_targets_follow();
CREATE TRIGGER metric_definitions_targets_truncate AFTER TRUNCATE ON kpi.metric_definitions
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_internal.metric_targets_truncate();

-- Re-checks a definition's kpi_targets against its new direction, baseline
-- and target (each row through the same trigger, which raises naming it).
CREATE FUNCTION kpi_internal.recheck_kpi_targets(d kpi.metric_definitions) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t kpi.kpi_targets;
BEGIN
    FOR t IN SELECT * FROM kpi.kpi_targets x WHERE x.metric = d.metric ORDER BY x.due_at NULLS LAST LOOP
        PERFORM kpi_internal.check_kpi_target_row(t, d);
    END LOOP;
END
$$;
COMMENT ON FUNCTION kpi_internal.recheck_kpi_targets(kpi.metric_definitions) IS
    'Internal: checks every kpi_targets row of a definition against its (new) direction, baseline and target';

-- The target that applies to each active KPI at "at" in a mode: the next
-- dated phase whose deadline has not passed, else the final target (a
-- kpi_targets row before the definition's own baseline/target/stretch); a
-- rate target compares with the value one rate_period earlier.
CREATE FUNCTION kpi.kpi_status(at timestamptz DEFAULT now(), mode text DEFAULT 'normal',
                               trend_periods integer DEFAULT 6, trend_threshold_pct float8 DEFAULT 1)
RETURNS TABLE (metric text, unit text, direction text, current float8, samples bigint, baseline float8,
               target float8, target_low float8, target_high float8, stretch float8, phase text,
               due_at timestamptz, progress_pct float8, status text, trend text, change_pct float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
    IF at IS NULL OR mode IS NULL OR trend_periods IS NULL OR trend_threshold_pct IS NULL THEN
        RAISE EXCEPTION 'kpi.kpi_status: at, mode, trend_periods and trend_threshold_pct must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'kpi.kpi_status: at must be a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mode NOT IN ('normal', 'degraded') THEN
        RAISE EXCEPTION 'kpi.kpi_status: mode must be normal or degraded, got "%"', mode
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF trend_periods < 2 OR trend_periods > 1000 THEN
        RAISE EXCEPTION 'kpi.kpi_status: trend_periods must be between 2 and 1000, got %', trend_periods
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF trend_threshold_pct < 0 OR trend_threshold_pct IN ('NaN', 'Infinity') THEN
        RAISE EXCEPTION 'kpi.kpi_status: trend_threshold_pct must be a finite number >= 0, got %', trend_threshold_pct
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH d AS (
        SELECT * FROM kpi.metric_definitions x WHERE x.active
    ),
    cand AS (
        SELECT d.metric, 'final'::text AS phase, NULL::timestamptz AS due_at, d.target, NULL::float8 AS lo,
               NULL::float8 AS hi, NULL::float8 AS rate, NULL::interval AS rate_period, d.stretch, 1 AS prio
        FROM d WHERE kpi_status.mode = 'normal' AND d.target IS NOT NULL
        UNION ALL
        SELECT t.metric, t.phase, t.due_at, t.target, t.target_low, t.target_high, t.rate, t.rate_period,
               coalesce(t.stretch, CASE WHEN t.mode = 'normal' AND t.due_at IS NULL AND t.rate IS NULL THEN d.stretch END), 0
        FROM kpi.kpi_targets t JOIN d ON d.metric = t.metric
        WHERE t.mode = kpi_status.mode
    ),
    eff AS (
        SELECT DISTINCT ON (c.metric) c.*
        FROM cand c
        WHERE c.due_at IS NULL OR c.due_at >= kpi_status.at
        ORDER BY c.metric, c.due_at NULLS LAST, c.prio
    ),
    k AS (
        SELECT d.metric, d.unit, d.direction, d.measurement_window AS w, d.baseline, e.phase, e.due_at, e.target,
               e.lo, e.hi, e.rate, e.rate_period, e.stretch
        FROM d JOIN eff e ON e.metric = d.metric
    ),
    -- per measurement window, every KPI's last trend_periods windows in one query
    win AS (
        SELECT k.w, array_agg(k.metric) AS ms FROM k GROUP BY k.w
    ),
    cur AS (
        SELECT s.metric, s.means[trend_periods] AS value, s.counts[trend_periods] AS n, s.mean, s.trend,
               win.w * trend_periods AS span
        FROM win, LATERAL kpi_internal.range_stats_many(win.ms, kpi_status.at - win.w * trend_periods, kpi_status.at,
                                                        trend_periods, false) s
    ),
    -- rate targets: the value over the window one rate_period earlier
    refs AS (
        SELECT x.w, x.rate_period, array_agg(x.metric) AS ms
        FROM k x WHERE x.rate IS NOT NULL GROUP BY x.w, x.rate_period
    ),
    ref AS (
        SELECT s.metric, s.mean AS value
        FROM refs, LATERAL kpi_internal.range_stats_many(refs.ms, kpi_status.at - refs.rate_period - refs.w,
                                                         kpi_status.at - refs.rate_period, 0, false) s
    ),
    v AS (
        SELECT k.*, c.value AS cur_value, coalesce(c.n, 0) AS n, c.mean AS span_mean, c.trend, c.span,
               -- progress runs from the baseline (normal mode) or the reference of a rate
               CASE WHEN k.rate IS NOT NULL THEN r.value WHEN kpi_status.mode = 'normal' THEN k.baseline END AS base,
               CASE WHEN k.rate IS NOT NULL THEN kpi_internal.kpi_rate_target(k.direction, r.value, k.rate)
                    ELSE k.target END AS goal
        FROM k LEFT JOIN cur c ON c.metric = k.metric LEFT JOIN ref r ON r.metric = k.metric
    ),
    tr AS (
        SELECT v.*, kpi.slope(v.trend) * extract(epoch FROM v.span)::float8
                    / nullif(abs(v.span_mean), 0) * 100 AS chg
        FROM v
    )
    SELECT tr.metric, tr.unit, tr.direction, tr.cur_value, tr.n, tr.base, tr.goal, tr.lo, tr.hi, tr.stretch,
           tr.phase, tr.due_at,
           kpi_internal.kpi_progress(tr.direction, tr.cur_value, tr.base, tr.goal, tr.lo, tr.hi),
           kpi_internal.kpi_state(tr.direction, tr.cur_value, tr.base, tr.goal, tr.lo, tr.hi, tr.stretch),
           CASE WHEN tr.chg > trend_threshold_pct THEN '↑' WHEN tr.chg < -trend_threshold_pct THEN '↓'
                WHEN tr.chg IS NOT NULL THEN '→' END,
           tr.chg
    FROM tr
    ORDER BY tr.metric;
END
$$;
COMMENT ON FUNCTION kpi.kpi_status(timestamptz, text, integer, float8) IS
    'Each active KPI with a target at "at": the current value (mean over its measurement_window), the baseline, the target that applies (the next dated phase, else the final; a range; a rate against one period earlier) and stretch, progress %, status (below baseline, on track, target met, stretch met, beyond range; target not met without a baseline) and the trend arrow over the last trend_periods windows';

CREATE FUNCTION kpi.kpi_compliance(at timestamptz DEFAULT now(), mode text DEFAULT 'normal')
RETURNS TABLE (kpis bigint, with_data bigint, meeting_target bigint, compliance_pct float8)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT count(*), count(*) FILTER (WHERE s.status IS NOT NULL),
           count(*) FILTER (WHERE s.status IN ('target met', 'stretch met')),
           100.0 * count(*) FILTER (WHERE s.status IN ('target met', 'stretch met'))
               / nullif(count(*) FILTER (WHERE s.status IS NOT NULL), 0)
    FROM kpi.kpi_status($1, $2) s
$$;
COMMENT ON FUNCTION kpi.kpi_compliance(timestamptz, text) IS
    'The compliance score: the share (%) of the KPIs with a current value that meet their target (target or stretch met)';

-- the Rust functions of src/targets.rs
COMMENT ON FUNCTION kpi_internal.check_kpi_target(text, text, text, float8, float8, float8, float8, float8) IS
    'Internal: raises 22023 naming the field when a target contradicts the metric''s direction or baseline';
COMMENT ON FUNCTION kpi_internal.check_kpi_rate(text, text, text, float8) IS
    'Internal: raises 22023 when a rate target does not point the way the metric improves';
COMMENT ON FUNCTION kpi_internal.kpi_rate_target(text, float8, float8) IS 'Internal: the target of a rate goal from its reference value';
COMMENT ON FUNCTION kpi_internal.kpi_progress(text, float8, float8, float8, float8, float8) IS
    'Internal: progress in % from the baseline to the target (or a range''s near edge)';
COMMENT ON FUNCTION kpi_internal.kpi_state(text, float8, float8, float8, float8, float8, float8) IS
    'Internal: below baseline, on track, target met, stretch met, beyond range, or target not met (no baseline)';
