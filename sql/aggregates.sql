-- Aggregates. Every one is PARALLEL SAFE with combine, serialize and
-- deserialize functions, so parallel query (and Citus) can split it.

CREATE AGGREGATE kpi.percentile(value float8, p float8) (
    SFUNC = kpi.percentile_trans, STYPE = internal, FINALFUNC = kpi.percentile_final,
    COMBINEFUNC = kpi.exact_combine, SERIALFUNC = kpi.exact_serialize, DESERIALFUNC = kpi.exact_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.percentile(float8, float8) IS 'Exact percentile, same definition as percentile_cont';

-- reads its float8[] argument from fcinfo on a group's first row only
CREATE FUNCTION kpi.percentiles_trans(internal, float8, float8[]) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'percentiles_trans_wrapper';

CREATE AGGREGATE kpi.percentiles(value float8, ps float8[]) (
    SFUNC = kpi.percentiles_trans, STYPE = internal, FINALFUNC = kpi.percentiles_final,
    COMBINEFUNC = kpi.exact_combine, SERIALFUNC = kpi.exact_serialize, DESERIALFUNC = kpi.exact_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.percentiles(float8, float8[]) IS 'Exact percentiles for each element of ps, in one pass';

CREATE AGGREGATE kpi.summary_stats(value float8) (
    SFUNC = kpi.summary_trans, STYPE = internal, FINALFUNC = kpi.summary_final,
    COMBINEFUNC = kpi.summary_combine, SERIALFUNC = kpi.summary_serialize, DESERIALFUNC = kpi.summary_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.summary_stats(value float8, relative_error float8) (
    SFUNC = kpi.summary_sketch_trans, STYPE = internal, FINALFUNC = kpi.summary_sketch_final,
    COMBINEFUNC = kpi.summary_sketch_combine, SERIALFUNC = kpi.summary_sketch_serialize,
    DESERIALFUNC = kpi.summary_sketch_deserialize, PARALLEL = SAFE);

-- a plain fmgr function: the hottest transition path
CREATE FUNCTION kpi.sketch_trans(internal, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_sketch_trans';

CREATE AGGREGATE kpi.sketch_agg(value float8) (
    SFUNC = kpi.sketch_trans, STYPE = internal, SSPACE = 300, FINALFUNC = kpi.sketch_final,
    COMBINEFUNC = kpi.sketch_combine, SERIALFUNC = kpi.sketch_serialize, DESERIALFUNC = kpi.sketch_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.sketch_agg(value float8, relative_error float8) (
    SFUNC = kpi.sketch_trans_err, STYPE = internal, FINALFUNC = kpi.sketch_final,
    COMBINEFUNC = kpi.sketch_combine, SERIALFUNC = kpi.sketch_serialize, DESERIALFUNC = kpi.sketch_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.sketch_agg(s kpi.sketch) (
    SFUNC = kpi.sketch_merge_trans, STYPE = internal, FINALFUNC = kpi.sketch_final,
    COMBINEFUNC = kpi.sketch_combine, SERIALFUNC = kpi.sketch_serialize, DESERIALFUNC = kpi.sketch_deserialize,
    PARALLEL = SAFE);

-- a plain fmgr function: hot transition path
CREATE FUNCTION kpi.trend_trans_ts(internal, timestamptz, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_trend_trans_ts';

CREATE AGGREGATE kpi.trend_agg(ts timestamptz, value float8) (
    SFUNC = kpi.trend_trans_ts, STYPE = internal, SSPACE = 64, FINALFUNC = kpi.trend_final,
    COMBINEFUNC = kpi.trend_combine, SERIALFUNC = kpi.trend_serialize, DESERIALFUNC = kpi.trend_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.trend_agg(x float8, y float8) (
    SFUNC = kpi.trend_trans_xy, STYPE = internal, FINALFUNC = kpi.trend_final,
    COMBINEFUNC = kpi.trend_combine, SERIALFUNC = kpi.trend_serialize, DESERIALFUNC = kpi.trend_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.trend_agg(t kpi.trend) (
    SFUNC = kpi.trend_merge_trans, STYPE = internal, FINALFUNC = kpi.trend_final,
    COMBINEFUNC = kpi.trend_combine, SERIALFUNC = kpi.trend_serialize, DESERIALFUNC = kpi.trend_deserialize,
    PARALLEL = SAFE);

CREATE AGGREGATE kpi.correlation_test(x float8, y float8) (
    SFUNC = kpi.correlation_trans2, STYPE = internal, FINALFUNC = kpi.correlation_final,
    COMBINEFUNC = kpi.correlation_combine, SERIALFUNC = kpi.correlation_serialize,
    DESERIALFUNC = kpi.correlation_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE kpi.correlation_test(x float8, y float8, alpha float8) (
    SFUNC = kpi.correlation_trans, STYPE = internal, FINALFUNC = kpi.correlation_final,
    COMBINEFUNC = kpi.correlation_combine, SERIALFUNC = kpi.correlation_serialize,
    DESERIALFUNC = kpi.correlation_deserialize, PARALLEL = SAFE);

-- a plain fmgr function: reads kpi.severity_level label OIDs cached per call site
CREATE FUNCTION kpi.health_score_trans(internal, kpi.severity_level) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_health_score_trans';

CREATE AGGREGATE kpi.health_score(level kpi.severity_level) (
    SFUNC = kpi.health_score_trans, STYPE = internal, FINALFUNC = kpi.health_score_final,
    COMBINEFUNC = kpi.points_combine, SERIALFUNC = kpi.points_serialize, DESERIALFUNC = kpi.points_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.health_score(kpi.severity_level) IS
    'Mean of 100 (optimal), 80 (good), 60 (warning), 40 (critical), 0 (emergency); NULLs skipped';

CREATE AGGREGATE kpi.overall_grade(grade text) (
    SFUNC = kpi.overall_grade_trans, STYPE = internal, FINALFUNC = kpi.overall_grade_final,
    COMBINEFUNC = kpi.points_combine, SERIALFUNC = kpi.points_serialize, DESERIALFUNC = kpi.points_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.overall_grade(text) IS
    'Overall letter grade: mean of A=4 .. F=0, then >= 3.5 A, >= 2.5 B, >= 1.5 C, >= 0.5 D, else F';

-- customer models: the state keeps distinct rows with weights; the final function fits
CREATE AGGREGATE kpi.bgnbd_fit(frequency float8, recency float8, t float8) (
    SFUNC = kpi.bgnbd_trans, STYPE = internal, FINALFUNC = kpi.bgnbd_final,
    COMBINEFUNC = kpi.bgnbd_combine, SERIALFUNC = kpi.bgnbd_serialize, DESERIALFUNC = kpi.bgnbd_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.bgnbd_fit(frequency float8, recency float8, t float8, penalizer float8) (
    SFUNC = kpi.bgnbd_trans_pen, STYPE = internal, FINALFUNC = kpi.bgnbd_final,
    COMBINEFUNC = kpi.bgnbd_combine, SERIALFUNC = kpi.bgnbd_serialize, DESERIALFUNC = kpi.bgnbd_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.bgnbd_fit(float8, float8, float8) IS
    'Maximum-likelihood BG/NBD fit (Fader, Hardie & Lee 2005) over customers'' frequency, recency and T';
CREATE AGGREGATE kpi.gamma_gamma_fit(frequency float8, monetary float8) (
    SFUNC = kpi.gamma_gamma_trans, STYPE = internal, FINALFUNC = kpi.gamma_gamma_final,
    COMBINEFUNC = kpi.gamma_gamma_combine, SERIALFUNC = kpi.gamma_gamma_serialize,
    DESERIALFUNC = kpi.gamma_gamma_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.gamma_gamma_fit(float8, float8) IS
    'Maximum-likelihood Gamma-Gamma spend fit on repeat customers (frequency 0 rows are ignored)';
CREATE AGGREGATE kpi.sbg_fit(period integer, alive bigint) (
    SFUNC = kpi.sbg_trans, STYPE = internal, FINALFUNC = kpi.sbg_final,
    COMBINEFUNC = kpi.sbg_combine, SERIALFUNC = kpi.sbg_serialize, DESERIALFUNC = kpi.sbg_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.sbg_fit(integer, bigint) IS
    'Shifted-beta-geometric retention fit (Fader & Hardie 2007) from a cohort''s survivors per period';

CREATE AGGREGATE kpi.payback_days(ts timestamptz, amount numeric, investment numeric, start timestamptz) (
    SFUNC = kpi.payback_days_trans, STYPE = internal, FINALFUNC = kpi.payback_days_final,
    COMBINEFUNC = kpi.payback_days_combine, SERIALFUNC = kpi.payback_days_serialize,
    DESERIALFUNC = kpi.payback_days_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.payback_days(timestamptz, numeric, numeric, timestamptz) IS
    'Days from start until the cumulative amount (rows at or after start, in time order) first reaches the investment; NULL if never';

-- everything a summary row holds, in one pass (the rollups' materialization)
CREATE FUNCTION kpi.rollup_trans(internal, timestamptz, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_trans';
CREATE FUNCTION kpi.rollup_final(internal) RETURNS kpi.rollup_part
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_final';
CREATE AGGREGATE kpi.rollup_agg(ts timestamptz, value float8) (
    SFUNC = kpi.rollup_trans, STYPE = internal, SSPACE = 400, FINALFUNC = kpi.rollup_final,
    COMBINEFUNC = kpi.rollup_combine, SERIALFUNC = kpi.rollup_serialize, DESERIALFUNC = kpi.rollup_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.rollup_agg(timestamptz, float8) IS
    'count, sum, avg, min, max, sample stddev, sketch and trend of the values in one pass (kpi.rollup_part)';

-- the same per time bucket of the given resolution (aligned as kpi.bucket): the
-- rollups' materialization groups raw rows by metric and series only, and the
-- aggregate splits them into buckets (no per-row date_bin, a small hash table)
CREATE FUNCTION kpi._rollup_buckets_trans(internal, timestamptz, float8, interval) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_buckets_trans';
CREATE FUNCTION kpi._rollup_buckets_final(internal) RETURNS kpi.rollup_bucket[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_rollup_buckets_final';
CREATE AGGREGATE kpi._rollup_buckets(ts timestamptz, value float8, resolution interval) (
    SFUNC = kpi._rollup_buckets_trans, STYPE = internal, SSPACE = 20000, FINALFUNC = kpi._rollup_buckets_final,
    COMBINEFUNC = kpi.rollup_buckets_combine, SERIALFUNC = kpi.rollup_buckets_serialize,
    DESERIALFUNC = kpi.rollup_buckets_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi._rollup_buckets(timestamptz, float8, interval) IS
    'internal: kpi.rollup_agg per time bucket of the resolution, as kpi.rollup_bucket[] in time order';
