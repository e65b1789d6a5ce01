"""Ingestion against a real server: committed data, transactions, concurrency."""
import json
import threading

import psycopg
import pytest


def count(dsn):
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT count(*) FROM kpi.metrics").fetchone()[0]


def test_failed_batch_leaves_nothing_committed(db):
    batch = [{"metric": "a", "value": i} for i in range(10)] + [{"metric": "a", "value": None}]
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(psycopg.errors.NullValueNotAllowed) as e:
            c.execute("SELECT kpi.record_batch(%s)", [json.dumps(batch)])
        assert "batch element 10" in str(e.value)
    assert count(db) == 0


def test_batch_limit_is_program_limit_exceeded(db):
    batch = [{"metric": "a", "value": 1}] * 1001
    with psycopg.connect(db, autocommit=True) as c:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            c.execute("SELECT kpi.record_batch(%s)", [json.dumps(batch)])
        assert c.execute("SELECT kpi.record_batch(%s)", [json.dumps(batch[:1000])]).fetchone()[0] == 1000
    assert count(db) == 1000


def test_concurrent_writers_all_rows_land_with_unique_ids(db):
    per_thread, threads = 200, 4
    errors = []

    def writer(k):
        try:
            with psycopg.connect(db, autocommit=True) as c:
                for i in range(per_thread):
                    c.execute("SELECT kpi.record(%s, %s)", [f"m{k}", float(i)])
                c.execute(
                    "SELECT kpi.record_batch(%s)",
                    [json.dumps([{"metric": f"m{k}", "value": i} for i in range(50)])],
                )
        except Exception as e:  # surfaced below
            errors.append(e)

    ts = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    with psycopg.connect(db) as c:
        n, distinct = c.execute("SELECT count(*), count(DISTINCT id) FROM kpi.metrics").fetchone()
    assert n == distinct == threads * (per_thread + 50)


def test_copy_is_the_fast_path_and_checked(db):
    with psycopg.connect(db) as c:
        with c.cursor().copy("COPY kpi.metrics (metric, value, ts) FROM STDIN") as cp:
            for i in range(1000):
                cp.write_row(("copy_metric", float(i), "2026-01-01 00:00:00+00"))
        c.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            with c.cursor().copy("COPY kpi.metrics (metric, value) FROM STDIN") as cp:
                cp.write_row(("copy_metric", float("nan")))
    assert count(db) == 1000


def test_record_plan_survives_schema_changes_in_the_session(db):
    """kpi.record keeps its INSERT plan for the session: it still lands rows after a
    new partition, and after DROP and CREATE EXTENSION in the same session."""
    with psycopg.connect(db, autocommit=True) as c:
        assert c.execute("SELECT kpi.record('plan', 1)").fetchone()[0] > 0
        c.execute("SELECT kpi.create_partitions(now() + interval '3 days', now() + interval '4 days')")
        c.execute("SET kpi.max_future = -1")
        assert c.execute("SELECT kpi.record('plan', 2, now() + interval '3 days 12 hours')").fetchone()[0] > 0
        c.execute("DROP EXTENSION pg_kpi CASCADE")
        c.execute("CREATE EXTENSION pg_kpi")
        assert c.execute("SELECT kpi.record('plan', 3)").fetchone()[0] > 0
        assert c.execute("SELECT kpi.record_batch('[{\"metric\": \"plan\", \"value\": 4}]')").fetchone()[0] == 1
        assert c.execute("SELECT array_agg(value ORDER BY value) FROM kpi.metrics WHERE metric = 'plan'").fetchone()[0] == [3, 4]
