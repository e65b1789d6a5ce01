#!/usr/bin/env bash
# Benchmark: pg_kpi aggregates beside their native PostgreSQL / tdigest equivalents,
# from one run in one session (one backend, no parallelism), with medians of several runs.
# Usage: bash scripts/bench.sh [rows (default 5000000)] [runs (default 5)]
# COPY_ROWS (default 1000000) sets the size of the COPY-with-alert-trigger benchmark,
# ROLLUP_ROWS (default 5000000) the rollup benchmark, RULES_ROWS (default 1000000) the
# alert rules benchmark, IDLE_SECONDS (default 60) how long the idle worker's CPU time is
# measured, DELIVERY_BURST (default 10000) the alert delivery burst, SOAK_SECONDS (default
# 120) and SOAK_CLIENTS (default 4) the soak under load (scripts/soak.py), WRITE_SECONDS
# (default 15) each pgbench run of the write benchmark (scripts/bench_write.py). ONLY=<section>
# (aggregates, alerts, models, rollups, rules, reports, bi, delivery, write, soak, idle) runs one section.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROWS="${1:-5000000}"
RUNS="${2:-5}"

setup_toolchain postgresql-15-tdigest python3-venv
install_extension --release
start_cluster "$CLUSTER_DATA" "$CLUSTER_PORT" "$CLUSTER_DB,kpi_bench"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" postgres -q -c "DROP DATABASE IF EXISTS kpi_bench WITH (FORCE)" -c "CREATE DATABASE kpi_bench"
want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }
# a new kpi_bench with pg_kpi: no rows, jobs or alerts from the sections before
fresh_bench_db() {
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" postgres -q -c "DROP DATABASE IF EXISTS kpi_bench WITH (FORCE)" \
    -c "CREATE DATABASE kpi_bench"
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -c "CREATE EXTENSION pg_kpi"
}
# the Python virtual environment of the Python-driven sections (made once), on stdout
bench_venv() {
  local venv="$ROOT/target/pytest-venv"
  { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import psycopg' 2>/dev/null; } || \
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'psycopg[binary]>=3.2' 'pytest>=8'; } >&2
  echo "$venv"
}
if want aggregates; then
  log "loading $ROWS rows, then timing (median of $RUNS runs each)"
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v rows="$ROWS" -v runs="$RUNS" -f "$ROOT/scripts/bench.sql"
else
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -c "CREATE EXTENSION pg_kpi" -c "CREATE EXTENSION tdigest"
fi
if want alerts; then
  log "COPY of ${COPY_ROWS:-1000000} rows into kpi.metrics with the alert trigger on and off (median of $RUNS runs each)"
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v copy_rows="${COPY_ROWS:-1000000}" -v runs="$RUNS" -f "$ROOT/scripts/bench_alerts.sql"
fi
if want models; then
  log "customer-model fits (median of $RUNS runs each)"
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v runs="$RUNS" -f "$ROOT/scripts/bench_models.sql"
fi
if want rollups; then
  log "rollups of ${ROLLUP_ROWS:-5000000} rows (median of $RUNS runs each)"
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v rollup_rows="${ROLLUP_ROWS:-5000000}" -v runs="$RUNS" -f "$ROOT/scripts/bench_rollups.sql"
fi
if want rules; then
  log "alert rules over ${RULES_ROWS:-1000000} rows (median of $RUNS runs each)"
  fresh_bench_db
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v rules_rows="${RULES_ROWS:-1000000}" -v runs="$RUNS" -f "$ROOT/scripts/bench_rules.sql"
fi
if want reports; then
  log "reports over 100 metrics x 30 days of 1-minute values (median of $RUNS runs each)"
  fresh_bench_db
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -v runs="$RUNS" -f "$ROOT/scripts/bench_reports.sql"
fi
if want bi; then
  log "BI: kpi.timeseries, the Grafana dashboard's panels, kpi.prometheus_metrics and kpi.html_report"
  fresh_bench_db
  venv="$(bench_venv)"
  "$venv/bin/python" "$ROOT/scripts/bench_bi.py" \
    "host=localhost port=$CLUSTER_PORT dbname=kpi_bench user=$CLUSTER_USER" "$RUNS"
fi
if want delivery; then
  log "alert delivery: a burst of ${DELIVERY_BURST:-10000} notifications to a local webhook, and the latency"
  fresh_bench_db
  venv="$(bench_venv)"
  "$venv/bin/python" "$ROOT/scripts/bench_delivery.py" \
    "host=localhost port=$CLUSTER_PORT dbname=kpi_bench user=$CLUSTER_USER" "${DELIVERY_BURST:-10000}"
fi
if want write; then
  log "write path: pgbench INSERT, kpi.record, 100-row INSERT and COPY into kpi.metrics beside a plain table"
  fresh_bench_db
  venv="$(bench_venv)"
  "$venv/bin/python" "$ROOT/scripts/bench_write.py" \
    "host=localhost port=$CLUSTER_PORT dbname=kpi_bench user=$CLUSTER_USER" "${WRITE_SECONDS:-15}"
fi
if want soak; then
  log "soak: ${SOAK_CLIENTS:-4} pgbench clients for ${SOAK_SECONDS:-120} s while the worker rolls up, evaluates rules and delivers"
  venv="$(bench_venv)"
  "$venv/bin/python" "$ROOT/scripts/soak.py" \
    "host=localhost port=$CLUSTER_PORT dbname=kpi_bench user=$CLUSTER_USER" "${SOAK_SECONDS:-120}" "${SOAK_CLIENTS:-4}"
fi
want idle || exit 0

IDLE="${IDLE_SECONDS:-60}"
log "idle cost of the kpi_bench worker (kpi.naptime = 1s, no due jobs) over ${IDLE}s"
pid=""
for _ in $(seq 1 30); do
  pid=$(psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -Atq -c \
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = 'kpi_bench'")
  [ -n "$pid" ] && break
  sleep 1
done
if [ -z "$pid" ]; then
  echo "no pg_kpi worker found for kpi_bench" >&2
else
  psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" kpi_bench -q -c "UPDATE kpi.jobs SET enabled = false"
  ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  hz=$(getconf CLK_TCK)
  t0=$(ticks); sleep "$IDLE"; t1=$(ticks)
  awk -v d="$((t1 - t0))" -v hz="$hz" -v s="$IDLE" 'BEGIN {
    ms = d * 1000 / hz
    printf "worker CPU: %.0f ms in %d s = %.1f ms per minute (%.3f %% of one core)\n", ms, s, ms * 60 / s, ms / (s * 10) }'
fi
