#!/usr/bin/env bash
# The main job: install what is missing, build and install pg_kpi, start a local
# cluster with pg_kpi preloaded, create the extension, load a demo workload and
# print a short report. Safe to rerun.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

setup_toolchain
install_extension --release
start_cluster "$CLUSTER_DATA" "$CLUSTER_PORT"

log "creating database $CLUSTER_DB with pg_kpi and demo data"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" postgres -q \
  -c "DROP DATABASE IF EXISTS $CLUSTER_DB WITH (FORCE)" -c "CREATE DATABASE $CLUSTER_DB"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" "$CLUSTER_DB" -q -o /dev/null -f "$ROOT/scripts/demo.sql"

log "report"
psql_at "$CLUSTER_DATA" "$CLUSTER_PORT" "$CLUSTER_DB" -q -f "$ROOT/scripts/report.sql"

cat <<MSG

pg_kpi is running. Connect with:
  sudo -u $CLUSTER_USER psql -h $CLUSTER_DATA -p $CLUSTER_PORT -d $CLUSTER_DB
(or psql "host=localhost port=$CLUSTER_PORT dbname=$CLUSTER_DB user=$CLUSTER_USER")
Stop it with:
  sudo -u $CLUSTER_USER $PG_BIN/pg_ctl -D $CLUSTER_DATA stop
MSG
