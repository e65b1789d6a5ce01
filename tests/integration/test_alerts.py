"""Alerts raised by the kpi.metrics trigger, against committed data:
concurrency, NOTIFY delivery, privileges, and the failure path."""

import json
import threading

import psycopg
import pytest

DEFS = """
INSERT INTO kpi.metric_definitions (metric, category, unit, direction, optimal, good, warning, critical, alert_cooldown)
VALUES ('api_response_time', 'response_time', 'ms', 'lower_is_better', 100, 200, 500, 1000, '15 min')
"""


def insert(conn, value, ts, tags='{"host": "a"}'):
    conn.execute(
        "INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('api_response_time', %s, %s, %s)",
        (value, ts, tags),
    )


def open_alerts(conn):
    return conn.execute(
        "SELECT id, severity::text, occurrences FROM kpi.alerts WHERE state <> 'resolved' ORDER BY id"
    ).fetchall()


def test_two_sessions_racing_open_one_alert(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(DEFS)
    a = psycopg.connect(db)
    b = psycopg.connect(db)
    warnings = []
    for conn in (a, b):
        conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
    try:
        # A opens the alert but has not committed; B's insert of the same
        # fingerprint must wait for A and then count into A's alert.
        insert(a, 700, "2026-01-01 00:00")
        done = threading.Event()

        def b_insert():
            insert(b, 1500, "2026-01-01 00:01")
            b.commit()
            done.set()

        t = threading.Thread(target=b_insert)
        t.start()
        assert not done.wait(0.5), "B should wait for A's uncommitted alert"
        a.commit()
        t.join(10)
        assert done.is_set()
    finally:
        a.close()
        b.close()
    with psycopg.connect(db) as c:
        # one open alert, both breaches counted, escalated by B's worse value
        assert open_alerts(c) == [(1, "emergency", 2)]
        assert c.execute("SELECT count(*) FROM kpi.alerts").fetchone()[0] == 1
    assert warnings == []


def test_many_concurrent_writers_keep_one_open_alert_per_fingerprint(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(DEFS)
    n_threads, n_rows = 4, 40
    errors, warnings = [], []

    def writer(k):
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
                for i in range(n_rows):
                    host = "a" if i % 2 == 0 else "b"
                    # all within one cooldown window of each other
                    insert(conn, 600 + k, f"2026-01-01 00:{i % 10:02d}", f'{{"host": "{host}"}}')
        except Exception as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert warnings == []
    with psycopg.connect(db) as c:
        rows = c.execute(
            "SELECT labels->>'host', count(*), sum(occurrences), bool_and(state = 'firing') "
            "FROM kpi.alerts GROUP BY 1 ORDER BY 1"
        ).fetchall()
        half = n_threads * n_rows // 2
        assert rows == [("a", 1, half, True), ("b", 1, half, True)]


def test_notify_on_open_escalation_and_resolve_only(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(DEFS)
    listener = psycopg.connect(db, autocommit=True)
    listener.execute("LISTEN kpi_alerts")
    try:
        with psycopg.connect(db, autocommit=True) as w:
            insert(w, 300, "2026-01-01 00:00")  # opens (warning)
            insert(w, 250, "2026-01-01 00:05")  # same severity: no notification
            insert(w, 1200, "2026-01-01 00:06")  # escalates to emergency
            with w.transaction(force_rollback=True):
                insert(w, 300, "2026-01-01 00:00", '{"host": "rolled back"}')  # never delivered
            alert_id = w.execute("SELECT id FROM kpi.alerts").fetchone()[0]
            w.execute("SELECT kpi.resolve(%s)", (alert_id,))
            w.execute("SELECT kpi.resolve(%s)", (alert_id,))  # already resolved: silent
        got = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=10)]
    finally:
        listener.close()
    assert [(g["severity"], g["state"]) for g in got] == [
        ("warning", "firing"),
        ("emergency", "firing"),
        ("emergency", "resolved"),
    ]
    first = got[0]
    assert set(first) == {"id", "fingerprint", "metric", "severity", "value", "threshold", "state",
                          "source", "rule_id", "rule", "series", "labels", "message", "started_at", "resolved_at"}
    assert (first["rule"], first["series"]) == (None, None)  # set for rule alerts only
    # the outbox holds the same notifications, the rolled-back one excluded
    with psycopg.connect(db, autocommit=True) as c:
        assert c.execute("SELECT array_agg(event ORDER BY id) FROM kpi.notifications").fetchone()[0] == [
            "firing", "firing", "resolved"]
    assert first["metric"] == "api_response_time"
    assert (first["value"], first["threshold"]) == (300, 200)
    assert got[1]["value"] == 1200 and got[1]["threshold"] == 1000
    assert len({g["fingerprint"] for g in got}) == 1


def test_copy_raises_alerts_in_one_pass(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(DEFS)
        with c.cursor().copy("COPY kpi.metrics (metric, value, ts, tags) FROM STDIN") as cp:
            for i in range(5000):
                # a breach every 10th row, 1 s apart: one incident per host
                value = 700 if i % 10 == 0 else 120
                cp.write_row(("api_response_time", value, "2026-01-01 00:00:00+00", f'{{"host": "h{i % 2}"}}'))
        rows = c.execute(
            "SELECT labels->>'host', severity::text, occurrences, state FROM kpi.alerts ORDER BY 1"
        ).fetchall()
    assert rows == [("h0", "critical", 500, "firing")]


def test_role_with_insert_only_still_raises_alerts(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(DEFS)
        c.execute("DROP ROLE IF EXISTS kpi_writer_it")
        c.execute("CREATE ROLE kpi_writer_it")
        c.execute("GRANT USAGE ON SCHEMA kpi TO kpi_writer_it")
        c.execute("GRANT INSERT ON kpi.metrics TO kpi_writer_it")
        c.execute("GRANT USAGE ON SEQUENCE kpi.metrics_id_seq TO kpi_writer_it")
        try:
            c.execute("SET ROLE kpi_writer_it")
            insert(c, 800, "2026-01-01 00:00")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT count(*) FROM kpi.alerts")
            c.execute("RESET ROLE")
            assert open_alerts(c) == [(1, "critical", 1)]
        finally:
            c.execute("RESET ROLE")
            c.execute("DROP OWNED BY kpi_writer_it")
            c.execute("DROP ROLE kpi_writer_it")


def test_failing_alert_side_commits_rows_with_a_warning(db):
    warnings = []
    with psycopg.connect(db, autocommit=True) as c:
        c.add_notice_handler(lambda d: warnings.append((d.severity_nonlocalized, d.message_primary)))
        c.execute(DEFS)
        c.execute("ALTER TABLE kpi.metric_definitions DISABLE TRIGGER metric_definitions_check")
        c.execute("UPDATE kpi.metric_definitions SET critical = 1 WHERE metric = 'api_response_time'")
        c.execute("ALTER TABLE kpi.metric_definitions ENABLE TRIGGER metric_definitions_check")
        insert(c, 900, "2026-01-01 00:00")
    with psycopg.connect(db) as c:
        assert c.execute("SELECT count(*) FROM kpi.metrics").fetchone()[0] == 1
        assert c.execute("SELECT count(*) FROM kpi.alerts").fetchone()[0] == 0
    assert len(warnings) == 1
    sev, msg = warnings[0]
    assert sev == "WARNING"
    assert "no alerts were raised" in msg and "out of order" in msg
