#!/usr/bin/env bash
# Benchmark: pg_kpi aggregates beside their native PostgreSQL / tdigest equivalents,
# from one run in one session (one backend, no parallelism), with medians of several runs.
# Usage: bash scripts/bench.sh [rows (default 5000000)] [runs (default 5)]
# COPY_ROWS (default 1000000) sets the size of the COPY-with-alert-trigger benchmark.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROWS="${1:-5000000}"
RUNS="${2:-5}"

setup_toolchain postgresql-15-tdigest
install_extension --release
start_cluster "$CLUSTER_DATA" "$CLUSTER_PORT" "$CLUSTER_DB"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" postgres -q -c "DROP DATABASE IF EXISTS kpi_bench WITH (FORCE)" -c "CREATE DATABASE kpi_bench"
log "loading $ROWS rows, then timing (median of $RUNS runs each)"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v rows="$ROWS" -v runs="$RUNS" -f "$ROOT/scripts/bench.sql"
log "COPY of ${COPY_ROWS:-1000000} rows into kpi.metrics with the alert trigger on and off (median of $RUNS runs each)"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v copy_rows="${COPY_ROWS:-1000000}" -v runs="$RUNS" -f "$ROOT/scripts/bench_alerts.sql"
log "customer-model fits (median of $RUNS runs each)"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v runs="$RUNS" -f "$ROOT/scripts/bench_models.sql"
