"""The job worker of the test cluster (kpi.database = KPI_WORKER_DB restricts
the launcher to that database): runs jobs on its own, isolates and retries
failing jobs, pauses them after max_retries, enforces max_runtime, comes back
after SIGTERM, and follows DROP/CREATE EXTENSION."""

import os
import time

import psycopg
import pytest

from conftest import DSN

WORKER_DB = os.environ.get("KPI_WORKER_DB", "kpi_worker_test")
WORKER_DSN = DSN.replace("dbname=postgres", f"dbname={WORKER_DB}")


def wait_for(conn, sql, params=(), timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(sql, params).fetchone()
        if row and row[0]:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {sql}")
        time.sleep(0.2)


def worker_pid(conn):
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (WORKER_DB,)
    ).fetchone()
    return row[0] if row else None


@pytest.fixture
def wdb():
    """The worker's database, recreated with the extension."""
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {WORKER_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {WORKER_DB}")
    with psycopg.connect(WORKER_DSN, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi")
        yield c


def test_worker_runs_rollup_on_its_own(wdb):
    wdb.execute("SELECT kpi.create_partitions(now() - interval '1 day', now() + interval '1 day')")
    wdb.execute(
        "INSERT INTO kpi.metrics (metric, value, ts) "
        "SELECT 'w', g, now() - interval '1 hour' + g * interval '1 second' FROM generate_series(0, 1800) g"
    )
    wdb.execute("SELECT kpi.add_rollup('1 minute', lag => '0', schedule => '1 second')")
    # a few naptimes (plus up to one restart delay after the database was recreated)
    wait_for(wdb, "SELECT sum(count) = 1801 FROM kpi.summaries WHERE resolution = '1 minute'", timeout=30)
    # the built-in partitions job ran too
    wait_for(wdb, "SELECT count(*) > 0 FROM kpi.job_runs r JOIN kpi.jobs j ON j.id = r.job_id WHERE j.kind = 'partitions' AND r.status = 'success'")
    # new rows are picked up by later runs
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('w', 5, now() - interval '2 hours')")
    wait_for(wdb, "SELECT sum(count) = 1802 FROM kpi.summaries WHERE resolution = '1 minute'")


def test_failing_job_is_isolated_retried_and_paused(wdb):
    wdb.execute("CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp())")
    bad = wdb.execute(
        "SELECT kpi.add_job('sql', '{\"command\": \"SELECT 1 / 0\"}', '1 second', "
        "max_retries => 2, retry_period => '1 second')"
    ).fetchone()[0]
    good = wdb.execute(
        "SELECT kpi.add_job('sql', '{\"command\": \"INSERT INTO ticks DEFAULT VALUES\"}', '1 second')"
    ).fetchone()[0]
    wait_for(wdb, "SELECT NOT enabled FROM kpi.jobs WHERE id = %s", (bad,), timeout=40)
    runs = wdb.execute(
        "SELECT status, sqlstate, error FROM kpi.job_runs WHERE job_id = %s ORDER BY id", (bad,)
    ).fetchall()
    assert len(runs) == 3
    assert all(r == ("failed", "22012", "division by zero") for r in runs)
    st = wdb.execute("SELECT state, consecutive_failures, last_error FROM kpi.job_status WHERE id = %s", (bad,)).fetchone()
    assert st == ("paused", 3, "22012: division by zero")
    # backoff: the retries were spaced by retry_period x failures
    gaps = wdb.execute(
        "SELECT extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY id)) FROM kpi.job_runs WHERE job_id = %s ORDER BY id",
        (bad,),
    ).fetchall()
    assert gaps[1][0] >= 0.9 and gaps[2][0] >= 1.9
    # the good job kept running meanwhile
    assert wdb.execute("SELECT count(*) FROM ticks").fetchone()[0] >= 3
    assert wdb.execute("SELECT count(*) FROM kpi.job_runs WHERE job_id = %s AND status <> 'success'", (good,)).fetchone()[0] == 0
    # resume gives it a fresh start
    wdb.execute("SELECT kpi.resume_job(%s)", (bad,))
    assert wdb.execute("SELECT enabled, consecutive_failures FROM kpi.jobs WHERE id = %s", (bad,)).fetchone() == (True, 0)
    wdb.execute("SELECT kpi.pause_job(%s)", (bad,))


def test_max_runtime_cancels_the_job(wdb):
    slow = wdb.execute(
        "SELECT kpi.add_job('sql', '{\"command\": \"SELECT pg_sleep(30)\"}', '1 hour', max_runtime => '300 ms')"
    ).fetchone()[0]
    row = wait_for(
        wdb, "SELECT status = 'failed', sqlstate, error FROM kpi.job_runs WHERE job_id = %s AND status <> 'running'", (slow,)
    )
    assert row[1] == "57014"
    assert "max_runtime" in row[2]


def test_sigterm_restarts_the_worker_and_interrupted_runs_fail(wdb):
    wait_for(wdb, "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (WORKER_DB,), timeout=30)
    pid = worker_pid(wdb)
    long_job = wdb.execute(
        "SELECT kpi.add_job('sql', '{\"command\": \"SELECT pg_sleep(60)\"}', '1 hour')"
    ).fetchone()[0]
    wait_for(wdb, "SELECT count(*) > 0 FROM kpi.job_runs WHERE job_id = %s AND status = 'running'", (long_job,))
    wdb.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # the launcher starts it again, and the new worker marks the run the old
    # one left behind as failed
    row = wait_for(
        wdb,
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s AND pid <> %s",
        (WORKER_DB, pid),
        timeout=30,
    )
    assert row[0] != pid
    r = wait_for(wdb, "SELECT status = 'failed', sqlstate FROM kpi.job_runs WHERE job_id = %s", (long_job,))
    assert r[1] == "57P01"
    wdb.execute("SELECT kpi.pause_job(%s)", (long_job,))


def test_drop_and_create_extension(wdb):
    wait_for(wdb, "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (WORKER_DB,), timeout=30)
    pid = worker_pid(wdb)
    wdb.execute("DROP EXTENSION pg_kpi")
    # the worker leaves a database without the extension
    wait_for(wdb, "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (WORKER_DB,))
    # and the launcher starts one again as soon as the extension is back
    wdb.execute("CREATE EXTENSION pg_kpi")
    wdb.execute("CREATE TABLE ticks (n int)")
    wdb.execute("SELECT kpi.add_job('sql', '{\"command\": \"INSERT INTO ticks VALUES (1)\"}', '1 second')")
    wait_for(wdb, "SELECT count(*) > 0 FROM ticks", timeout=10)
    assert worker_pid(wdb) not in (None, pid)
