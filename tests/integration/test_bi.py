"""BI against the real programs: kpi.html_report rendered by headless
Chromium (a PNG screenshot that is not blank, every chart's SVG with data
lines, nothing executable), and the Grafana dashboard's panel queries run
with Grafana's macros expanded, as a login that has only kpi_reader."""

import html.parser
import pathlib
import shutil
import subprocess

import psycopg
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert('x')</script>\"&"


def seed(conn):
    """Two days of two metrics with thresholds (one with a hostile name),
    breaches that raise alerts, a rollup, and a KPI target."""
    conn.execute("SELECT kpi.create_partitions(now() - interval '3 days', now() + interval '1 day')")
    conn.execute(
        "INSERT INTO kpi.metric_definitions (metric, unit, description, warning, critical, baseline, measurement_window) "
        "VALUES ('api_latency', 'ms', 'API <b>latency</b>', 300, 500, 200, '10 minutes'), "
        "       (%s, '%%', 'hostile & name', 80, 95, NULL, '10 minutes')",
        (HOSTILE,),
    )
    conn.execute(
        "INSERT INTO kpi.metrics (metric, value, ts, tags) "
        "SELECT m, CASE WHEN g %% 400 = 0 THEN 1000 ELSE 100 + 50 * sin(g / 30.0) + (g %% 17) END, "
        "       now() - interval '2 days' + g * interval '1 minute', jsonb_build_object('host', 'web-' || g %% 2) "
        "FROM (VALUES ('api_latency'), (%s)) x(m), generate_series(0, 2879) g",
        (HOSTILE,),
    )
    conn.execute("SELECT kpi.add_rollup('1 minute', lag => '0')")
    conn.execute("SELECT kpi.add_rollup('1 hour', lag => '0')")
    conn.execute("SELECT kpi.run_job(job_id) FROM kpi.rollups ORDER BY resolution")
    conn.execute(
        "INSERT INTO kpi.kpi_targets (metric, target) VALUES ('api_latency', 120)"
    )


class Dom(html.parser.HTMLParser):
    """Counts what the test asserts on, per <figure> of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.figures = []  # (class, [polyline point counts of the p50/p95 colours], rects, circles)
        self.tags = set()
        self.cur = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "figure":
            self.cur = {"class": a.get("class"), "lines": [], "rects": 0, "circles": 0}
            self.figures.append(self.cur)
        elif self.cur is not None and tag == "polyline" and (a.get("stroke") or "").upper() in ("#1F77B4", "#D62728"):
            self.cur["lines"].append(len((a.get("points") or "").split()))
        elif self.cur is not None and tag == "rect":
            self.cur["rects"] += 1
        elif self.cur is not None and tag == "circle":
            self.cur["circles"] += 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self.cur = None


def chromium(*args, timeout=120):
    exe = shutil.which("chromium")
    assert exe, "chromium is installed by scripts/test.sh"
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--user-data-dir=/tmp/kpi-chromium", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_html_report_renders_in_chromium(db, tmp_path):
    with psycopg.connect(db, autocommit=True) as c:
        seed(c)
        n_alerts = c.execute("SELECT count(*) FROM kpi.alerts WHERE metric = 'api_latency'").fetchone()[0]
        assert n_alerts > 0
        doc = c.execute("SELECT kpi.html_report(now() - interval '2 days', now())").fetchone()[0]
    assert doc.startswith("<!DOCTYPE html>")
    # nothing executable, nothing fetched, the hostile name escaped everywhere
    assert "<script" not in doc and "<b>" not in doc
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;" in doc
    for bad in ("http://", "https://", "src=", "href=", "url("):
        assert bad not in doc.replace("http://www.w3.org/2000/svg", ""), bad
    page = tmp_path / "report.html"
    page.write_text(doc)
    # the DOM as the browser built it
    r = chromium("--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom()
    dom.feed(r.stdout)
    assert "script" not in dom.tags
    charts = [f for f in dom.figures if f["class"] == "chart"]
    timelines = [f for f in dom.figures if f["class"] == "timeline"]
    assert len(charts) == 2 and len(timelines) == 2
    for f in charts:
        # p50 and p95 lines with (almost) one point per bucket, and the two bands
        assert len(f["lines"]) >= 2 and sum(f["lines"]) > 100, f
        assert f["rects"] >= 3, f
    # api_latency's timeline has a bar per alert (plus the background)
    assert timelines[0]["rects"] >= 1 + min(n_alerts, 1), timelines[0]
    # a screenshot that is not blank
    shot = tmp_path / "report.png"
    r = chromium("--window-size=900,1600", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (900, 1600)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the page looks blank"
    # the chart colours are on the page
    assert any(abs(r - 0x1F) < 40 and abs(g - 0x77) < 40 and abs(b - 0xB4) < 40 for _, (r, g, b) in colours)
    shutil.copy(shot, ROOT / "target" / "html_report_test.png")


def test_html_report_bad_input(db):
    with psycopg.connect(db, autocommit=True) as c:
        seed(c)
        for sql, state in [
            ("SELECT kpi.html_report(now(), now() - interval '1 day')", "22023"),
            ("SELECT kpi.html_report('-infinity', now())", "22023"),
            ("SELECT kpi.html_report(NULL, now())", "22004"),
            ("SELECT kpi.html_report(now() + interval '1 day', now() + interval '2 days')", "22023"),
            ("SELECT kpi.html_report(now() - interval '1 day', now(), '{}')", "22023"),
            ("SELECT kpi.html_report(now() - interval '1 day', now(), ARRAY['nope'])", "22023"),
            ("SELECT kpi.html_report(now() - interval '1 day', now(), ARRAY[NULL]::text[])", "22004"),
        ]:
            with pytest.raises(psycopg.Error) as e:
                c.execute(sql)
            assert e.value.sqlstate == state, (sql, e.value.sqlstate, str(e.value))
            assert "kpi.html_report" in str(e.value)


# ---------------------------------------------------------------- Grafana

import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import yaml  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import grafana_macros  # noqa: E402

NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}


def test_grafana_provisioning_files_parse():
    ds = yaml.safe_load((ROOT / "grafana/provisioning/datasources/pg_kpi.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "grafana-postgresql-datasource" and source["uid"] == "pg_kpi"
    prov = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/pg_kpi.yaml").read_text())
    assert prov["providers"][0]["type"] == "file"
    d = json.loads(grafana_macros.DASHBOARD.read_text())
    titles = [p["title"] for p in d["panels"]]
    for needed in ("Response time", "Error rate", "Throughput", "Availability", "Active alerts", "Health score",
                   "rollups behind", "job runs", "delivery backlog"):
        assert any(needed in t for t in titles), needed
    assert {v["name"] for v in d["templating"]["list"]} >= {"metric", "tags"}
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "pg_kpi"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "pg_kpi" and t["rawQuery"]


def test_grafana_panels_run_as_a_reader(db):
    with psycopg.connect(db, autocommit=True) as c:
        seed(c)
        c.execute("INSERT INTO kpi.alert_receivers (name, kind, url) VALUES ('ops', 'webhook', 'http://127.0.0.1:9/hook?token=secret')")
        c.execute("SELECT kpi.run_job(id) FROM kpi.jobs WHERE kind = 'partitions'")
        c.execute("DROP ROLE IF EXISTS kpi_grafana_test")
        c.execute("CREATE ROLE kpi_grafana_test LOGIN IN ROLE kpi_reader")
    try:
        reader = db.replace("user=postgres", "user=kpi_grafana_test")
        to = dt.datetime.now(dt.timezone.utc)
        frm = to - dt.timedelta(hours=24)
        variables = {"metric": "api_latency", "error_metric": HOSTILE, "throughput_metric": "api_latency",
                     "availability_metric": HOSTILE, "tags": "{}"}
        ran = 0
        with psycopg.connect(reader) as c:
            c.execute("SET TRANSACTION READ ONLY")
            types = dict(c.execute("SELECT oid, typname FROM pg_type").fetchall())
            for title, kind, fmt, raw in grafana_macros.panel_queries():
                sql = grafana_macros.expand(raw, frm, to, variables)
                cur = c.execute(sql)
                rows = cur.fetchall()
                cols = [(d.name, types[d.type_code]) for d in cur.description]
                numeric = [n for n, t in cols if t in NUMERIC]
                if fmt == "time_series":
                    # Grafana's time series: "time" first (a timestamp or epoch seconds), numeric values
                    assert cols[0][0] == "time" and cols[0][1] in NUMERIC | {"timestamptz", "timestamp"}, (title, cols)
                    assert numeric and all(t in NUMERIC | {"text"} for _, t in cols[1:]), (title, cols)
                    # (no job runs here: no worker in this database)
                    assert rows or "job runs" in title, (title, sql)
                    times = [r[0] for r in rows]
                    assert times == sorted(times), title
                if kind in ("stat", "gauge", "bargauge"):
                    assert numeric and rows and rows[0][cols.index(next(x for x in cols if x[0] == numeric[0]))] is not None, (title, rows)
                if kind == "annotation":
                    assert [n for n, _ in cols[:3]] == ["time", "timeend", "text"], cols
                    assert rows, "the seeded alerts show as annotations"
                ran += 1
            # a reader sees receivers, not their URLs
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT url FROM kpi.alert_receivers")
        assert ran >= 11
    finally:
        with psycopg.connect(db, autocommit=True) as c:
            c.execute("DROP OWNED BY kpi_grafana_test")
            c.execute("DROP ROLE kpi_grafana_test")
