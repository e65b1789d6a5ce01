# Shared by run.sh, test.sh and bench.sh: reads pgrx.toml and installs what is missing.
# Every step is idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n==> %s\n' "$*"; }

# sudo for root-only steps when not root
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Read pgrx.toml into shell variables (python3's tomllib; python3 is on the machine).
eval "$(python3 - "$ROOT/pgrx.toml" <<'PY'
import sys, tomllib, shlex
c = tomllib.load(open(sys.argv[1], "rb"))
out = {
  "PGRX_VERSION": c["tools"]["pgrx"],
  "PG_MAJOR": c["postgres"]["major"],
  "PG_CONFIG": c["postgres"]["pg_config"],
  "PG_PACKAGES": " ".join(c["postgres"]["packages"]),
  "CLUSTER_PORT": c["cluster"]["port"],
  "CLUSTER_DATA": c["cluster"]["data_dir"],
  "CLUSTER_USER": c["cluster"]["os_user"],
  "CLUSTER_DB": c["cluster"]["database"],
  "TEST_PORT": c["test"]["port"],
  "TEST_DATA": c["test"]["data_dir"],
  "TEST_PGRX_PGDATA": c["test"]["pgrx_test_pgdata"],
  "TEST_DB": c["test"]["database"],
}
for k, v in out.items():
    print(f"{k}={shlex.quote(str(v))}")
PY
)"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"

check_pins() {
  local pinned
  pinned=$(sed -n 's/^pgrx = "=\(.*\)"/\1/p' Cargo.toml)
  if [ "$pinned" != "$PGRX_VERSION" ]; then
    echo "Cargo.toml pins pgrx =$pinned but pgrx.toml says $PGRX_VERSION" >&2
    exit 1
  fi
}

install_packages() {
  local missing=()
  for p in $PG_PACKAGES "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian starts a default cluster on install; we run our own.
}

install_cargo_pgrx() {
  if ! cargo pgrx --version 2>/dev/null | grep -q "cargo-pgrx $PGRX_VERSION\$"; then
    log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
    cargo install --locked cargo-pgrx --version "$PGRX_VERSION"
  fi
  if ! grep -q "^pg${PG_MAJOR} *= *\"${PG_CONFIG}\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    log "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
    cargo pgrx init "--pg${PG_MAJOR}" "$PG_CONFIG"
  fi
}

setup_toolchain() {
  check_pins
  install_packages "$@"
  install_cargo_pgrx
}

# A running server that preloads pg_kpi maps the installed library; overwriting
# that file in place crashes it. Unlinking first lets running processes keep the
# old inode while the install writes a new file.
unlink_installed_library() {
  as_root rm -f "$("$PG_CONFIG" --pkglibdir)/pg_kpi.so"
}

# Build and install the extension into the PostgreSQL of pg_config.
install_extension() {
  log "building and installing pg_kpi $*"
  unlink_installed_library
  local sudo_flag=()
  [ "$(id -u)" = 0 ] || sudo_flag=(--sudo)
  cargo pgrx install "${sudo_flag[@]}" "$@" --pg-config "$PG_CONFIG" >/dev/null
  # cargo pgrx copies the upgrade scripts (pg_kpi--A--B.sql) but not the frozen
  # install scripts of released versions (pg_kpi--A.sql), which CREATE EXTENSION
  # pg_kpi VERSION 'A' and the upgrade test need
  local f
  for f in "$ROOT"/sql/pg_kpi--[0-9]*.sql; do
    case "$(basename "$f")" in
      pg_kpi--*--*) ;;
      *) as_root install -m 644 "$f" "$("$PG_CONFIG" --sharedir)/extension/" ;;
    esac
  done
}

psql_at() { # psql_at DATA_DIR PORT DB [psql args...]
  local data="$1" port="$2" db="$3"; shift 3
  pg_user_run "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$data" -p "$port" -d "$db" "$@"
}

# start_cluster DATA_DIR PORT [WORKER_DBS]: initdb if needed, configure, (re)start.
# WORKER_DBS restricts the databases that get a job worker (kpi.database);
# empty: every database where pg_kpi is installed.
start_cluster() {
  local data="$1" port="$2" worker_db="${3:-}"
  as_root mkdir -p "$(dirname "$data")"
  as_root chown "$CLUSTER_USER" "$(dirname "$data")"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb $data"
    pg_user_run "$PG_BIN/initdb" -D "$data" -U "$CLUSTER_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  pg_user_run bash -c "cat > '$data/pg_kpi.conf' <<CONF
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$data'
shared_preload_libraries = 'pg_kpi'
kpi.database = '$worker_db'
max_worker_processes = 16
max_parallel_workers_per_gather = 2
shared_buffers = 512MB
work_mem = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
grep -q '^include_if_exists = .pg_kpi.conf.' '$data/postgresql.conf' || echo \"include_if_exists = 'pg_kpi.conf'\" >> '$data/postgresql.conf'"
  if pg_user_run "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    pg_user_run "$PG_BIN/pg_ctl" -D "$data" -w -m fast restart -l "$data/server.log" >/dev/null
  else
    pg_user_run "$PG_BIN/pg_ctl" -D "$data" -w start -l "$data/server.log" >/dev/null
  fi
}

stop_cluster() {
  local data="$1"
  pg_user_run "$PG_BIN/pg_ctl" -D "$data" -w -m fast stop >/dev/null 2>&1 || true
}

pg_user_run() {
  if [ "$(id -un)" = "$CLUSTER_USER" ]; then
    "$@"
  else
    as_root runuser -u "$CLUSTER_USER" -- "$@"
  fi
}
