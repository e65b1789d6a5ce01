"""Scheduled report snapshots against a real server: the job worker runs a
report job at the times of its cron expression, stores each snapshot and
NOTIFYs listeners when it commits."""

import json
import time

import psycopg

from test_worker import WORKER_DSN, wait_for, wdb  # noqa: F401  (fixture)


def test_worker_takes_snapshots_on_a_cron_schedule(wdb):
    with psycopg.connect(WORKER_DSN, autocommit=True) as listener:
        listener.execute("LISTEN kpi_report_snapshots")
        # every 2 seconds (the optional seconds field), in a time zone
        job = wdb.execute(
            "SELECT kpi.add_job('report', %s, schedule_cron => '*/2 * * * * *', schedule_timezone => 'Europe/Berlin')",
            (json.dumps({"name": "live dashboard", "report": "dashboard", "args": {"window": "1 minute"}}),),
        ).fetchone()[0]
        first = wdb.execute("SELECT next_run FROM kpi.jobs WHERE id = %s", (job,)).fetchone()[0]
        assert first.microsecond == 0 and first.second % 2 == 0
        wait_for(wdb, "SELECT count(*) >= 3 FROM kpi.report_snapshots WHERE job_id = %s", (job,), timeout=30)
        # each run set the next one on the cron's even seconds
        row = wdb.execute(
            "SELECT extract(microseconds FROM next_run)::bigint %% 2000000 = 0, next_run > now() - interval '5 seconds' "
            "FROM kpi.jobs WHERE id = %s",
            (job,),
        ).fetchone()
        assert row == (True, True)
        runs = wdb.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'success') FROM kpi.job_runs WHERE job_id = %s", (job,)
        ).fetchone()
        assert runs[0] >= 3 and runs[0] == runs[1]
        snap = wdb.execute(
            "SELECT name, report, period, body ? 'health' AND body ? 'pg_kpi' FROM kpi.report_snapshots "
            "WHERE job_id = %s ORDER BY id LIMIT 1",
            (job,),
        ).fetchone()
        assert snap == ("live dashboard", "dashboard", None, True)
        # one notification per snapshot, naming it
        deadline = time.monotonic() + 10
        got = []
        for n in listener.notifies(timeout=10, stop_after=3):
            got.append(json.loads(n.payload))
            if time.monotonic() > deadline:
                break
        assert len(got) >= 3
        assert all(g["name"] == "live dashboard" and g["report"] == "dashboard" for g in got)
        ids = [g["id"] for g in got]
        assert ids == sorted(ids)
        stored = {r[0] for r in wdb.execute("SELECT id FROM kpi.report_snapshots WHERE job_id = %s", (job,)).fetchall()}
        assert set(ids) <= stored


def test_a_failing_report_job_retries_and_other_jobs_go_on(wdb):
    # a report that fails when it runs (a metric argument it rejects), beside a healthy one
    bad = wdb.execute(
        "SELECT kpi.add_job('report', %s, schedule_cron => '* * * * * *', schedule_timezone => 'UTC', max_retries => 1, "
        "retry_period => '1 second')",
        (json.dumps({"name": "broken", "report": "dashboard", "args": {"window": "-1 minute"}}),),
    ).fetchone()[0]
    good = wdb.execute(
        "SELECT kpi.add_job('report', %s, schedule_cron => '* * * * * *', schedule_timezone => 'UTC')",
        (json.dumps({"name": "fine", "report": "dashboard"}),),
    ).fetchone()[0]
    wait_for(wdb, "SELECT NOT enabled FROM kpi.jobs WHERE id = %s", (bad,), timeout=30)
    err = wdb.execute("SELECT last_error FROM kpi.jobs WHERE id = %s", (bad,)).fetchone()[0]
    assert err.startswith("22023: kpi.dashboard: window must be positive"), err
    wait_for(wdb, "SELECT count(*) >= 2 FROM kpi.report_snapshots WHERE job_id = %s", (good,), timeout=30)
    assert wdb.execute("SELECT count(*) FROM kpi.report_snapshots WHERE name = 'broken'").fetchone()[0] == 0
