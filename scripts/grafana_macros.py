"""Grafana's SQL macros and variable formats for the PostgreSQL data source,
expanded the way Grafana documents them
(https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros),
so that tests and benchmarks can run the provisioned dashboard's queries
without a Grafana server."""

import datetime as dt
import json
import pathlib
import re

DASHBOARD = pathlib.Path(__file__).resolve().parents[1] / "grafana" / "dashboards" / "pg_kpi.json"

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(interval):
    m = re.fullmatch(r"\s*'?(\d+(?:\.\d+)?)(ms|s|m|h|d|w)'?\s*", interval)
    if not m:
        raise ValueError(f"not a Grafana interval: {interval!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def grafana_interval(frm, to, max_points=1000, min_interval="1m"):
    """$__interval: the range over the panel's data points, rounded like
    Grafana's rangeutil.roundInterval (coarsely), never below the data
    source's min interval."""
    raw = (to - frm).total_seconds() / max_points
    for limit, nice in [(1.5, "1s"), (3.5, "2s"), (7.5, "5s"), (12.5, "10s"), (17.5, "15s"), (25, "20s"),
                        (45, "30s"), (90, "1m"), (210, "2m"), (450, "5m"), (750, "10m"), (1050, "15m"),
                        (1500, "20m"), (2700, "30m"), (5400, "1h"), (9000, "2h"), (16200, "3h"), (32400, "6h"),
                        (86400, "12h"), (604800, "1d"), (1814400, "1w")]:
        if raw < limit:
            break
    else:
        nice = "30d"
    return nice if seconds(nice) >= seconds(min_interval) else min_interval


def sqlstring(v):
    return "'" + str(v).replace("'", "''") + "'"


def expand(sql, frm, to, variables, interval=None):
    """The query Grafana sends for a panel: variables (${name}, ${name:sqlstring},
    $name), then $__interval, then the macros."""
    iso = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    interval = interval or grafana_interval(frm, to)

    def var(m):
        name, fmt = m.group(1) or m.group(3), m.group(2)
        if name not in variables:
            raise KeyError(f"dashboard variable ${name} has no value")
        return sqlstring(variables[name]) if fmt == "sqlstring" else str(variables[name])

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)", var, sql)
    sql = sql.replace("$__interval_ms", str(int(seconds(interval) * 1000))).replace("$__interval", interval)

    def args(s):
        return [a.strip() for a in s.split(",")] if s.strip() else []

    def macro(m):
        name, a = m.group(1), args(m.group(2))
        if name == "timeFilter":
            return f"{a[0]} BETWEEN '{iso(frm)}' AND '{iso(to)}'"
        if name == "timeFrom":
            return f"'{iso(frm)}'"
        if name == "timeTo":
            return f"'{iso(to)}'"
        if name == "time":
            return f'{a[0]} AS "time"'
        if name in ("timeGroup", "timeGroupAlias"):
            s = seconds(a[1])
            s = int(s) if s == int(s) else s
            expr = f"floor(extract(epoch from {a[0]})/{s})*{s}"
            return expr + (' AS "time"' if name == "timeGroupAlias" else "")
        if name == "unixEpochFilter":
            return f"{a[0]} >= {int(frm.timestamp())} AND {a[0]} <= {int(to.timestamp())}"
        raise ValueError(f"macro $__{name} is not expanded here")

    sql = re.sub(r"\$__(\w+)\(([^()]*)\)", macro, sql)
    if "$__" in sql or re.search(r"\$\{?\w", sql):
        raise ValueError(f"unexpanded macro or variable left in: {sql}")
    return sql


def panel_queries(dashboard=DASHBOARD):
    """(panel title, panel type, format, rawSql) for every target of every panel, and the annotations."""
    d = json.loads(pathlib.Path(dashboard).read_text())
    for p in d["panels"]:
        for t in p["targets"]:
            yield p["title"], p["type"], t.get("format", "time_series"), t["rawSql"]
    for a in d.get("annotations", {}).get("list", []):
        if "target" in a:
            yield a["name"], "annotation", "table", a["target"]["rawSql"]
