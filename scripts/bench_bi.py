"""BI benchmark (ONLY=bi bash scripts/bench.sh): each BI entry point beside the
plain SQL a BI tool would otherwise run over the raw rows, from one run, with
medians of several runs after a warm-up:

- kpi.timeseries of one metric over 90 days at 500 points, with a year of
  1-minute values rolled up into 1-minute, 1-hour and 1-day summaries, beside
  one GROUP BY over the raw rows of the same buckets;
- every panel query of grafana/dashboards/pg_kpi.json over 24 hours, Grafana's
  macros expanded as Grafana does (scripts/grafana_macros.py), as a login with
  only kpi_reader; the response-time panel beside the raw GROUP BY;
- kpi.prometheus_metrics() with 1,000 active metrics (and their last windows)
  beside one GROUP BY of those windows' raw rows;
- kpi.html_report of 10 metrics over 7 days beside one GROUP BY of the same
  buckets' raw rows (the numbers without the charts).

Usage: python bench_bi.py DSN [runs (default 5)]"""

import datetime as dt
import pathlib
import statistics
import sys
import time

import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import grafana_macros  # noqa: E402

DSN = sys.argv[1]
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

SETUP = """
SET kpi.trigger_alerts = off;
SET kpi.max_future = -1;
SET kpi.rollup_batch_buckets = 10000000;
SELECT setseed(0.5);
UPDATE kpi.jobs SET enabled = false;
CREATE TABLE bench_at AS SELECT date_trunc('hour', now()) AS at;
SELECT kpi.create_partitions((SELECT at FROM bench_at) - interval '366 days', (SELECT at FROM bench_at) + interval '1 day');
-- a year of one value a minute for the time-series metric
INSERT INTO kpi.metric_definitions (metric, unit, warning, critical) VALUES ('api_response_time', 'ms', 500, 1000);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'api_response_time', 120 + 40 * sin(m / 720.0) + 30 * random() + CASE WHEN m % 997 = 0 THEN 900 ELSE 0 END,
       (SELECT at FROM bench_at) - interval '365 days' + m * interval '1 minute', '{"host": "web-1"}'
FROM generate_series(0, 365 * 1440 - 1) m;
-- 9 more metrics for the HTML report: 7 days of one value a minute
INSERT INTO kpi.metric_definitions (metric, warning, critical)
SELECT 'svc' || i, 80, 95 FROM generate_series(1, 9) i;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'svc' || i, 50 + 10 * random() + i, (SELECT at FROM bench_at) - interval '7 days' + m * interval '1 minute'
FROM generate_series(0, 7 * 1440 - 1) m, generate_series(1, 9) i;
VACUUM ANALYZE kpi.metrics;
SELECT kpi.add_rollup('1 minute', lag => '0');
SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0');
SELECT kpi.add_rollup('1 day', source_resolution => '1 hour', lag => '0');
SELECT kpi.refresh(id, (SELECT at FROM bench_at) - interval '366 days', (SELECT at FROM bench_at)) FROM kpi.rollups ORDER BY resolution;
UPDATE kpi.rollups SET watermark = (SELECT at FROM bench_at);
-- 990 more active metrics, each with 10 values in its last 5-minute window, for the exposition
INSERT INTO kpi.metric_definitions (metric, warning, critical)
SELECT 'exp' || lpad(i::text, 4, '0'), 80, 95 FROM generate_series(1, 990) i;
INSERT INTO kpi.metrics (metric, value, ts)
SELECT 'exp' || lpad(i::text, 4, '0'), 50 + 20 * random(), now() - interval '4 minutes' + j * interval '20 seconds'
FROM generate_series(1, 990) i, generate_series(0, 9) j;
-- some open alerts, a receiver with a backlog
INSERT INTO kpi.alerts (fingerprint, metric, severity, value, threshold, message, started_at, last_seen_at)
SELECT 'bench-' || i, 'svc' || (1 + i % 9), 'warning', 90, 80, 'svc above 80', now() - i * interval '1 minute', now()
FROM generate_series(1, 50) i;
VACUUM ANALYZE;
DROP ROLE IF EXISTS kpi_bench_reader;
CREATE ROLE kpi_bench_reader LOGIN IN ROLE kpi_reader;
"""

NATIVE_TIMESERIES = """
SELECT date_bin('{w} seconds', ts, '1970-01-01') AS "time", count(*), avg(value),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value), min(value), max(value)
FROM kpi.metrics WHERE metric = 'api_response_time' AND ts >= '{frm}' AND ts < '{to}'
GROUP BY 1 ORDER BY 1"""

NATIVE_EXPOSITION = """
SELECT m.metric, count(*), sum(m.value), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY m.value)
FROM kpi.metric_definitions d JOIN kpi.metrics m ON m.metric = d.metric
 AND m.ts > now() - d.measurement_window AND m.ts <= now()
WHERE d.active GROUP BY m.metric"""


def timed(conn, sql, runs=RUNS):
    conn.execute(sql).fetchall()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(sql).fetchall()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def row(what, ours, native=None, target=None):
    n = f"{native:10.1f}" if native is not None else f"{'':>10}"
    r = f"{native / ours:8.1f}x" if native is not None else f"{'':>9}"
    t = f"  (target < {target} ms)" if target else ""
    print(f"{what:<58} {ours:10.1f} {n} {r}{t}")


def main():
    with psycopg.connect(DSN, autocommit=True) as c:
        t0 = time.perf_counter()
        for stmt in SETUP.split(";\n"):
            if stmt.strip():
                c.execute(stmt)
        print(f"setup (a year of 1-minute values, rollups, 1,000 metrics): {time.perf_counter() - t0:.0f} s")
        at = c.execute("SELECT at FROM bench_at").fetchone()[0]
        summaries = c.execute("SELECT count(*) FROM kpi.summaries WHERE resolution = '1 minute' "
                              "AND metric = 'api_response_time'").fetchone()[0]
        print(f"1-minute summaries of api_response_time: {summaries:,}")
    reader = DSN.replace("user=postgres", "user=kpi_bench_reader")
    with psycopg.connect(reader, autocommit=True) as c:
        c.execute("SET jit = off")
        c.execute("SET max_parallel_workers_per_gather = 0")
        print(f"\n{'as a kpi_reader login; medians of %d runs, ms' % RUNS:<58} {'pg_kpi':>10} {'raw SQL':>10} {'ratio':>9}")
        frm, to = at - dt.timedelta(days=90), at
        ours = timed(c, f"SELECT * FROM kpi.timeseries('api_response_time', '{frm}', '{to}', 500)")
        w = int((to - frm).total_seconds() / 500)
        native = timed(c, NATIVE_TIMESERIES.format(w=w, frm=frm, to=to), runs=max(1, RUNS // 2))
        row("kpi.timeseries, 90 days, 500 points", ours, native, 50)
        frm24 = at - dt.timedelta(hours=24)
        variables = {"metric": "api_response_time", "error_metric": "svc1", "throughput_metric": "svc2",
                     "availability_metric": "svc3", "tags": "{}"}
        worst = 0
        for title, kind, _, raw in grafana_macros.panel_queries():
            sql = grafana_macros.expand(raw, frm24, at, variables)
            ms = timed(c, sql)
            worst = max(worst, ms)
            native = None
            if title.startswith("Response time") and "kpi.timeseries" in sql:
                native = timed(c, NATIVE_TIMESERIES.format(w=int(86400 / 500), frm=frm24, to=at))
            row(f"Grafana panel, 24 h: {title} ({kind})"[:58], ms, native, 100)
        ours = timed(c, "SELECT kpi.prometheus_metrics()")
        native = timed(c, NATIVE_EXPOSITION)
        n = c.execute("SELECT count(*) FROM kpi.metric_definitions WHERE active").fetchone()[0]
        row(f"kpi.prometheus_metrics(), {n:,} metrics", ours, native, 200)
        metrics = "ARRAY['api_response_time'" + "".join(f", 'svc{i}'" for i in range(1, 10)) + "]"
        frm7 = at - dt.timedelta(days=7)
        ours = timed(c, f"SELECT kpi.html_report('{frm7}', '{at}', {metrics})")
        native = timed(c, f"""SELECT metric, date_bin('2520 seconds', ts, '1970-01-01'), count(*), avg(value),
                                     percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY value)
                              FROM kpi.metrics WHERE metric = ANY ({metrics}) AND ts >= '{frm7}' AND ts < '{at}'
                              GROUP BY 1, 2""", runs=max(1, RUNS // 2))
        row("kpi.html_report, 10 metrics, 7 days (numbers + charts)", ours, native, 1000)
        size = len(c.execute(f"SELECT kpi.html_report('{frm7}', '{at}', {metrics})").fetchone()[0])
        print(f"html_report size: {size / 1024:.0f} KiB")
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute("DROP OWNED BY kpi_bench_reader")
        c.execute("DROP ROLE kpi_bench_reader")


if __name__ == "__main__":
    main()
