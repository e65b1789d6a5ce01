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
