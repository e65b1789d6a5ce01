-- Severity: per-metric thresholds (kpi.metric_definitions), the band of a
-- value, its points, health and grades.

CREATE TYPE kpi.severity_level AS ENUM ('optimal', 'good', 'warning', 'critical', 'emergency');
COMMENT ON TYPE kpi.severity_level IS 'Ordered bands: optimal < good < warning < critical < emergency';

-- not STRICT: a NULL threshold removes its band; NULL value gives NULL
CREATE FUNCTION kpi.severity(value float8, optimal float8, good float8, warning float8, critical float8,
                             direction text DEFAULT 'lower_is_better')
    RETURNS kpi.severity_level
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_severity';
COMMENT ON FUNCTION kpi.severity(float8, float8, float8, float8, float8, text) IS
    'Band of value: thresholds are upper band edges for lower_is_better, lower edges for higher_is_better; a NULL threshold removes its band';

CREATE FUNCTION kpi.severity(metric text, value float8) RETURNS kpi.severity_level
    STABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT CASE WHEN d.metric IS NOT NULL
                THEN kpi.severity(value, d.optimal, d.good, d.warning, d.critical, d.direction)
                WHEN kpi_internal.note_unknown_metric($1) THEN NULL END
    FROM (SELECT) one
    LEFT JOIN kpi.metric_definitions d ON d.metric = $1 AND d.active
$$;
COMMENT ON FUNCTION kpi.severity(text, float8) IS
    'Band of value for a metric in kpi.metric_definitions; NULL (and a NOTICE once per session) for an unknown or inactive metric';

CREATE FUNCTION kpi.severity_score(level kpi.severity_level) RETURNS integer
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE sql AS $$
    SELECT kpi_internal.severity_points(level::text)
$$;
COMMENT ON FUNCTION kpi.severity_score(kpi.severity_level) IS 'Health points of a band: 100, 80, 60, 40, 0';

CREATE TABLE kpi.metric_definitions (
    metric              text PRIMARY KEY CHECK (metric <> '' AND length(metric) <= 255),
    category            text,
    subcategory         text,
    description         text,
    unit                text,
    direction           text NOT NULL DEFAULT 'lower_is_better'
                        CHECK (direction IN ('lower_is_better', 'higher_is_better')),
    optimal             double precision,
    good                double precision,
    warning             double precision,
    critical            double precision,
    baseline            double precision,
    target              double precision,
    stretch             double precision,
    measurement_window  interval NOT NULL DEFAULT '5 minutes' CHECK (measurement_window > interval '0'),
    alert_cooldown      interval CHECK (alert_cooldown >= interval '0'),
    active              boolean NOT NULL DEFAULT true,
    -- derived: values beyond it (above for lower_is_better) are warning or
    -- worse; NULL without thresholds. The alert trigger compares rows with it.
    breach_edge         double precision GENERATED ALWAYS AS
                        (kpi_internal.breach_edge(optimal, good, warning, critical, direction)) STORED,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kpi.metric_definitions IS 'Per-metric thresholds: the upper edge of each band for lower_is_better metrics, the lower edge for higher_is_better ones. A NULL alert_cooldown means the kpi.alert_cooldown setting.';

CREATE FUNCTION kpi_internal.metric_definitions_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM kpi_internal.check_thresholds(NEW.metric, NEW.direction, NEW.optimal, NEW.good, NEW.warning, NEW.critical);
    -- an infinite threshold (how the replaced configuration wrote an absent
    -- bound) means "no such band", stored as NULL
    IF NEW.optimal IN ('Infinity', '-Infinity') THEN NEW.optimal := NULL; END IF;
    IF NEW.good IN ('Infinity', '-Infinity') THEN NEW.good := NULL; END IF;
    IF NEW.warning IN ('Infinity', '-Infinity') THEN NEW.warning := NULL; END IF;
    IF NEW.critical IN ('Infinity', '-Infinity') THEN NEW.critical := NULL; END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER metric_definitions_check
    BEFORE INSERT OR UPDATE ON kpi.metric_definitions
    FOR EACH ROW EXECUTE FUNCTION kpi_internal.metric_definitions_check();

-- a plain fmgr function: reads kpi.severity_level label OIDs cached per call site
CREATE FUNCTION kpi_internal.health_score_trans(internal, kpi.severity_level) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_health_score_trans';

CREATE AGGREGATE kpi.health_score(level kpi.severity_level) (
    SFUNC = kpi_internal.health_score_trans, STYPE = internal, FINALFUNC = kpi_internal.health_score_final,
    COMBINEFUNC = kpi_internal.points_combine, SERIALFUNC = kpi_internal.points_serialize, DESERIALFUNC = kpi_internal.points_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.health_score(kpi.severity_level) IS
    'Mean of 100 (optimal), 80 (good), 60 (warning), 40 (critical), 0 (emergency); NULLs skipped';

CREATE AGGREGATE kpi.overall_grade(grade text) (
    SFUNC = kpi_internal.overall_grade_trans, STYPE = internal, FINALFUNC = kpi_internal.overall_grade_final,
    COMBINEFUNC = kpi_internal.points_combine, SERIALFUNC = kpi_internal.points_serialize, DESERIALFUNC = kpi_internal.points_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.overall_grade(text) IS
    'Overall letter grade: mean of A=4 .. F=0, then >= 3.5 A, >= 2.5 B, >= 1.5 C, >= 0.5 D, else F';

CREATE FUNCTION kpi.health(since interval DEFAULT NULL, at timestamptz DEFAULT now())
RETURNS TABLE (metric text, samples bigint, mean_value float8, severity kpi.severity_level, score float8, status text)
STABLE PARALLEL SAFE LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF since <= interval '0' THEN
        RAISE EXCEPTION 'kpi.health: since must be a positive interval, got %', since
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave since NULL to use each metric''s measurement_window.';
    END IF;
    IF at IS NULL OR at > now() THEN
        RAISE EXCEPTION 'kpi.health: at must be a time up to now(), got %', coalesce(at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH per AS (
        SELECT d.metric, s.samples, s.mean_value,
               kpi.severity(s.mean_value, d.optimal, d.good, d.warning, d.critical, d.direction) AS severity
        FROM kpi.metric_definitions d
        CROSS JOIN LATERAL (
            SELECT count(*) AS samples, avg(m.value) AS mean_value
            FROM kpi.metrics m
            WHERE m.metric = d.metric AND m.ts > at - coalesce(since, d.measurement_window) AND m.ts <= at
        ) s
        WHERE d.active
    )
    -- a metric's status is its band (optimal reads excellent); the 90/80/70/50
    -- cut-offs of kpi.health_status apply to the overall score only
    SELECT p.metric, p.samples, p.mean_value, p.severity, kpi.severity_score(p.severity)::float8,
           coalesce(CASE p.severity WHEN 'optimal' THEN 'excellent' ELSE p.severity::text END, 'unknown')
    FROM per p
    UNION ALL
    SELECT NULL, coalesce(sum(p.samples), 0)::bigint, NULL, max(p.severity), kpi.health_score(p.severity),
           kpi.health_status(kpi.health_score(p.severity))
    FROM per p
    ORDER BY 1 NULLS LAST;
END
$$;
COMMENT ON FUNCTION kpi.health(interval, timestamptz) IS
    'Per active metric: samples and mean over the window ending at "at" (since, or by default the metric''s measurement_window), its band, points and status (the band; optimal = excellent; unknown without samples); then an overall row (metric NULL) with the mean score and its status (excellent >= 90, good >= 80, warning >= 70, critical >= 50, else emergency)';

-- user data in extension tables is included by pg_dump
SELECT pg_catalog.pg_extension_config_dump('kpi.metrics_default', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.metrics_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('kpi.metric_definitions', '');

-- the scalar functions of src/severity.rs
COMMENT ON FUNCTION kpi.breach_severity(float8, float8) IS
    'low (ratio value/threshold up to 2), medium (> 2), high (> 3) or critical (> 5); NULL when value <= threshold';
COMMENT ON FUNCTION kpi.health_status(float8) IS
    'Status of a 0..100 health score: excellent >= 90, good >= 80, warning >= 70, critical >= 50, else emergency; unknown for NULL';
COMMENT ON FUNCTION kpi.grade(float8) IS 'Letter grade from the % of operations meeting their target: A >= 95, B >= 85, C >= 75, D >= 65, else F';
COMMENT ON FUNCTION kpi.performance_grade(float8, float8, float8) IS
    'Load-test grade A..F from average response time (ms), error rate (%) and expected response time (ms)';

-- internals
COMMENT ON FUNCTION kpi_internal.metric_definitions_check() IS 'Internal: trigger validating thresholds and storing infinite ones as NULL';
COMMENT ON FUNCTION kpi_internal.check_thresholds(text, text, float8, float8, float8, float8) IS 'Internal: raises 23514 (or 22023) for thresholds out of order or an unknown direction';
COMMENT ON FUNCTION kpi_internal.note_unknown_metric(text) IS 'Internal: NOTICE once per session that a metric has no active definition; returns false';
COMMENT ON FUNCTION kpi_internal.breach_edge(float8, float8, float8, float8, text) IS 'Internal: the value beyond which a metric is warning or worse (kpi-core); NULL without thresholds';
COMMENT ON FUNCTION kpi_internal.crossed_threshold(text, float8, float8, float8, float8) IS 'Internal: the threshold a value crossed to land in a band (kpi-core)';
COMMENT ON FUNCTION kpi_internal.severity_points(text) IS 'Internal: health points of a band, 100 80 60 40 0 (kpi-core)';

-- columns
COMMENT ON COLUMN kpi.metric_definitions.metric IS 'Metric name, as in kpi.metrics.metric';
COMMENT ON COLUMN kpi.metric_definitions.category IS 'Category (response_time, throughput, error_rate, availability, ...); picks default alert recommendations';
COMMENT ON COLUMN kpi.metric_definitions.subcategory IS 'Finer grouping for reports';
COMMENT ON COLUMN kpi.metric_definitions.description IS 'What the metric measures';
COMMENT ON COLUMN kpi.metric_definitions.unit IS 'Unit shown in alert messages and reports (ms, %, req/s)';
COMMENT ON COLUMN kpi.metric_definitions.direction IS 'lower_is_better (thresholds are upper band edges) or higher_is_better (lower edges)';
COMMENT ON COLUMN kpi.metric_definitions.optimal IS 'Edge of the optimal band (NULL or infinite: no such band)';
COMMENT ON COLUMN kpi.metric_definitions.good IS 'Edge of the good band; values beyond it are warning or worse and raise alerts';
COMMENT ON COLUMN kpi.metric_definitions.warning IS 'Edge of the warning band';
COMMENT ON COLUMN kpi.metric_definitions.critical IS 'Edge of the critical band; values beyond it are emergency';
COMMENT ON COLUMN kpi.metric_definitions.baseline IS 'Where the metric started (KPI reports)';
COMMENT ON COLUMN kpi.metric_definitions.target IS 'Target value (KPI reports)';
COMMENT ON COLUMN kpi.metric_definitions.stretch IS 'Stretch goal (KPI reports)';
COMMENT ON COLUMN kpi.metric_definitions.measurement_window IS 'Window kpi.health averages over by default (default 5 minutes)';
COMMENT ON COLUMN kpi.metric_definitions.alert_cooldown IS 'Quiet time that ends an alert and separates incidents (NULL: kpi.alert_cooldown)';
COMMENT ON COLUMN kpi.metric_definitions.active IS 'false: no severity, health or alerts for the metric';
COMMENT ON COLUMN kpi.metric_definitions.breach_edge IS 'Derived: the value beyond which the metric is warning or worse; NULL without thresholds';
COMMENT ON COLUMN kpi.metric_definitions.created_at IS 'When the definition was created';
COMMENT ON COLUMN kpi.metric_definitions.updated_at IS 'When the definition last changed';
