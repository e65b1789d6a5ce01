-- The stored type kpi.trend (its functions and aggregates: src/trend.rs, sql/trend_aggregates.sql).

CREATE TYPE kpi.trend;
CREATE FUNCTION kpi_internal.trend_in(cstring) RETURNS kpi.trend
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_in_wrapper';
CREATE FUNCTION kpi_internal.trend_out(kpi.trend) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_out_wrapper';
CREATE FUNCTION kpi_internal.trend_recv(internal) RETURNS kpi.trend
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_recv_wrapper';
CREATE FUNCTION kpi_internal.trend_send(kpi.trend) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'trend_send_wrapper';
CREATE TYPE kpi.trend (
    INPUT = kpi_internal.trend_in, OUTPUT = kpi_internal.trend_out,
    RECEIVE = kpi_internal.trend_recv, SEND = kpi_internal.trend_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE kpi.trend IS 'Mergeable least-squares trend state (count, means, centred co-moments)';
