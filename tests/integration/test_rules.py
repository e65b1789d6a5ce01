"""Alert rules against a real server: the worker evaluates them on its own,
an alert pending across a restart of the worker keeps its start, and two
evaluations at once produce one alert, not two."""

import threading
import time

import psycopg

from conftest import DSN
from test_worker import WORKER_DSN, wait_for, wdb  # noqa: F401  (fixture)


def diagnostics(conn):
    """What the database holds when an expected alert is not there."""
    return {
        "alerts": conn.execute("SELECT id, state, started_at, fired_at, last_seen_at, resolved_at, fingerprint, labels FROM kpi.alerts").fetchall(),
        "rules": conn.execute("SELECT name, last_error, last_evaluated_at FROM kpi.alert_rules").fetchall(),
        "runs": conn.execute(
            "SELECT j.kind, r.status, r.started_at, r.finished_at, r.error FROM kpi.job_runs r "
            "JOIN kpi.jobs j ON j.id = r.job_id ORDER BY r.id"
        ).fetchall(),
        "now": conn.execute("SELECT now()").fetchone()[0],
        "rows": conn.execute("SELECT tableoid::regclass::text, metric, ts, value FROM kpi.metrics").fetchall(),
    }


def stop_rules_job(conn):
    """Disables the rules job: the UPDATE waits for a run in progress, and a run the
    worker had already picked is skipped; wait for that one to be recorded."""
    conn.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    wait_for(
        conn,
        "SELECT NOT EXISTS (SELECT 1 FROM kpi.job_runs r JOIN kpi.jobs j ON j.id = r.job_id "
        "WHERE j.kind = 'rules' AND r.status = 'running')",
    )


def test_worker_raises_and_resolves_rule_alerts_on_its_own(wdb):
    wdb.execute("SELECT kpi.alter_job(id, schedule_interval => '1 second', next_run => now()) FROM kpi.jobs WHERE kind = 'rules'")
    wdb.execute(
        "SELECT kpi.add_alert_rule('Busy', 'cpu', 'avg', '1 minute', '>', 80, \"for\" => '2 seconds', group_by => '{host}')"
    )
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('cpu', 95, now(), '{\"host\": \"a\"}')")
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.alerts WHERE source = 'rule' AND state = 'pending'", timeout=20)
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.alerts WHERE source = 'rule' AND state = 'firing'", timeout=20)
    row = wdb.execute(
        "SELECT labels, severity::text, fired_at - started_at >= interval '2 seconds' FROM kpi.alerts WHERE source = 'rule'"
    ).fetchone()
    assert row == ({"host": "a"}, "warning", True)
    # the value falls: resolved by the worker
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) SELECT 'cpu', 0, now(), '{\"host\": \"a\"}' FROM generate_series(1, 100)")
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.alerts WHERE source = 'rule' AND state = 'resolved'", timeout=20)


def test_pending_start_survives_a_worker_restart(wdb):
    stop_rules_job(wdb)
    wdb.execute("SELECT kpi.add_alert_rule('Slow', 'lat', 'max', '10 minutes', '>', 100, \"for\" => '1 minute')")
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('lat', 500, now() - interval '2 minutes')")
    t0 = wdb.execute("SELECT now() - interval '90 seconds'").fetchone()[0]
    wdb.execute("SELECT count(*) FROM kpi.evaluate_alerts(%s)", (t0,))
    row = wdb.execute("SELECT started_at FROM kpi.alerts WHERE source = 'rule' AND state = 'pending'").fetchone()
    assert row is not None, diagnostics(wdb)
    started = row[0]
    assert started == t0
    # the worker dies in the middle of the for period and comes back
    pid = wdb.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = current_database()"
    ).fetchone()
    if pid:
        wdb.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
    wdb.execute("UPDATE kpi.jobs SET enabled = true, next_run = now() WHERE kind = 'rules'")
    # 90 s after the start: firing, from the start that was persisted
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.alerts WHERE source = 'rule' AND state = 'firing'", timeout=30)
    assert wdb.execute("SELECT started_at FROM kpi.alerts WHERE source = 'rule'").fetchone()[0] == started


def test_concurrent_evaluations_make_one_alert(wdb):
    stop_rules_job(wdb)
    wdb.execute("SELECT kpi.add_alert_rule('Errors', 'err', 'sum', '1 minute', '>', 1)")
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('err', 5, now() - interval '5 seconds')")
    at = wdb.execute("SELECT now()").fetchone()[0]
    errors = []

    def evaluate():
        try:
            with psycopg.connect(WORKER_DSN, autocommit=True) as c:
                c.execute("SELECT count(*) FROM kpi.evaluate_alerts(%s)", (at,))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert wdb.execute("SELECT count(*) FROM kpi.alerts WHERE source = 'rule'").fetchone()[0] == 1, diagnostics(wdb)


def test_rules_job_follows_alert_interval(wdb):
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET kpi.alert_interval = '3s'")
        admin.execute("SELECT pg_reload_conf()")
    try:
        # at its next run the built-in job reschedules itself from the setting
        wdb.execute("UPDATE kpi.jobs SET next_run = now() WHERE kind = 'rules'")
        wait_for(wdb, "SELECT schedule_interval = interval '3 seconds' FROM kpi.jobs WHERE kind = 'rules'")
        row = wdb.execute(
            "SELECT r.status FROM kpi.job_runs r JOIN kpi.jobs j ON j.id = r.job_id "
            "WHERE j.kind = 'rules' ORDER BY r.id DESC LIMIT 1"
        ).fetchone()
        assert row == ("success",)
        # kpi.alter_job overrides it until the setting changes again
        wdb.execute("SELECT kpi.alter_job(id, schedule_interval => '1 second') FROM kpi.jobs WHERE kind = 'rules'")
        wait_for(wdb, "SELECT count(*) >= 3 FROM kpi.job_runs r JOIN kpi.jobs j ON j.id = r.job_id WHERE j.kind = 'rules'")
        assert wdb.execute("SELECT schedule_interval FROM kpi.jobs WHERE kind = 'rules'").fetchone()[0].total_seconds() == 1
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM RESET kpi.alert_interval")
            admin.execute("SELECT pg_reload_conf()")
