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
