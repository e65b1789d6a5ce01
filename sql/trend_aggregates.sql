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

COMMENT ON AGGREGATE kpi.trend_agg(timestamptz, float8) IS 'Least-squares trend of value over time (x = epoch seconds), mergeable';
COMMENT ON AGGREGATE kpi.trend_agg(float8, float8) IS 'Least-squares trend of y over x, mergeable';
COMMENT ON AGGREGATE kpi.trend_agg(kpi.trend) IS 'Merges stored trend states';
COMMENT ON FUNCTION kpi.slope(kpi.trend, interval) IS 'Slope per interval (default 1 second; per unit of x for float8 x); NULL with < 2 points';
COMMENT ON FUNCTION kpi.intercept(kpi.trend) IS 'Intercept of the least-squares line (value at x = 0)';
COMMENT ON FUNCTION kpi.r2(kpi.trend) IS 'Coefficient of determination 0..1 (1 when y is constant)';
COMMENT ON FUNCTION kpi.correlation(kpi.trend) IS 'Pearson correlation of x and y, -1..1';
COMMENT ON FUNCTION kpi.trend_count(kpi.trend) IS 'Number of points in the trend';
COMMENT ON FUNCTION kpi.forecast(kpi.trend, timestamptz) IS 'Value of the fitted line at a time';
COMMENT ON FUNCTION kpi.forecast(kpi.trend, float8) IS 'Value of the fitted line at x';
COMMENT ON FUNCTION kpi.direction(kpi.trend, float8) IS
    'increasing when the slope per second > threshold_per_second, decreasing when < -threshold_per_second, else stable';
COMMENT ON FUNCTION kpi.direction(kpi.trend, float8, interval) IS
    'increasing, decreasing or stable with the threshold given per interval (e.g. 5 per 1 hour)';
COMMENT ON FUNCTION kpi.slope_per_sample(kpi.trend) IS 'Change between consecutive samples: slope x typical spacing of x (exact when evenly spaced)';
COMMENT ON FUNCTION kpi.sample_direction(kpi.trend, float8) IS
    'increasing, decreasing or stable with the threshold per sample (the replaced services'' rule, default 0.1)';
COMMENT ON FUNCTION kpi.strength(kpi.trend) IS '|slope| per second';
COMMENT ON FUNCTION kpi.trend_slope(float8[]) IS 'Slope over array positions 0..n-1 (NULL elements skipped, keeping positions)';
COMMENT ON FUNCTION kpi.prediction_interval(kpi.trend, timestamptz, float8) IS
    'The prediction interval {low, high} of a new value at a time, at a confidence level (default 0.95); NULL with fewer than 3 points';
