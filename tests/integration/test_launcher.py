"""The launcher: a job worker for every database where pg_kpi is installed
(kpi.database only restricts the list), none where it is not, within
kpi.max_workers; DROP DATABASE, RENAME and CREATE DATABASE ... TEMPLATE work
without FORCE while a worker runs; no duplicates after the launcher restarts;
no FATAL loop for a listed database that does not exist."""

import os
import time
import uuid

import psycopg
import pytest

from conftest import DSN
from test_worker import WORKER_DB, wait_for

LOG = os.path.join(os.environ.get("KPI_TEST_DATA", "/var/tmp/pg_kpi/test-cluster"), "server.log")


def workers(conn):
    return dict(
        conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' GROUP BY 1"
        ).fetchall()
    )


def set_conf(admin, **settings):
    for k, v in settings.items():
        if v is None:
            admin.execute(f"ALTER SYSTEM RESET kpi.{k}")
        else:
            admin.execute(f"ALTER SYSTEM SET kpi.{k} = '{v}'")
    admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)


@pytest.fixture
def cluster():
    """Two fresh databases (a with pg_kpi, b without) that the launcher may serve."""
    tag = uuid.uuid4().hex[:8]
    a, b = f"kpi_la_{tag}", f"kpi_lb_{tag}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        # the worker tests' database has a worker too (it may not exist yet on a fresh cluster)
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (WORKER_DB,)).fetchone():
            admin.execute(f"CREATE DATABASE {WORKER_DB}")
        with psycopg.connect(DSN.replace("dbname=postgres", f"dbname={WORKER_DB}"), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_kpi")
        admin.execute(f"CREATE DATABASE {a}")
        admin.execute(f"CREATE DATABASE {b}")
        with psycopg.connect(DSN.replace("dbname=postgres", f"dbname={a}"), autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_kpi")
        set_conf(admin, database=f"{WORKER_DB},{a},{b},{a}_renamed,{a}_copy")
        try:
            yield admin, a, b
        finally:
            set_conf(admin, database=None, max_workers=None)
            for d in (a, b, f"{a}_renamed", f"{a}_copy"):
                admin.execute(f"DROP DATABASE IF EXISTS {d} WITH (FORCE)")


def test_a_database_with_the_extension_gets_a_worker_and_one_without_does_not(cluster):
    admin, a, b = cluster
    wait_for(admin, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (a,), timeout=15)
    time.sleep(1)
    assert b not in workers(admin)
    # CREATE EXTENSION in b starts its worker at once (the commit wakes the launcher)
    with psycopg.connect(DSN.replace("dbname=postgres", f"dbname={b}"), autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi")
        wait_for(c, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (b,), timeout=5)
        # connected first, then it finds the extension and says so
        wait_for(c, "SELECT count(*) = 2 FROM kpi.worker_status() WHERE database IN (%s, %s) AND state = 'running'",
                 (a, b), timeout=10)
        # the job status shows work as it is done, not 'overdue'
        wait_for(c, "SELECT bool_and(state <> 'overdue') FROM kpi.job_status")


def test_drop_rename_and_copy_a_database_while_its_worker_runs(cluster):
    admin, a, _ = cluster
    wait_for(admin, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (a,), timeout=15)
    t0 = time.monotonic()
    admin.execute(f"CREATE DATABASE {a}_copy TEMPLATE {a}")
    admin.execute(f"ALTER DATABASE {a} RENAME TO {a}_renamed")
    assert time.monotonic() - t0 < 5  # no wait for "being accessed by other users"
    # both come back: the renamed database and the copy, which has the extension
    wait_for(admin, "SELECT count(DISTINCT datname) = 2 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname IN (%s, %s)", (f"{a}_renamed", f"{a}_copy"), timeout=15)
    t0 = time.monotonic()
    admin.execute(f"DROP DATABASE {a}_renamed")
    admin.execute(f"DROP DATABASE {a}_copy")
    assert time.monotonic() - t0 < 5


def test_max_workers_and_launcher_restart_without_duplicates(cluster):
    admin, a, b = cluster
    with psycopg.connect(DSN.replace("dbname=postgres", f"dbname={b}"), autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi")
    wait_for(admin, "SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname IN (%s, %s, %s)", (WORKER_DB, a, b), timeout=15)
    launcher = admin.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi launcher'").fetchone()[0]
    admin.execute("SELECT pg_terminate_backend(%s)", (launcher,))
    wait_for(admin, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_kpi launcher' AND pid <> %s", (launcher,), timeout=15)
    time.sleep(2)
    assert all(n == 1 for n in workers(admin).values())
    # fewer workers allowed: a database that loses its worker does not get it back
    set_conf(admin, database=f"{a},{b}", max_workers=1)
    for pid, in admin.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker'").fetchall():
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(12)
    w = workers(admin)
    assert sum(w.values()) == 1 and set(w) <= {a, b}


def test_a_listed_database_that_does_not_exist_is_a_warning_not_a_fatal_loop(cluster):
    admin, _, _ = cluster
    missing = "kpi_no_such_db_" + uuid.uuid4().hex[:6]
    size = os.path.getsize(LOG)
    set_conf(admin, database=f"{WORKER_DB},{missing}")
    time.sleep(12)
    with open(LOG, errors="replace") as f:
        f.seek(size)
        tail = f.read()
    assert tail.count(f'"{missing}"') == 1, tail
    assert "FATAL" not in tail
