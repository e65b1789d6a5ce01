"""Faults, on a private server with pg_kpi preloaded (pgserver.Server): the
job worker SIGKILLed during a rollup (the postmaster's crash recovery
restarts everything), the server restarted (immediate and fast) during a
rollup and during rule evaluation, late rows written while a long rollup
runs, a job that hits temp_file_limit or statement_timeout. After each, the
jobs resume, summary totals equal raw totals, no alert or notification is
duplicated or lost, and kpi.job_runs says what happened."""

import time
import uuid

import psycopg
import pytest

from pgserver import Server, wait_for


@pytest.fixture(scope="module")
def server():
    s = Server("faults-" + uuid.uuid4().hex[:6]).init(databases="")
    s.start()
    yield s
    s.destroy()


@pytest.fixture
def fdb(server):
    """A fresh database with pg_kpi on the fault server (its worker starts on its own)."""
    name = "kpi_f_" + uuid.uuid4().hex[:8]
    with server.connect() as c:
        c.execute(f"CREATE DATABASE {name}")
    with server.connect(name) as c:
        c.execute("CREATE EXTENSION pg_kpi")
        c.execute("SELECT kpi.create_partitions(now() - interval '4 days', now() + interval '1 day')")
    yield name
    server.wait_ready()
    with server.connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def load(c, rows, days=3, metrics=4):
    c.execute(
        "INSERT INTO kpi.metrics (metric, value, ts) "
        "SELECT 'm' || (g %% %s), g %% 1000, now() - %s * interval '1 day' + (g::float8 / %s) * %s * interval '1 day' "
        "FROM generate_series(0, %s - 1) g", (metrics, days, rows, days, rows))


TOTALS = """
SELECT r.resolution::text, (SELECT coalesce(sum(s.count), 0) FROM kpi.summaries s WHERE s.resolution = r.resolution AND s.series = '{}'),
       (SELECT count(*) FROM kpi.metrics m WHERE m.ts < r.watermark)
FROM kpi.rollups r ORDER BY r.resolution"""


def assert_totals(c):
    for res, summed, raw in c.execute(TOTALS).fetchall():
        assert summed == raw, f"{res} rollup: summaries count {summed} rows, the raw table {raw} below the watermark"


def caught_up(c):
    """The rollups have reached the last complete minute and nothing is running."""
    return wait_for(c, "SELECT bool_and(kpi_internal.rollup_behind(r.resolution, r.lag, r.watermark) <= 60) "
                       "AND NOT EXISTS (SELECT FROM kpi.job_runs WHERE status = 'running') "
                       "AND NOT EXISTS (SELECT FROM kpi_internal.rollup_invalidations) "
                       "AND NOT EXISTS (SELECT FROM kpi_internal.metric_changes) FROM kpi.rollups r",
                    timeout=240)


def wait_running(c, kind, timeout=60):
    wait_for(c, "SELECT count(*) > 0 FROM kpi.job_runs jr JOIN kpi.jobs j ON j.id = jr.job_id "
                "WHERE jr.status = 'running' AND j.kind = %s", timeout=timeout, params=(kind,))


def start_rollup(c):
    # many small runs: the worker is inside a rollup most of the time
    c.execute("ALTER DATABASE " + c.info.dbname + " SET kpi.rollup_batch_buckets = 200")
    c.execute("SELECT kpi.add_rollup('1 minute', lag => '0', schedule => '1 second')")
    c.execute("SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0', schedule => '1 second')")


@pytest.mark.parametrize("fault", ["sigkill worker", "restart immediate", "restart fast"])
def test_rollup_survives(server, fdb, fault):
    with server.connect(fdb) as c:
        load(c, 400_000, days=1)
        start_rollup(c)
        wait_running(c, "rollup")
        pid = server.worker_pid(fdb)
        assert pid
    if fault == "sigkill worker":
        server.kill(pid)  # the postmaster resets every backend and recovers
        time.sleep(1)
    elif fault == "restart immediate":
        server.restart("immediate")
    else:
        server.restart("fast")
    server.wait_ready(fdb)
    with server.connect(fdb) as c:
        # late rows while it catches up: the change log takes them
        load(c, 20_000)
        caught_up(c)
        assert_totals(c)
        # what happened is in kpi.job_runs: the interrupted run failed with 57P01 (or the
        # crash took its uncommitted start with it), later runs succeeded
        statuses = dict(c.execute("SELECT status, count(*) FROM kpi.job_runs jr JOIN kpi.jobs j ON j.id = jr.job_id "
                                  "WHERE j.kind = 'rollup' GROUP BY 1").fetchall())
        assert statuses.get("success", 0) > 0 and "running" not in statuses, statuses
        interrupted = c.execute("SELECT count(*) FROM kpi.job_runs WHERE status = 'failed' AND sqlstate = '57P01'").fetchone()[0]
        if fault != "restart fast":
            assert interrupted >= 1, "the run the crash interrupted is recorded as failed"
        # the jobs are not paused or stuck
        assert c.execute("SELECT bool_and(enabled) FROM kpi.jobs").fetchone()[0]
    assert "terminated by signal 9" in server.log() or fault != "sigkill worker"


def test_rules_survive_a_restart_during_evaluation(server, fdb):
    n = 150
    with server.connect(fdb) as c:
        c.execute("SELECT kpi.alter_job(id, schedule_interval => '1 second', next_run => now()) FROM kpi.jobs WHERE kind = 'rules'")
        for i in range(n):
            c.execute("SELECT kpi.add_alert_rule(%s, %s, 'avg', '5 minutes', '>', 50, group_by => '{host}')",
                      (f"rule{i}", f"r{i}"))
        c.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) "
                  "SELECT 'r' || i, 90, now() - interval '10 seconds', jsonb_build_object('host', 'h' || h) "
                  "FROM generate_series(0, %s - 1) i, generate_series(1, 3) h", (n,))
        wait_running(c, "rules")
    server.restart("immediate")
    server.wait_ready(fdb)
    with server.connect(fdb) as c:
        # every (rule, host) fires exactly once, with one firing notification
        wait_for(c, "SELECT count(*) = %s FROM kpi.alerts WHERE source = 'rule' AND state = 'firing'", params=(n * 3,), timeout=90)
        dup = c.execute("SELECT fingerprint, count(*) FROM kpi.alerts GROUP BY 1 HAVING count(*) > 1").fetchall()
        assert dup == []
        dup = c.execute("SELECT alert_id, event, count(*) FROM kpi.notifications GROUP BY 1, 2 HAVING count(*) > 1").fetchall()
        assert dup == []
        assert c.execute("SELECT count(DISTINCT alert_id) FROM kpi.notifications WHERE event = 'firing'").fetchone()[0] == n * 3
        # the values fall: each resolves once
        c.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) "
                  "SELECT 'r' || i, 0, now(), jsonb_build_object('host', 'h' || h) "
                  "FROM generate_series(0, %s - 1) i, generate_series(1, 3) h, generate_series(1, 50)", (n,))
        wait_for(c, "SELECT count(*) = %s FROM kpi.alerts WHERE source = 'rule' AND state = 'resolved'", params=(n * 3,), timeout=90)
        dup = c.execute("SELECT alert_id, event, count(*) FROM kpi.notifications GROUP BY 1, 2 HAVING count(*) > 1").fetchall()
        assert dup == []


def test_a_job_that_runs_out_of_temp_space_or_time_fails_and_recovers(server, fdb):
    with server.connect(fdb) as c:
        load(c, 300_000, days=1, metrics=1)
        c.execute("SELECT kpi.add_rollup('1 minute', lag => '0', schedule => '1 second')")
        jid = c.execute("SELECT job_id FROM kpi.rollups").fetchone()[0]
        # the worker's sessions get tiny limits: the rollup cannot finish
        c.execute(f"ALTER DATABASE {fdb} SET statement_timeout = '1ms'")
        c.execute(f"ALTER DATABASE {fdb} SET temp_file_limit = '8kB'")
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (fdb,))
        wait_for(c, "SELECT count(*) > 0 FROM kpi.job_runs WHERE job_id = %s AND status = 'failed' "
                    "AND sqlstate IN ('57014', '53400')", params=(jid,), timeout=90)
        err = c.execute("SELECT sqlstate, error FROM kpi.job_runs WHERE job_id = %s AND status = 'failed' ORDER BY id DESC LIMIT 1",
                        (jid,)).fetchone()
        assert err[1], err
        # limits lifted: it retries (not paused yet) and catches up exactly
        c.execute(f"ALTER DATABASE {fdb} RESET statement_timeout")
        c.execute(f"ALTER DATABASE {fdb} RESET temp_file_limit")
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = %s", (fdb,))
        c.execute("SELECT kpi.resume_job(%s)", (jid,))
        caught_up(c)
        assert_totals(c)


def test_drop_and_recreate_the_extension_during_a_rollup(server, fdb):
    """DROP EXTENSION while the worker is inside a rollup: the drop waits for (or
    cancels) the run, the worker leaves, the server log shows no crash; the
    extension created again starts a worker that rolls the new data up exactly once."""
    log_start = len(server.log())  # the server is shared: earlier tests SIGKILL on purpose
    with server.connect(fdb) as c:
        load(c, 400_000, days=1)
        start_rollup(c)
        wait_running(c, "rollup")
        c.execute("SET lock_timeout = '60s'")
        c.execute("DROP EXTENSION pg_kpi CASCADE")
        wait_for(c, "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' "
                    "AND datname = current_database()", timeout=60)
        c.execute("CREATE EXTENSION pg_kpi")
        c.execute("SELECT kpi.create_partitions(now() - interval '2 days', now() + interval '1 day')")
        load(c, 50_000, days=1)
        start_rollup(c)
        wait_for(c, "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' "
                    "AND datname = current_database()", timeout=60)
        caught_up(c)
        assert_totals(c)
        assert c.execute("SELECT count(*) FROM kpi.job_runs WHERE status = 'success'").fetchone()[0] > 0
    assert "terminated by signal" not in server.log()[log_start:]
