-- kpi.sketch_agg over the support functions in src/sketch.rs; PARALLEL SAFE with
-- combine, serialize and deserialize, so parallel query (and Citus) can split it.

-- a plain fmgr function: the hottest transition path
CREATE FUNCTION kpi_internal.sketch_trans(internal, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_sketch_trans';

CREATE AGGREGATE kpi.sketch_agg(value float8) (
    SFUNC = kpi_internal.sketch_trans, STYPE = internal, SSPACE = 300, FINALFUNC = kpi_internal.sketch_final,
    COMBINEFUNC = kpi_internal.sketch_combine, SERIALFUNC = kpi_internal.sketch_serialize, DESERIALFUNC = kpi_internal.sketch_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.sketch_agg(value float8, relative_error float8) (
    SFUNC = kpi_internal.sketch_trans_err, STYPE = internal, FINALFUNC = kpi_internal.sketch_final,
    COMBINEFUNC = kpi_internal.sketch_combine, SERIALFUNC = kpi_internal.sketch_serialize, DESERIALFUNC = kpi_internal.sketch_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.sketch_agg(s kpi.sketch) (
    SFUNC = kpi_internal.sketch_merge_trans, STYPE = internal, FINALFUNC = kpi_internal.sketch_final,
    COMBINEFUNC = kpi_internal.sketch_combine, SERIALFUNC = kpi_internal.sketch_serialize, DESERIALFUNC = kpi_internal.sketch_deserialize,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE kpi.sketch_agg(float8) IS 'Mergeable quantile sketch of the values (relative error 0.01)';
COMMENT ON AGGREGATE kpi.sketch_agg(float8, float8) IS 'Mergeable quantile sketch with the given relative error (1e-6 .. 0.5)';
COMMENT ON AGGREGATE kpi.sketch_agg(kpi.sketch) IS 'Merges stored sketches (e.g. per-minute sketches into an hour)';
COMMENT ON FUNCTION kpi.approx_percentile(kpi.sketch, float8) IS
    'Value at quantile p (0..1) of a sketch, within kpi.sketch_error relative error of the exact answer';
COMMENT ON FUNCTION kpi.approx_percentiles(kpi.sketch, float8[]) IS 'kpi.approx_percentile for each element of ps';
COMMENT ON FUNCTION kpi.approx_rank(kpi.sketch, float8) IS 'Estimated fraction (0..1) of the values <= value';
COMMENT ON FUNCTION kpi.sketch_count(kpi.sketch) IS 'Number of values in the sketch (exact)';
COMMENT ON FUNCTION kpi.sketch_min(kpi.sketch) IS 'Smallest value in the sketch (exact)';
COMMENT ON FUNCTION kpi.sketch_max(kpi.sketch) IS 'Largest value in the sketch (exact)';
COMMENT ON FUNCTION kpi.sketch_mean(kpi.sketch) IS 'Mean of the values in the sketch (exact sum)';
COMMENT ON FUNCTION kpi.sketch_error(kpi.sketch) IS 'Relative-error bound in force (grows only if the sketch had to collapse)';
