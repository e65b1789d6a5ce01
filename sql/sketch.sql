-- The stored type kpi.sketch (its functions and aggregates: src/sketch.rs, sql/sketch_aggregates.sql).

CREATE TYPE kpi.sketch;
CREATE FUNCTION kpi_internal.sketch_in(cstring) RETURNS kpi.sketch
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_in_wrapper';
CREATE FUNCTION kpi_internal.sketch_out(kpi.sketch) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_out_wrapper';
CREATE FUNCTION kpi_internal.sketch_recv(internal) RETURNS kpi.sketch
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_recv_wrapper';
CREATE FUNCTION kpi_internal.sketch_send(kpi.sketch) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'sketch_send_wrapper';
CREATE TYPE kpi.sketch (
    INPUT = kpi_internal.sketch_in, OUTPUT = kpi_internal.sketch_out,
    RECEIVE = kpi_internal.sketch_recv, SEND = kpi_internal.sketch_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE kpi.sketch IS 'Mergeable quantile sketch with a relative-error guarantee (DDSketch/UDDSketch family)';
