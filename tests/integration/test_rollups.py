"""Rollups against a real server: exactly-once under concurrent writers and
runs, late and corrected data, idempotent reruns and multi-resolution totals."""

import random
import threading
from datetime import datetime, timedelta, timezone

import psycopg

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def run_until_done(conn, rollup_ids, limit=500):
    """Runs the rollups' jobs until none reports more work."""
    for _ in range(limit):
        more = False
        for rid in rollup_ids:
            job = conn.execute("SELECT job_id FROM kpi.rollups WHERE id = %s", (rid,)).fetchone()[0]
            status, = conn.execute("SELECT (kpi.run_job(%s)).status", (job,)).fetchone()
            assert status == "success"
            nxt = conn.execute("SELECT next_run <= now() FROM kpi.jobs WHERE id = %s", (job,)).fetchone()[0]
            more = more or nxt
        if not more:
            return
    raise AssertionError("rollups did not catch up")


def mismatches(conn, resolution):
    """Complete buckets whose summary count or sum differs from kpi.metrics."""
    return conn.execute(
        """
        WITH w AS (SELECT watermark FROM kpi.rollups WHERE resolution = %(r)s AND group_by_tags = '{}'),
        raw AS (SELECT metric, kpi.bucket(%(r)s, ts) AS bucket, count(*) AS n, sum(value) AS s
                FROM kpi.metrics, w WHERE ts < w.watermark GROUP BY 1, 2),
        sm AS (SELECT metric, bucket, count AS n, sum AS s FROM kpi.summaries, w
               WHERE resolution = %(r)s AND series = '{}' AND bucket < w.watermark)
        SELECT coalesce(raw.metric, sm.metric), coalesce(raw.bucket, sm.bucket), raw.n, sm.n, raw.s, sm.s
        FROM raw FULL JOIN sm USING (metric, bucket)
        WHERE raw.n IS DISTINCT FROM sm.n OR abs(coalesce(raw.s, 0) - coalesce(sm.s, 0)) > 1e-6 * (1 + abs(coalesce(raw.s, 0)))
        """,
        {"r": resolution},
    ).fetchall()


def setup_rollups(conn):
    conn.execute("SELECT kpi.create_partitions(%s, %s)", (BASE - timedelta(days=1), BASE + timedelta(days=2)))
    m = conn.execute("SELECT kpi.add_rollup('1 minute', lag => '0')").fetchone()[0]
    h = conn.execute("SELECT kpi.add_rollup('1 hour', '1 minute', lag => '0')").fetchone()[0]
    d = conn.execute("SELECT kpi.add_rollup('1 day', '1 hour', lag => '0')").fetchone()[0]
    return m, h, d


def test_exactly_once_under_concurrent_writers_and_runs(db):
    with psycopg.connect(db, autocommit=True) as c:
        ids = setup_rollups(c)
        c.execute("SET kpi.rollup_batch_buckets = 30")
        stop = threading.Event()
        errors = []

        def writer(seed):
            rnd = random.Random(seed)
            try:
                with psycopg.connect(db, autocommit=True) as w:
                    for i in range(150):
                        ts = BASE + timedelta(seconds=rnd.uniform(0, 6 * 3600))
                        op = rnd.random()
                        if op < 0.7:
                            n = rnd.randint(1, 20)
                            w.execute(
                                "INSERT INTO kpi.metrics (metric, value, ts) "
                                "SELECT %s, random() * 100, %s + g * interval '7 seconds' FROM generate_series(1, %s) g",
                                (rnd.choice(["a", "b"]), ts, n),
                            )
                        elif op < 0.85:
                            w.execute(
                                "DELETE FROM kpi.metrics WHERE ctid IN "
                                "(SELECT ctid FROM kpi.metrics WHERE ts BETWEEN %s AND %s + interval '2 minutes' LIMIT 3)",
                                (ts, ts),
                            )
                        else:
                            # corrected data: a value changes and a row moves to another minute
                            w.execute(
                                "UPDATE kpi.metrics SET value = value + 1, ts = ts + interval '90 seconds' "
                                "WHERE (id, ts) IN (SELECT id, ts FROM kpi.metrics WHERE ts BETWEEN %s AND %s + interval '5 minutes' LIMIT 2)",
                                (ts, ts),
                            )
                        if rnd.random() < 0.2:
                            # a transaction that stays open across a run
                            with w.transaction():
                                w.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('a', 1, %s)", (ts,))
                                stop.wait(0.01)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        def runner():
            try:
                with psycopg.connect(db, autocommit=True) as r:
                    r.execute("SET kpi.rollup_batch_buckets = 30")
                    while not stop.is_set():
                        for rid in ids:
                            job = r.execute("SELECT job_id FROM kpi.rollups WHERE id = %s", (rid,)).fetchone()[0]
                            r.execute("SELECT kpi.run_job(%s)", (job,))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        writers = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
        runners = [threading.Thread(target=runner) for _ in range(2)]
        for t in writers + runners:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in runners:
            t.join()
        assert not errors, errors
        run_until_done(c, ids)
        for res in ("1 minute", "1 hour", "1 day"):
            assert mismatches(c, res) == [], res
        # multi-resolution totals equal raw totals
        raw = c.execute("SELECT count(*), sum(value) FROM kpi.metrics").fetchone()
        for res in ("1 minute", "1 hour", "1 day"):
            n, s = c.execute(
                "SELECT sum(count), sum(sum) FROM kpi.summaries WHERE resolution = %s", (res,)
            ).fetchone()
            assert n == raw[0], res
            assert abs(s - raw[1]) < 1e-6 * abs(raw[1])
        # stddev and percentiles merged up agree with the raw rows
        row = c.execute(
            """SELECT s.stddev, r.sd, kpi.approx_percentile(s.sketch, 0.95), r.p95
               FROM kpi.summaries s,
                    LATERAL (SELECT stddev_samp(value) sd, percentile_cont(0.95) WITHIN GROUP (ORDER BY value) p95
                             FROM kpi.metrics WHERE metric = s.metric AND ts >= s.bucket AND ts < s.bucket + interval '1 day') r
               WHERE s.resolution = '1 day' AND s.metric = 'a'"""
        ).fetchone()
        assert abs(row[0] - row[1]) < 1e-9 * row[1]
        assert abs(row[2] - row[3]) <= 0.02 * row[3]


def test_late_data_idempotent_rerun_and_refresh(db):
    with psycopg.connect(db, autocommit=True) as c:
        ids = setup_rollups(c)
        c.execute(
            "INSERT INTO kpi.metrics (metric, value, ts) SELECT 'cpu', g %% 50, %s + g * interval '1 second' "
            "FROM generate_series(0, 7199) g",
            (BASE,),
        )
        run_until_done(c, ids)
        before = c.execute("SELECT metric, resolution, bucket, count, sum FROM kpi.summaries ORDER BY 1, 2, 3").fetchall()
        # rerun: nothing changes
        run_until_done(c, ids)
        assert c.execute("SELECT count(*) FROM kpi_internal.metric_changes").fetchone()[0] == 0
        again = c.execute("SELECT metric, resolution, bucket, count, sum FROM kpi.summaries ORDER BY 1, 2, 3").fetchall()
        assert again == before
        # refresh of everything gives the same rows
        for rid in ids:
            c.execute("SELECT kpi.refresh(%s, %s, %s)", (rid, BASE - timedelta(days=1), BASE + timedelta(days=2)))
        assert c.execute("SELECT metric, resolution, bucket, count, sum FROM kpi.summaries ORDER BY 1, 2, 3").fetchall() == before
        # a late row, in one statement with an on-time one, lands in its minute, hour and day
        c.execute(
            "INSERT INTO kpi.metrics (metric, value, ts) VALUES ('cpu', 1000, %s), ('cpu', 5, now())",
            (BASE + timedelta(minutes=30, seconds=5),),
        )
        run_until_done(c, ids)
        for res in ("1 minute", "1 hour", "1 day"):
            assert mismatches(c, res) == [], res
        n, mx = c.execute(
            "SELECT count, max FROM kpi.summaries WHERE resolution = '1 minute' AND bucket = %s",
            (BASE + timedelta(minutes=30),),
        ).fetchone()
        assert (n, mx) == (61, 1000)
        # a deleted bucket disappears from every resolution
        c.execute("DELETE FROM kpi.metrics WHERE ts >= %s AND ts < %s", (BASE, BASE + timedelta(hours=1)))
        run_until_done(c, ids)
        assert c.execute(
            "SELECT count(*) FROM kpi.summaries WHERE bucket >= %s AND bucket < %s AND resolution < '1 day'",
            (BASE, BASE + timedelta(hours=1)),
        ).fetchone()[0] == 0
        for res in ("1 minute", "1 hour", "1 day"):
            assert mismatches(c, res) == [], res
        # TRUNCATE empties the summaries at the next run
        c.execute("TRUNCATE kpi.metrics")
        run_until_done(c, ids)
        assert c.execute("SELECT count(*) FROM kpi.summaries").fetchone()[0] == 0


def test_series_reads_summaries_and_raw_rows(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT kpi.create_partitions(now() - interval '1 day', now() + interval '1 day')")
        c.execute(
            "INSERT INTO kpi.metrics (metric, value, ts) "
            "SELECT 'rt', g, date_trunc('hour', now()) - interval '3 hours' + g * interval '10 seconds' "
            "FROM generate_series(0, 1079 + 360) g"
        )
        rid = c.execute("SELECT kpi.add_rollup('1 hour', lag => '0')").fetchone()[0]
        run_until_done(c, [rid])
        rows = c.execute(
            "SELECT bucket, count, materialized FROM kpi.series('rt', '1 hour', now() - interval '4 hours', now() + interval '1 hour')"
        ).fetchall()
        assert [r[2] for r in rows] == [True, True, True, False]
        assert [r[1] for r in rows] == [360, 360, 360, 360]
        # the same numbers as computing everything from raw rows (no rollup at 30 minutes)
        raw = c.execute(
            "SELECT sum(count) FROM kpi.series('rt', '30 minutes', now() - interval '4 hours', now() + interval '1 hour')"
        ).fetchone()[0]
        assert raw == 1440


def test_late_rows_from_every_ingestion_path_are_rolled_up(db):
    """Issue 12 item 1: a late row stored by kpi.record (or any other path) is
    re-rolled by the next run, so summaries match the raw rows again."""
    with psycopg.connect(db, autocommit=True) as c:
        ids = setup_rollups(c)
        c.execute(
            "INSERT INTO kpi.metrics (metric, value, ts) "
            "SELECT 'late', g, %s + g * interval '1 second' FROM generate_series(0, 7199) g",
            (BASE,),
        )
        run_until_done(c, ids)
        assert mismatches(c, "1 minute") == []
        late = BASE + timedelta(minutes=5, seconds=30)
        c.execute("SELECT kpi.record('late', 1000, %s)", (late,))
        c.execute(
            "SELECT kpi.record_batch(%s::jsonb)",
            ('[{"metric": "late", "value": 1001, "timestamp": "2026-01-01T00:06:30Z"}]',),
        )
        c.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('late', 1002, %s)", (late + timedelta(minutes=2),))
        with c.cursor().copy("COPY kpi.metrics (metric, value, ts) FROM STDIN") as cp:
            cp.write_row(("late", 1003, late + timedelta(minutes=3)))
        with c.transaction():
            c.execute("CREATE FUNCTION pg_temp.f() RETURNS void LANGUAGE sql AS "
                      "$$ INSERT INTO kpi.metrics (metric, value, ts) VALUES ('late', 1004, '2026-01-01 00:09:30+00') $$")
            c.execute("SELECT pg_temp.f()")
        assert len(mismatches(c, "1 minute")) == 5  # five buckets changed below the watermark
        run_until_done(c, ids)
        assert mismatches(c, "1 minute") == []
        assert mismatches(c, "1 hour") == []
        assert c.execute(
            "SELECT sum(count) FROM kpi.summaries WHERE resolution = '1 day' AND metric = 'late'"
        ).fetchone()[0] == 7205
