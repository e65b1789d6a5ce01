#!/usr/bin/env bash
# The whole test suite: formatting, lints, pure Rust tests (with proptest),
# #[pg_test]s inside PostgreSQL, SQL regression tests with expected output,
# and client-side integration tests against a real server with pg_kpi preloaded.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

setup_toolchain python3-venv prometheus-alertmanager prometheus prometheus-postgres-exporter chromium

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

log "pure Rust tests (kpi-core)"
cargo test -p kpi-core

log "#[pg_test] tests inside PostgreSQL ${PG_MAJOR}"
as_root mkdir -p "$TEST_PGRX_PGDATA"
as_root chown "$CLUSTER_USER" "$TEST_PGRX_PGDATA"
unlink_installed_library
CARGO_PGRX_TEST_RUNAS="$CLUSTER_USER" CARGO_PGRX_TEST_PGDATA="$TEST_PGRX_PGDATA" \
  cargo pgrx test "pg${PG_MAJOR}"

install_extension
start_cluster "$TEST_DATA" "$TEST_PORT" kpi_worker_test
trap 'stop_cluster "$TEST_DATA"' EXIT

log "SQL regression tests (pg_regress)"
psql_at "$TEST_DATA" "$TEST_PORT" postgres -q -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)"
outdir="$(mktemp -d /tmp/pg_kpi_regress.XXXXXX)"
chmod 777 "$outdir"
tests=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//' | sort)
# shellcheck disable=SC2086
if ! pg_user_run "$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress" \
    --inputdir="$ROOT/tests/pg_regress" --outputdir="$outdir" \
    --host="$TEST_DATA" --port="$TEST_PORT" --user="$CLUSTER_USER" \
    --dbname="$TEST_DB" $tests; then
  cat "$outdir/regression.diffs" 2>/dev/null | head -200
  exit 1
fi

log "integration tests (committed data, concurrency) with pytest"
venv="$ROOT/target/pytest-venv"
[ -x "$venv/bin/pytest" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'psycopg[binary]>=3.2' 'pytest>=8'; }
"$venv/bin/python" -c 'import yaml, PIL' 2>/dev/null || "$venv/bin/pip" install -q 'pyyaml>=6' 'pillow>=10'
KPI_WORKER_DB=kpi_worker_test KPI_TEST_DATA="$TEST_DATA" \
  KPI_TEST_DSN="host=localhost port=$TEST_PORT dbname=postgres user=$CLUSTER_USER" \
  "$venv/bin/pytest" -q tests/integration
