"""Soak under load (ONLY=soak bash scripts/bench.sh, and tests/integration/test_soak.py
with a short run): pgbench clients insert metrics with single-row kpi.record, 100-row
INSERT statements and 1,000-row COPY, while the database's pg_kpi worker rolls the
rows up (1-minute and 1-hour rollups), evaluates alert rules (every second) and
delivers notifications to a local webhook, and the alert trigger raises alerts on
threshold breaches.

Two databases get the same definitions, rollups, rules and receiver: in one the
jobs run (the rollups every 10 seconds, the rules job on its default 15 seconds,
delivery as alerts come), in the other every job is disabled (its worker idle), so
that ingestion pays the same triggers and change log in both. The run alternates
between them: paused, running, paused, running, each a quarter of the time, so that
the tables' growth weighs on both alike. Every second of the running phases it
samples the rollup lag (seconds since the oldest complete 1-minute bucket that is
not materialized yet became complete; 0 when none waits), the rule-evaluation lag (seconds since the rules job last
finished a run) and the delivery backlog. At the end it waits for the jobs to catch
up and checks exactly-once: summary totals equal raw row counts, no summary bucket,
alert or notification twice, every notification delivered.

Usage: python soak.py DSN [seconds (default 120)] [clients (default 4)]
DSN names a database (created fresh by the run, and beside it DSN's name with
"_paused") that the server's pg_kpi worker serves (kpi.database); the server must accept server-side COPY from /tmp for the
DSN's user (a superuser)."""

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
METRICS = 20

SETUP = """
SELECT kpi.create_partitions(now() - interval '1 day', now() + interval '1 day');
-- thresholds are upper band edges: above good is a breach (warning), above warning critical
INSERT INTO kpi.metric_definitions (metric, good, warning, critical)
SELECT 'soak_m' || i, {good}, {warning}, 99.99 FROM generate_series(0, {metrics} - 1) i;
SELECT kpi.add_rollup('1 minute', lag => '0', schedule => '10 seconds');
SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0');
SELECT kpi.add_alert_rule('soak p95 high ' || i, 'soak_m' || i, 'p95', '1 minute', '>', 90, 99, group_by => '{{host}}')
FROM generate_series(0, 4) i;
SELECT kpi.add_receiver('soak sink', 'webhook', '{url}', repeat_interval => '1 hour');
"""

SCRIPTS = {
    "record": ("\\set m random(0, {last})\n\\set h random(0, 4)\n"
               "SELECT kpi.record('soak_m' || :m, random() * 100, now(), jsonb_build_object('host', 'h' || :h));\n",
               20, 1),
    "insert100": ("INSERT INTO kpi.metrics (metric, value, tags)\n"
                  "SELECT 'soak_m' || (g % {metrics}), random() * 100, jsonb_build_object('host', 'h' || (g % 5))\n"
                  "FROM generate_series(1, 100) g;\n", 4, 100),
    "copy1000": ("COPY kpi.metrics (metric, value, tags) FROM '{csv}' WITH (FORMAT csv);\n", 1, 1000),
}


class Sink(http.server.BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Sink.lock:
            Sink.received += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def admin_dsn(dsn):
    return re.sub(r"dbname=\S+", "dbname=postgres", dsn)


def pgbench_args(dsn):
    kv = dict(p.split("=", 1) for p in dsn.split())
    return ["-h", kv.get("host", "localhost"), "-p", kv.get("port", "5432"), "-U", kv.get("user", "postgres"),
            kv["dbname"]]


def run_pgbench(dsn, files, seconds, clients):
    cmd = [PGBENCH, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)]
    for name, path in files.items():
        cmd += ["-f", f"{path}@{SCRIPTS[name][1]}"]
    p = subprocess.run(cmd + pgbench_args(dsn), capture_output=True, text=True)
    out = p.stdout + p.stderr
    rows = 0.0
    per = {}
    # "SQL script 1: /tmp/.../record.sql" ... " - 12345 transactions (80.1% of total, tps = 1234.567)"
    for m in re.finditer(r"SQL script \d+: (\S+)\n(?:.*\n)*? - (\d+) transactions \([\d.]+% of total, tps = ([\d.]+)\)", out):
        name = os.path.basename(m.group(1)).removesuffix(".sql")
        tps = float(m.group(3))
        per[name] = tps
        rows += tps * SCRIPTS[name][2]
    failed = re.search(r"number of failed transactions: (\d+)", out)
    errors = (p.returncode != 0) or "aborted" in out or (failed is not None and int(failed.group(1)) > 0)
    return {"rows_per_s": rows, "tps": per, "errors": errors, "output": out if errors or not per else ""}


def sample(c):
    return c.execute("""
        SELECT (SELECT max(greatest(0, extract(epoch FROM now() - r.watermark - r.resolution - r.lag)))
                FROM kpi.rollups r WHERE r.resolution = '1 minute'),
               (SELECT extract(epoch FROM now() - max(jr.finished_at)) FROM kpi.job_runs jr
                JOIN kpi.jobs j ON j.id = jr.job_id WHERE j.kind = 'rules' AND jr.status = 'success'),
               (SELECT coalesce(sum(d.pending), 0) FROM kpi.delivery_status d)""").fetchone()


def set_jobs(c, enabled):
    c.execute("UPDATE kpi.jobs SET enabled = %s, next_run = now()", (enabled,))


def caught_up(c, timeout=300):
    """Seconds until every row written so far is in a complete, materialized
    1-minute bucket (the minute the load ended included) and nothing waits."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    end = c.execute("SELECT date_trunc('minute', now()) + interval '1 minute'").fetchone()[0]
    while time.monotonic() < deadline:
        done = c.execute("""
            SELECT bool_and(kpi_internal.rollup_behind(r.resolution, r.lag, r.watermark) <= 0)
                   AND bool_and(r.watermark >= %s) FILTER (WHERE r.resolution = '1 minute')
                   AND NOT EXISTS (SELECT FROM kpi_internal.rollup_invalidations)
                   AND NOT EXISTS (SELECT FROM kpi_internal.metric_changes)
                   AND NOT EXISTS (SELECT FROM kpi.deliveries WHERE status = 'pending')
            FROM kpi.rollups r""", (end,)).fetchone()[0]
        if done:
            return time.monotonic() - t0
        time.sleep(0.5)
    state = c.execute("""
        SELECT jsonb_build_object(
            'now', now(), 'until', %s::timestamptz,
            'rollups', (SELECT jsonb_agg(jsonb_build_object('resolution', r.resolution, 'watermark', r.watermark)) FROM kpi.rollups r),
            'invalidations', (SELECT count(*) FROM kpi_internal.rollup_invalidations),
            'changes', (SELECT count(*) FROM kpi_internal.metric_changes),
            'pending_deliveries', (SELECT count(*) FROM kpi.deliveries WHERE status = 'pending'),
            'jobs', (SELECT jsonb_agg(jsonb_build_object('kind', s.kind, 'state', s.state, 'next_run', s.next_run,
                                                         'last_error', s.last_error)) FROM kpi.job_status s))""",
                      (end,)).fetchone()[0]
    raise AssertionError(f"the jobs did not catch up within {timeout}s: {state}")


CHECKS = {
    "summary totals equal raw counts (1-minute rollup, complete buckets)": """
        SELECT (SELECT coalesce(sum(s.count), 0) FROM kpi.summaries s WHERE s.resolution = '1 minute')
             = (SELECT count(*) FROM kpi.metrics m, kpi.rollups r WHERE r.resolution = '1 minute' AND m.ts < r.watermark)""",
    "1-hour totals equal the 1-minute summaries below its watermark": """
        SELECT (SELECT coalesce(sum(s.count), 0) FROM kpi.summaries s WHERE s.resolution = '1 hour')
             = (SELECT coalesce(sum(s.count), 0) FROM kpi.summaries s, kpi.rollups r
                WHERE s.resolution = '1 minute' AND r.resolution = '1 hour' AND s.bucket < r.watermark)""",
    "no summary bucket twice": """
        SELECT NOT EXISTS (SELECT FROM kpi.summaries GROUP BY metric, resolution, series, bucket HAVING count(*) > 1)""",
    "no open alert twice": """
        SELECT NOT EXISTS (SELECT FROM kpi.alerts WHERE state <> 'resolved'
                           GROUP BY fingerprint HAVING count(*) > 1)""",
    "no notification twice (per alert, event and severity)": """
        SELECT NOT EXISTS (SELECT FROM kpi.notifications GROUP BY alert_id, event, payload->>'severity'
                           HAVING count(*) > 1)""",
    "every notification delivered once": """
        SELECT NOT EXISTS (SELECT FROM kpi.deliveries WHERE status <> 'delivered')""",
}


def run(dsn, seconds=120, clients=4, log=print, breach_all=False):
    """breach_all: thresholds that nearly every value breaches (good = 1, warning = 50), so
    that every statement raises or escalates alerts of overlapping series (the alert trigger's
    concurrency under stress) instead of 0.5 % of the values."""
    good, warning = (1, 50) if breach_all else (99.5, 99.9)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{sink.server_address[1]}/hook"
    db = re.search(r"dbname=(\S+)", dsn).group(1)
    paused_dsn = dsn.replace(f"dbname={db}", f"dbname={db}_paused")
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as a:
        for name in (db, db + "_paused"):
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            a.execute(f'CREATE DATABASE "{name}"')
    work = tempfile.mkdtemp(prefix="pg_kpi_soak_")
    os.chmod(work, 0o755)
    csv = os.path.join(work, "copy.csv")
    with open(csv, "w") as f:
        for i in range(1000):
            f.write(f'soak_m{i % METRICS},{(i * 7919) % 10000 / 100.0},"{{""host"": ""h{i % 5}""}}"\n')
    os.chmod(csv, 0o644)
    files = {}
    for name, (text, _, _) in SCRIPTS.items():
        path = os.path.join(work, name + ".sql")
        with open(path, "w") as f:
            f.write(text.format(last=METRICS - 1, metrics=METRICS, csv=csv))
        files[name] = path
    phases = {"paused": [], "running": []}
    lags = {"rollup": 0.0, "rules": 0.0, "backlog": 0}
    with psycopg.connect(paused_dsn, autocommit=True) as p:
        p.execute("CREATE EXTENSION pg_kpi")
        p.execute(SETUP.format(metrics=METRICS, url=url, good=good, warning=warning))
        set_jobs(p, False)
        # nothing delivered from there either (the delivery worker is not a job)
        p.execute("UPDATE kpi.alert_receivers SET enabled = false")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi")
        c.execute(SETUP.format(metrics=METRICS, url=url, good=good, warning=warning))
        deadlocks0 = c.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]
        quarter = max(1, seconds // 4)
        for phase in ("paused", "running", "paused", "running"):
            stop = threading.Event()

            def watch():
                with psycopg.connect(dsn, autocommit=True) as w:
                    while not stop.wait(1.0):
                        r, q, b = sample(w)
                        lags["rollup"] = max(lags["rollup"], float(r or 0))
                        lags["rules"] = max(lags["rules"], float(q or 0))
                        lags["backlog"] = max(lags["backlog"], int(b or 0))

            t = threading.Thread(target=watch, daemon=True)
            if phase == "running":
                t.start()
            res = run_pgbench(dsn if phase == "running" else paused_dsn, files, quarter, clients)
            stop.set()
            if phase == "running":
                t.join()
            if res["errors"] or not res["tps"]:
                raise AssertionError("pgbench failed:\n" + res["output"])
            phases[phase].append(res["rows_per_s"])
            log(f"  {phase:8} {res['rows_per_s']:10.0f} rows/s  "
                + ", ".join(f"{k} {v:.0f} tps" for k, v in res["tps"].items()))
        catch_up = caught_up(c)
        results = {name: c.execute(sql).fetchone()[0] for name, sql in CHECKS.items()}
        stats = c.execute("""
            SELECT (SELECT count(*) FROM kpi.metrics), (SELECT count(*) FROM kpi.summaries),
                   (SELECT count(*) FROM kpi.alerts), (SELECT count(*) FROM kpi.notifications),
                   (SELECT count(*) FROM kpi.job_runs WHERE status = 'failed'),
                   (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database())""").fetchone()
    sink.shutdown()
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as a:
        a.execute(f'DROP DATABASE IF EXISTS "{db}_paused" WITH (FORCE)')
    paused = sum(phases["paused"]) / len(phases["paused"])
    running = sum(phases["running"]) / len(phases["running"])
    return {
        "paused_rows_per_s": paused, "running_rows_per_s": running, "ratio": running / paused,
        "max_rollup_lag_s": lags["rollup"], "max_rules_lag_s": lags["rules"], "max_delivery_backlog": lags["backlog"],
        "catch_up_s": catch_up, "rows": stats[0], "summaries": stats[1], "alerts": stats[2],
        "notifications": stats[3], "webhook_posts": Sink.received, "failed_job_runs": stats[4],
        "deadlocks": stats[5] - deadlocks0, "checks": results,
    }


def main():
    dsn = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 120
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    print(f"soak: {clients} pgbench clients for {seconds} s (record@20, 100-row INSERT@4, 1,000-row COPY@1), "
          f"alternating between a database with its jobs paused and one with them running")
    r = run(dsn, seconds, clients)
    print(f"ingest, jobs paused : {r['paused_rows_per_s']:10.0f} rows/s")
    print(f"ingest, jobs running: {r['running_rows_per_s']:10.0f} rows/s   ratio {r['ratio']:.2f} (target >= 0.80)")
    print(f"max rollup lag {r['max_rollup_lag_s']:.0f} s, max rule-evaluation lag {r['max_rules_lag_s']:.1f} s, "
          f"max delivery backlog {r['max_delivery_backlog']}; every row summarized "
          f"{r['catch_up_s']:.1f} s after the load (waiting for its last minute to end)")
    print(f"{r['rows']} rows, {r['summaries']} summaries, {r['alerts']} alerts, {r['notifications']} notifications, "
          f"{r['webhook_posts']} webhook posts, {r['failed_job_runs']} failed job runs, {r['deadlocks']} deadlocks")
    for name, ok in r["checks"].items():
        print(f"  {'ok ' if ok else 'FAIL'} {name}")
    print(json.dumps({k: v for k, v in r.items() if k != "checks"}))
    if not all(r["checks"].values()) or r["deadlocks"] or r["failed_job_runs"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
