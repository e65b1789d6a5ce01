-- Exact percentiles, summary statistics and the correlation test over the
-- support functions in src/stats.rs. Every one is PARALLEL SAFE with combine,
-- serialize and deserialize functions.

CREATE AGGREGATE kpi.percentile(value float8, p float8) (
    SFUNC = kpi_internal.percentile_trans, STYPE = internal, FINALFUNC = kpi_internal.percentile_final,
    COMBINEFUNC = kpi_internal.exact_combine, SERIALFUNC = kpi_internal.exact_serialize, DESERIALFUNC = kpi_internal.exact_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.percentile(float8, float8) IS 'Exact percentile, same definition as percentile_cont';

-- reads its float8[] argument from fcinfo on a group's first row only
CREATE FUNCTION kpi_internal.percentiles_trans(internal, float8, float8[]) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'percentiles_trans_wrapper';

CREATE AGGREGATE kpi.percentiles(value float8, ps float8[]) (
    SFUNC = kpi_internal.percentiles_trans, STYPE = internal, FINALFUNC = kpi_internal.percentiles_final,
    COMBINEFUNC = kpi_internal.exact_combine, SERIALFUNC = kpi_internal.exact_serialize, DESERIALFUNC = kpi_internal.exact_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE kpi.percentiles(float8, float8[]) IS 'Exact percentiles for each element of ps, in one pass';

CREATE AGGREGATE kpi.summary_stats(value float8) (
    SFUNC = kpi_internal.summary_trans, STYPE = internal, FINALFUNC = kpi_internal.summary_final,
    COMBINEFUNC = kpi_internal.summary_combine, SERIALFUNC = kpi_internal.summary_serialize, DESERIALFUNC = kpi_internal.summary_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.summary_stats(value float8, relative_error float8) (
    SFUNC = kpi_internal.summary_sketch_trans, STYPE = internal, FINALFUNC = kpi_internal.summary_sketch_final,
    COMBINEFUNC = kpi_internal.summary_sketch_combine, SERIALFUNC = kpi_internal.summary_sketch_serialize,
    DESERIALFUNC = kpi_internal.summary_sketch_deserialize, PARALLEL = SAFE);

CREATE AGGREGATE kpi.correlation_test(x float8, y float8) (
    SFUNC = kpi_internal.correlation_trans2, STYPE = internal, FINALFUNC = kpi_internal.correlation_final,
    COMBINEFUNC = kpi_internal.correlation_combine, SERIALFUNC = kpi_internal.correlation_serialize,
    DESERIALFUNC = kpi_internal.correlation_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE kpi.correlation_test(x float8, y float8, alpha float8) (
    SFUNC = kpi_internal.correlation_trans, STYPE = internal, FINALFUNC = kpi_internal.correlation_final,
    COMBINEFUNC = kpi_internal.correlation_combine, SERIALFUNC = kpi_internal.correlation_serialize,
    DESERIALFUNC = kpi_internal.correlation_deserialize, PARALLEL = SAFE);

COMMENT ON AGGREGATE kpi.summary_stats(float8) IS
    'count, min, max, mean, median, sample stddev, p95, p99 in one pass (kpi.stats), exact quantiles';
COMMENT ON AGGREGATE kpi.summary_stats(float8, float8) IS
    'kpi.summary_stats with quantiles from a sketch of the given relative error (bounded memory)';
COMMENT ON AGGREGATE kpi.correlation_test(float8, float8) IS
    'Pearson r with a two-sided t test of r = 0 at alpha 0.05 (kpi.correlation: r, n, t, p_value, significant)';
COMMENT ON AGGREGATE kpi.correlation_test(float8, float8, float8) IS
    'Pearson r with a two-sided t test of r = 0 at the given alpha (kpi.correlation)';
COMMENT ON FUNCTION kpi.zscore(float8, float8, float8) IS 'Standard score (value - mean) / stddev; NULL when stddev is 0';
COMMENT ON FUNCTION kpi.anomaly_level(float8, float8, float8) IS
    'NULL below warning standard deviations (default 3), warning from there, critical above critical (default 4), on |z|';
COMMENT ON FUNCTION kpi_internal.welch_test(bigint, float8, float8, bigint, float8, float8) IS
    'Internal: Welch''s t-test from two samples'' count, mean and variance: {t, df, p_value}';
