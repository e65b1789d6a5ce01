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
    conn.execute("SELECT kpi.add_rollup('1 minute', lag => '0')")
    conn.execute("SELECT kpi.run_job(job_id) FROM kpi.rollups")


def test_exposition_passes_promtool_lint(wdb):
    seed(wdb)
    text = wdb.execute("SELECT kpi.prometheus_metrics()").fetchone()[0]
    r = promtool("check", "metrics", stdin=text)
    assert r.returncode == 0, r.stdout + r.stderr + text
    assert 'kpi_metric_count{metric="lat"} 100' in text
    assert 'metric="we\\"ird\\\\na\\nme <script>"' in text
    assert "ALERTS{" in text and 'k8s_pod="p\\"1"' in text


def test_exporter_queries_return_their_declared_columns(wdb):
    seed(wdb)
    queries = yaml.safe_load((PROM / "postgres_exporter_queries.yaml").read_text())
    assert set(queries) == {"pg_kpi_metric", "pg_kpi_alerts", "pg_kpi_rollup", "pg_kpi_jobs", "pg_kpi_delivery"}
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
