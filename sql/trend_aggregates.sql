-- kpi.trend_agg over the support functions in src/trend.rs; PARALLEL SAFE with
-- combine, serialize and deserialize.

-- a plain fmgr function: hot transition path
CREATE FUNCTION kpi_internal.trend_trans_ts(internal, timestamptz, float8) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'kpi_trend_trans_ts';

CREATE AGGREGATE kpi.trend_agg(ts timestamptz, value float8) (
    SFUNC = kpi_internal.trend_trans_ts, STYPE = internal, SSPACE = 64, FINALFUNC = kpi_internal.trend_final,
    COMBINEFUNC = kpi_internal.trend_combine, SERIALFUNC = kpi_internal.trend_serialize, DESERIALFUNC = kpi_internal.trend_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.trend_agg(x float8, y float8) (
    SFUNC = kpi_internal.trend_trans_xy, STYPE = internal, FINALFUNC = kpi_internal.trend_final,
    COMBINEFUNC = kpi_internal.trend_combine, SERIALFUNC = kpi_internal.trend_serialize, DESERIALFUNC = kpi_internal.trend_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE kpi.trend_agg(t kpi.trend) (
    SFUNC = kpi_internal.trend_merge_trans, STYPE = internal, FINALFUNC = kpi_internal.trend_final,
    COMBINEFUNC = kpi_internal.trend_combine, SERIALFUNC = kpi_internal.trend_serialize, DESERIALFUNC = kpi_internal.trend_deserialize,
    PARALLEL = SAFE);
