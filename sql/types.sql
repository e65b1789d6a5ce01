-- Stored binary types and the composite result types of the statistics aggregates.

CREATE TYPE kpi.sketch;
CREATE FUNCTION kpi.sketch_in(cstring) RETURNS kpi.sketch
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_in_wrapper';
CREATE FUNCTION kpi.sketch_out(kpi.sketch) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_out_wrapper';
CREATE FUNCTION kpi.sketch_recv(internal) RETURNS kpi.sketch
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_recv_wrapper';
CREATE FUNCTION kpi.sketch_send(kpi.sketch) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_send_wrapper';
CREATE TYPE kpi.sketch (
    INPUT = kpi.sketch_in, OUTPUT = kpi.sketch_out,
    RECEIVE = kpi.sketch_recv, SEND = kpi.sketch_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE kpi.sketch IS 'Mergeable quantile sketch with a relative-error guarantee (DDSketch/UDDSketch family)';

CREATE TYPE kpi.trend;
CREATE FUNCTION kpi.trend_in(cstring) RETURNS kpi.trend
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_in_wrapper';
CREATE FUNCTION kpi.trend_out(kpi.trend) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_out_wrapper';
CREATE FUNCTION kpi.trend_recv(internal) RETURNS kpi.trend
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_recv_wrapper';
CREATE FUNCTION kpi.trend_send(kpi.trend) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_send_wrapper';
CREATE TYPE kpi.trend (
    INPUT = kpi.trend_in, OUTPUT = kpi.trend_out,
    RECEIVE = kpi.trend_recv, SEND = kpi.trend_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE kpi.trend IS 'Mergeable least-squares trend state (count, means, centred co-moments)';

CREATE TYPE kpi.stats AS (
    count bigint, min float8, max float8, mean float8, median float8,
    stddev float8, p95 float8, p99 float8
);
CREATE TYPE kpi.correlation AS (
    r float8, n bigint, t float8, p_value float8, significant boolean
);
-- fitted customer models (values returned by the *_fit aggregates and passed to the predictions)
CREATE TYPE kpi.bgnbd AS (
    r float8, alpha float8, a float8, b float8, log_likelihood float8, n bigint, converged boolean
);
CREATE TYPE kpi.gamma_gamma AS (
    p float8, q float8, gamma float8, log_likelihood float8, n bigint, converged boolean
);
CREATE TYPE kpi.sbg AS (
    alpha float8, beta float8, log_likelihood float8, n bigint, converged boolean
);
-- one bucket's summary, returned by kpi.rollup_agg
CREATE TYPE kpi.rollup_part AS (
    count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
    sketch kpi.sketch, trend kpi.trend
);
-- one time bucket's summary, returned (as an array) by kpi._rollup_buckets
CREATE TYPE kpi.rollup_bucket AS (
    bucket timestamptz, count bigint, sum float8, avg float8, min float8, max float8, stddev float8,
    sketch kpi.sketch, trend kpi.trend
);
