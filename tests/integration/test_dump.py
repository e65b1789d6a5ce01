"""pg_dump / pg_restore round trip of a database using pg_kpi: raw rows in day
partitions and the default partition, summaries, rollups, jobs and retention
policies come back once, and the restored database keeps working (new jobs get
fresh ids, rollup runs succeed and still match the raw rows)."""

import os
import subprocess
import uuid
from datetime import timedelta

import psycopg

from conftest import DSN
from test_rollups import BASE, mismatches, run_until_done

PG_BIN = os.environ.get("KPI_PG_BIN", "/usr/lib/postgresql/15/bin")


def snapshot(conn):
    q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
    return {
        "metrics": q("SELECT tableoid::regclass::text, count(*), sum(value) FROM kpi.metrics GROUP BY 1 ORDER BY 1"),
        "summaries": q("SELECT resolution, count(*), sum(count), sum(sum) FROM kpi.summaries GROUP BY 1 ORDER BY 1"),
        "rollups": q("SELECT id, resolution, source_rollup, metrics, group_by_tags, watermark, job_id FROM kpi.rollups ORDER BY id"),
        "jobs": q("SELECT id, kind, config, schedule_interval, enabled, builtin FROM kpi.jobs ORDER BY id"),
        "retention": q("SELECT id, target, keep, builtin FROM kpi.retention_policies ORDER BY id"),
        "definitions": q("SELECT metric, warning FROM kpi.metric_definitions ORDER BY 1"),
    }


def test_dump_and_restore(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT kpi.create_partitions(%s, %s)", (BASE, BASE + timedelta(days=2)))
        c.execute(
            """INSERT INTO kpi.metrics (metric, value, ts, tags)
               SELECT 'm' || mod(g, 3), mod(g, 97), %s + g * interval '37 seconds', jsonb_build_object('host', 'h' || mod(g, 2))
               FROM generate_series(0, 4000) g""",
            (BASE,),
        )
        # rows outside the partitions land in kpi.metrics_default
        c.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('m0', 5, %s)", (BASE + timedelta(days=10),))
        c.execute("INSERT INTO kpi.metric_definitions (metric, warning) VALUES ('m1', 90)")
        minute = c.execute("SELECT kpi.add_rollup('1 minute', lag => '0')").fetchone()[0]
        hour = c.execute("SELECT kpi.add_rollup('1 hour', '1 minute', lag => '0')").fetchone()[0]
        by_host = c.execute("SELECT kpi.add_rollup('1 hour', group_by_tags => '{host}', lag => '0')").fetchone()[0]
        c.execute("SELECT kpi.add_retention('alerts', '30 days')")
        c.execute("""SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', '1 hour')""")
        run_until_done(c, [minute, hour, by_host])
        before = snapshot(c)
        assert not mismatches(c, "1 minute")
        builtin_jobs = c.execute("SELECT count(*) FROM kpi.jobs WHERE builtin").fetchone()[0]

    dump = tmp_path / "kpi.dump"
    subprocess.run([f"{PG_BIN}/pg_dump", "-Fc", "-f", str(dump), "-d", db], check=True)
    name = "kpi_it_" + uuid.uuid4().hex[:10]
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    restored = DSN.replace("dbname=postgres", f"dbname={name}")
    try:
        r = subprocess.run(
            [f"{PG_BIN}/pg_restore", "--exit-on-error", "-d", restored, str(dump)],
            capture_output=True, text=True,
        )
        assert r.returncode == 0, r.stderr
        with psycopg.connect(restored, autocommit=True) as c:
            assert snapshot(c) == before
            # identities continue after the restored rows
            job = c.execute("""SELECT kpi.add_job('sql', '{"command": "SELECT 2"}', '1 hour')""").fetchone()[0]
            assert job > max(j[0] for j in before["jobs"])
            day = c.execute("SELECT kpi.add_rollup('1 day', '1 hour', lag => '0')").fetchone()[0]
            assert day > max(x[0] for x in before["rollups"])
            pol = c.execute("SELECT kpi.add_retention('metrics', '400 days')").fetchone()[0]
            assert pol > max(p[0] for p in before["retention"])
            # late data after the restore is rematerialized; totals still match the raw rows
            c.execute("INSERT INTO kpi.metrics (metric, value, ts) VALUES ('m2', 1000, %s)", (BASE + timedelta(minutes=5),))
            run_until_done(c, [minute, hour, by_host, day])
            assert not mismatches(c, "1 minute")
            assert not mismatches(c, "1 hour")
            assert not mismatches(c, "1 day")
            # the built-in jobs once each: made by CREATE EXTENSION, not dumped
            assert c.execute("SELECT count(*) FROM kpi.jobs WHERE builtin").fetchone()[0] == builtin_jobs
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
