"""Prometheus against the real tools: promtool checks and unit-tests the
alerting rules about pg_kpi, lints kpi.prometheus_metrics()'s exposition,
and every query of the postgres_exporter queries file runs and returns the
columns the file declares."""

import pathlib
import subprocess

import psycopg
import yaml

from test_worker import wdb  # noqa: F401  (fixture)

PROM = pathlib.Path(__file__).resolve().parents[2] / "prometheus"


def promtool(*args, stdin=None):
    return subprocess.run(["promtool", *args], cwd=PROM, input=stdin, capture_output=True, text=True, timeout=60)


def test_rules_pass_promtool_check_and_unit_tests():
    r = promtool("check", "rules", "pg_kpi_rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    r = promtool("test", "rules", "pg_kpi_rules_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def seed(conn):
    conn.execute(
        "INSERT INTO kpi.metric_definitions (metric, measurement_window, warning, critical) "
        "VALUES (%s, '10 minutes', 50, 80), ('lat', '10 minutes', 50, 80)",
        ('we"ird\\na\nme <script>',),
    )
    conn.execute(
        "INSERT INTO kpi.metrics (metric, value, ts, tags) "
        "SELECT m, g, now() - interval '9 minutes' + g * interval '5 seconds', jsonb_build_object('k8s.pod', 'p\"1') "
        "FROM (VALUES (%s), ('lat')) x(m), generate_series(0, 99) g",
        ('we"ird\\na\nme <script>',),
    )
    # labels that collide once made valid, an empty one and a reserved one: the exposition stays valid
    conn.execute("INSERT INTO kpi.metrics (metric, value, tags) VALUES ('lat', 99, "
                 "'{\"k8s.pod\": \"a\", \"k8s_pod\": \"b\", \"\": \"e\", \"__name__\": \"evil\"}')")
    conn.execute("SELECT kpi.add_rollup('1 minute', lag => '0')")
    conn.execute("SELECT kpi.run_job(job_id) FROM kpi.rollups")


def test_exposition_passes_promtool_lint(wdb):
    seed(wdb)
    text = wdb.execute("SELECT kpi.prometheus_metrics()").fetchone()[0]
    r = promtool("check", "metrics", stdin=text)
    assert r.returncode == 0, r.stdout + r.stderr + text
    assert 'kpi_metric_count{metric="lat"} 101' in text
    assert 'metric="we\\"ird\\\\na\\nme <script>"' in text
    assert "ALERTS{" in text and 'k8s_pod="p\\"1"' in text


def test_exporter_queries_return_their_declared_columns(wdb):
    seed(wdb)
    queries = yaml.safe_load((PROM / "postgres_exporter_queries.yaml").read_text())
    assert set(queries) == {"pg_kpi_metric", "pg_kpi_alerts", "pg_kpi_rollup", "pg_kpi_jobs", "pg_kpi_delivery", "pg_kpi_worker"}
    for name, q in queries.items():
        declared = [next(iter(m)) for m in q["metrics"]]
        cur = wdb.execute(q["query"])
        cols = [c.name for c in cur.description]
        assert cols == declared, (name, cols, declared)
        rows = cur.fetchall()
        assert rows, name
        for row in rows:
            for col, m in zip(cols, q["metrics"]):
                usage = m[col]["usage"]
                if usage == "GAUGE":
                    assert row[cols.index(col)] is None or float(row[cols.index(col)]) == float(row[cols.index(col)]), (name, col)
                else:
                    assert isinstance(row[cols.index(col)], str), (name, col)


# ------------------------------------------- a real exporter and Prometheus

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

import pytest  # noqa: E402

from test_worker import WORKER_DSN  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_until(fn, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:  # not listening yet
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out; last: {last!r}")


@pytest.fixture
def reader_login(wdb):
    """A login with only kpi_reader, as the exporter would use."""
    wdb.execute("DROP ROLE IF EXISTS kpi_exporter_test")
    wdb.execute("CREATE ROLE kpi_exporter_test LOGIN IN ROLE kpi_reader")
    yield WORKER_DSN.replace("user=postgres", "user=kpi_exporter_test")
    wdb.execute("DROP OWNED BY kpi_exporter_test")
    wdb.execute("DROP ROLE kpi_exporter_test")


def test_prometheus_scrapes_pg_kpi_through_postgres_exporter(wdb, reader_login, tmp_path):
    """Debian's postgres_exporter with the queries file, logged in as a
    kpi_reader login; Prometheus scrapes it and evaluates the rules file; its
    HTTP API then answers for pg_kpi's series."""
    exporter = shutil.which("prometheus-postgres-exporter")
    prometheus = shutil.which("prometheus")
    assert exporter and prometheus, "installed by scripts/test.sh"
    seed(wdb)
    kv = dict(x.split("=", 1) for x in reader_login.split())
    dsn = f"postgresql://{kv['user']}@{kv['host']}:{kv['port']}/{kv['dbname']}?sslmode=disable"
    eport, pport = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [exporter, f"--web.listen-address=127.0.0.1:{eport}", f"--extend.query-path={PROM / 'postgres_exporter_queries.yaml'}",
             "--disable-default-metrics", "--disable-settings-metrics"],
            env={**os.environ, "DATA_SOURCE_NAME": dsn}, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "exporter.log", "w")))
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {PROM / 'pg_kpi_rules.yml'}\n"
            f"scrape_configs:\n  - job_name: pg_kpi\n    static_configs:\n      - targets: ['127.0.0.1:{eport}']\n")
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{pport}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w")))
        # the exporter answers with pg_kpi's series
        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{eport}/metrics", timeout=5) as r:
                text = r.read().decode()
            return text if "pg_kpi_metric_count" in text else None
        text = wait_until(scrape)
        assert 'pg_kpi_metric_count{metric="lat"' in text or 'metric="lat"' in text, text[-3000:]
        # Prometheus scraped them, and its API has them with their labels
        got = wait_until(lambda: prom_query(pport, 'pg_kpi_metric_count{metric="lat"}'))
        assert float(got[0]["value"][1]) == 101
        weird = prom_query(pport, 'pg_kpi_metric_count{metric=~"(?s)we.*"}')
        assert weird and weird[0]["metric"]["metric"] == 'we"ird\\na\nme <script>', weird
        assert prom_query(pport, "pg_kpi_alerts_open")
        lag = prom_query(pport, "pg_kpi_rollup_lag_seconds")
        assert lag and lag[0]["metric"]["resolution"] == "00:01:00"
        assert prom_query(pport, 'pg_kpi_jobs_successes_last_hour{kind="rollup"}')
        assert prom_query(pport, "pg_kpi_delivery_undelivered")
        assert float(wait_until(lambda: prom_query(pport, "pg_kpi_worker_up"))[0]["value"][1]) == 1
        # the rules file loaded and evaluates: the worker is up, so PgKpiWorkerDown
        # goes (back) to inactive once the rules see it
        def rules():
            with urllib.request.urlopen(f"http://127.0.0.1:{pport}/api/v1/rules", timeout=5) as r:
                groups = json.load(r)["data"]["groups"]
            found = {x["name"]: x for g in groups for x in g["rules"]}
            return found if found.get("PgKpiWorkerDown", {}).get("state") == "inactive" else None
        found = wait_until(rules, timeout=30)
        assert {"PgKpiWorkerDown", "PgKpiRollupLagging", "PgKpiDeliveryBacklog"} <= set(found)
        assert all(x["health"] in ("ok", "unknown") for x in found.values()), found
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
