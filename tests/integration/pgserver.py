"""A private PostgreSQL server with pg_kpi preloaded, for tests that crash,
restart, replicate or promote it: its own data directory and loopback port,
run as the postgres OS user like scripts/common.sh's clusters."""

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import psycopg

BIN = pathlib.Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
BASE = pathlib.Path(os.environ.get("KPI_TEST_DATA", "/var/tmp/pg_kpi/test-cluster")).parent
OS_USER = "postgres"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*args, check=True, **kw):
    cmd = [str(a) for a in args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", OS_USER, "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Server:
    def __init__(self, name, port=None):
        self.name = name
        self.data = BASE / name
        self.port = port or free_port()

    # -- lifecycle ---------------------------------------------------------
    def init(self, databases="", **settings):
        """A fresh cluster (any old one under this name removed)."""
        self.destroy()
        self.data.mkdir(parents=True)
        shutil.chown(self.data, OS_USER)
        as_postgres(BIN / "initdb", "-D", self.data, "-U", OS_USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        self.configure(databases, **settings)
        return self

    def configure(self, databases="", **settings):
        conf = {
            "port": self.port, "listen_addresses": "'localhost'", "unix_socket_directories": f"'{self.data}'",
            "shared_preload_libraries": "'pg_kpi'", "kpi.database": f"'{databases}'", "kpi.naptime": "'1s'",
            "max_worker_processes": 16, "fsync": "off", "wal_level": "replica", "max_wal_senders": 4,
            "hot_standby": "on", "restart_after_crash": "on", "log_min_messages": "warning",
        }
        conf.update({k.replace("__", "."): v for k, v in settings.items()})
        text = "".join(f"{k} = {v}\n" for k, v in conf.items())
        (self.data / "pg_kpi_test.conf").write_text(text)
        shutil.chown(self.data / "pg_kpi_test.conf", OS_USER)
        pc = self.data / "postgresql.conf"
        if "pg_kpi_test.conf" not in pc.read_text():
            with pc.open("a") as f:
                f.write("include_if_exists = 'pg_kpi_test.conf'\n")
        hba = self.data / "pg_hba.conf"
        if "replication all 127.0.0.1/32 trust" not in hba.read_text():
            with hba.open("a") as f:
                f.write("host replication all 127.0.0.1/32 trust\n")

    def start(self):
        as_postgres(BIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "-l", self.data / "server.log", "start")
        return self

    def stop(self, mode="fast"):
        as_postgres(BIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", mode, "stop", check=False)

    def restart(self, mode="fast"):
        as_postgres(BIN / "pg_ctl", "-D", self.data, "-w", "-t", "60", "-m", mode, "-l", self.data / "server.log", "restart")

    def destroy(self):
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)

    # -- access --------------------------------------------------------------
    def dsn(self, db="postgres", user=OS_USER):
        return f"host=localhost port={self.port} dbname={db} user={user}"

    def connect(self, db="postgres", autocommit=True):
        return psycopg.connect(self.dsn(db), autocommit=autocommit)

    def wait_ready(self, db="postgres", timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(db) as c:
                    c.execute("SELECT 1")
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self):
        p = self.data / "server.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def worker_pid(self, db, kind="pg_kpi worker"):
        with self.connect() as c:
            r = c.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = %s AND datname = %s", (kind, db)).fetchone()
            return r[0] if r else None

    def kill(self, pid, sig=signal.SIGKILL):
        os.kill(pid, sig)

    def basebackup(self, name):
        """A streaming replica of this server (pg_basebackup -R), not started."""
        standby = Server(name)
        standby.destroy()
        standby.data.mkdir(parents=True)
        shutil.chown(standby.data, OS_USER)
        as_postgres(BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", self.port, "-U", OS_USER, "-D", standby.data,
                    "-R", "-X", "stream", "--checkpoint=fast")
        os.chmod(standby.data, 0o700)
        # the copy carries the primary's log; the standby starts its own
        (standby.data / "server.log").unlink(missing_ok=True)
        return standby

    def promote(self):
        as_postgres(BIN / "pg_ctl", "-D", self.data, "-w", "promote")


def wait_for(conn, sql, timeout=60, params=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = conn.execute(sql, params).fetchone()
            if last and last[0]:
                return last
        except psycopg.OperationalError:
            raise
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for: {sql} (last: {last})")
