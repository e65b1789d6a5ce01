"""Replication and failover: a streaming replica made with pg_basebackup on
a loopback port receives summaries and alerts, keeps its workers idle,
answers the read functions; promoted, its workers start and continue
rollups and rules with nothing lost or counted twice."""

import uuid

import psycopg
import pytest

from pgserver import Server, wait_for

DB = "kpi_repl"

READS = [
    "SELECT count(*) FROM kpi.timeseries('m0', now() - interval '1 day', now())",
    "SELECT kpi.performance_report(now() - interval '1 day', now()) IS NOT NULL",
    "SELECT length(kpi.html_report(now() - interval '6 hours', now()))",
    "SELECT length(kpi.prometheus_metrics())",
    "SELECT count(*) FROM kpi.dashboard()",
    "SELECT count(*) FROM kpi.health()",
    "SELECT count(*) FROM kpi.kpi_status()",
    "SELECT count(*) FROM kpi.metric_series",
    "SELECT count(*) FROM kpi.engine_health",
    "SELECT count(*) FROM kpi.active_alerts",
    "SELECT kpi.approx_percentile(kpi.sketch_agg(value), 0.95) FROM kpi.metrics",
    "SELECT count(*) FROM kpi.report('m0', '6 hours', '1 hour')",
]

TOTALS = """
SELECT bool_and((SELECT coalesce(sum(s.count), 0) FROM kpi.summaries s WHERE s.resolution = r.resolution AND s.series = '{}')
                = (SELECT count(*) FROM kpi.metrics m WHERE m.ts < r.watermark))
FROM kpi.rollups r"""


@pytest.fixture
def pair():
    tag = uuid.uuid4().hex[:6]
    primary = Server("repl-primary-" + tag).init(databases=DB)
    primary.start()
    standby = None
    try:
        with primary.connect() as c:
            c.execute(f"CREATE DATABASE {DB}")
        with primary.connect(DB) as c:
            c.execute("CREATE EXTENSION pg_kpi")
            c.execute("SELECT kpi.create_partitions(now() - interval '2 days', now() + interval '2 days')")
            c.execute("INSERT INTO kpi.metric_definitions (metric, warning, critical) VALUES ('m0', 500, 900)")
            c.execute("SELECT kpi.alter_job(id, schedule_interval => '1 second', next_run => now()) FROM kpi.jobs WHERE kind = 'rules'")
            c.execute("SELECT kpi.add_rollup('1 minute', lag => '0', schedule => '1 second')")
            c.execute("SELECT kpi.add_alert_rule('Hot', 'm1', 'max', '5 minutes', '>', 50)")
        standby = primary.basebackup("repl-standby-" + tag)
        standby.configure(databases=DB)
        standby.start()
        yield primary, standby
    finally:
        primary.destroy()
        if standby:
            standby.destroy()


def test_standby_reads_stays_idle_and_takes_over(pair):
    primary, standby = pair
    with primary.connect(DB) as c:
        c.execute("INSERT INTO kpi.metrics (metric, value, ts) "
                  "SELECT 'm' || (g % 2), g % 1000, now() - interval '1 day' + g * interval '1 second' FROM generate_series(0, 86000) g")
        c.execute("INSERT INTO kpi.metrics (metric, value) VALUES ('m1', 99)")
        wait_for(c, "SELECT watermark >= date_trunc('minute', now()) - interval '1 minute' FROM kpi.rollups", timeout=120)
        wait_for(c, "SELECT count(*) = 1 FROM kpi.alerts WHERE source = 'rule' AND state = 'firing'", timeout=60)
        lsn = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        primary_summaries = c.execute("SELECT count(*), sum(count) FROM kpi.summaries").fetchone()
    with standby.connect(DB) as s:
        wait_for(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=(lsn,), timeout=60)
        assert s.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        # it has what the primary wrote
        assert s.execute("SELECT count(*), sum(count) FROM kpi.summaries").fetchone() == primary_summaries
        assert s.execute("SELECT count(*) FROM kpi.alerts WHERE state = 'firing'").fetchone()[0] >= 1
        # its workers stay idle: no job worker, no runs of its own
        assert standby.worker_pid(DB) is None
        state = s.execute("SELECT state FROM kpi.worker_status() WHERE database = %s", (DB,)).fetchone()
        assert state is None or state[0] != "running", state
        # every read function answers on the replica
        for sql in READS:
            s.execute(sql).fetchall()
    # failover: the primary goes away, the standby is promoted
    primary.stop("immediate")
    standby.promote()
    with standby.connect(DB) as s:
        wait_for(s, "SELECT NOT pg_is_in_recovery()", timeout=30)
        promoted_at = s.execute("SELECT now()").fetchone()[0]
        # its worker starts and carries on: new rows roll up exactly once, rules evaluate
        wait_for(s, "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_kpi worker' AND datname = current_database()",
                 timeout=60)
        s.execute("INSERT INTO kpi.metrics (metric, value, ts) SELECT 'm0', 1, now() - interval '30 seconds' FROM generate_series(1, 500)")
        s.execute("INSERT INTO kpi.metrics (metric, value) VALUES ('m1', 10)")
        wait_for(s, "SELECT bool_and(r.watermark >= date_trunc('minute', now())) "
                    "AND NOT EXISTS (SELECT FROM kpi_internal.rollup_invalidations) "
                    "AND NOT EXISTS (SELECT FROM kpi_internal.metric_changes) FROM kpi.rollups r", timeout=150)
        assert s.execute(TOTALS).fetchone()[0], s.execute(
            "SELECT r.watermark, (SELECT sum(count) FROM kpi.summaries), (SELECT count(*) FROM kpi.metrics m WHERE m.ts < r.watermark), "
            "(SELECT count(*) FROM kpi.metrics) FROM kpi.rollups r").fetchall()
        dup = s.execute("SELECT metric, resolution, series, bucket, count(*) FROM kpi.summaries GROUP BY 1, 2, 3, 4 HAVING count(*) > 1").fetchall()
        assert dup == []
        # rule evaluation runs on the new primary
        wait_for(s, "SELECT count(*) > 0 FROM kpi.job_runs jr JOIN kpi.jobs j ON j.id = jr.job_id "
                    "WHERE j.kind = 'rules' AND jr.status = 'success' AND jr.started_at > %s",
                 params=(promoted_at,), timeout=60)
        # the rule alert is still one, not raised again by the new primary
        assert s.execute("SELECT count(*) FROM kpi.alerts WHERE source = 'rule'").fetchone()[0] == 1
        dup = s.execute("SELECT alert_id, event, count(*) FROM kpi.notifications GROUP BY 1, 2 HAVING count(*) > 1").fetchall()
        assert dup == []
