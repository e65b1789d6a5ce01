"""Upgrades: for every released version (its install script frozen in
sql/pg_kpi--<version>.sql), install it, create objects and data, ALTER
EXTENSION pg_kpi UPDATE, check that the data, stored sketches and trends,
jobs and rules still work, and that the upgraded schema equals a fresh
install's (a catalog snapshot of both compared)."""

import pathlib
import re
import uuid

import psycopg
import pytest

from conftest import DSN

ROOT = pathlib.Path(__file__).resolve().parents[2]


def version_key(v):
    return tuple(int(x) for x in re.findall(r"\d+", v))


def current_version():
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


RELEASED = sorted(
    (m.group(1) for p in (ROOT / "sql").glob("pg_kpi--*.sql") if (m := re.fullmatch(r"pg_kpi--([0-9.]+)\.sql", p.name))),
    key=version_key,
)


def test_every_release_has_an_upgrade_path():
    assert RELEASED, "at least 0.1.0 is released"
    cur = current_version()
    for v in RELEASED:
        assert version_key(v) < version_key(cur) or v == cur
    # a chain of scripts from each release to the current version
    steps = {(m.group(1), m.group(2)) for p in (ROOT / "sql").glob("pg_kpi--*--*.sql")
             if (m := re.fullmatch(r"pg_kpi--([0-9.]+)--([0-9.]+)\.sql", p.name))}
    for v in RELEASED:
        at = v
        while at != cur:
            nxt = [b for a, b in steps if a == at]
            assert len(nxt) == 1, f"no single upgrade script from {at}"
            at = nxt[0]


# Everything the extension defines, as sorted text lines: functions with their
# definitions and properties, aggregates, relations with columns, defaults,
# constraints, indexes, triggers, views, comments and grants, types, and the
# extension's configuration tables. OIDs never appear, names do.
SNAPSHOT = r"""
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname IN ('kpi', 'kpi_internal')),
rels AS (SELECT c.* FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
         WHERE c.relname !~ '^metrics_p[0-9]{8}$')
SELECT 'function ' || p.oid::regprocedure || ' ' ||
       concat_ws(' | ', p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proconfig::text, p.proacl::text,
                 p.prorettype::regtype::text, p.proretset, obj_description(p.oid, 'pg_proc'),
                 CASE WHEN p.prokind = 'a' THEN
                     (SELECT concat_ws(',', a.aggtransfn::regproc, a.aggfinalfn::regproc, a.aggcombinefn::regproc,
                                       a.aggserialfn::regproc, a.aggdeserialfn::regproc, a.aggtranstype::regtype,
                                       a.agginitval, a.aggfinalmodify)
                      FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
                 ELSE md5(pg_get_functiondef(p.oid)) END)
FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || concat_ws(' | ', c.relkind, c.relpersistence, c.relacl::text,
       c.reloptions::text, obj_description(c.oid, 'pg_class'),
       CASE WHEN c.relkind IN ('v', 'm') THEN md5(pg_get_viewdef(c.oid)) END,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
       (SELECT string_agg(ext.extname, ',') FROM pg_depend d JOIN pg_extension ext ON ext.oid = d.refobjid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
FROM rels c WHERE c.relkind <> 'i'
UNION ALL
SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' ' ||
       concat_ws(' | ', format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated, a.attidentity,
                 pg_get_expr(ad.adbin, ad.adrelid), col_description(c.oid, a.attnum), a.attacl::text)
FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
UNION ALL
SELECT 'constraint ' || c.oid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
FROM rels c JOIN pg_constraint co ON co.conrelid = c.oid
UNION ALL
SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), 'metrics_p[0-9]{8}', 'metrics_pN', 'g')
FROM rels c JOIN pg_index i ON i.indrelid = c.oid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'type ' || t.oid::regtype || ' ' || concat_ws(' | ', t.typtype, obj_description(t.oid, 'pg_type'),
       (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE (t.typtype IN ('b', 'e', 'd') AND t.typelem = 0) OR (t.typtype = 'c' AND EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))
UNION ALL
SELECT 'schema ' || n.nspname || ' ' || concat_ws(' | ', n.nspacl::text, obj_description(n.oid, 'pg_namespace'))
FROM pg_namespace n JOIN ns ON ns.oid = n.oid
UNION ALL
SELECT 'config ' || c::regclass || ' ' || coalesce(e.extcondition[i], '')
FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY u(c, i) WHERE e.extname = 'pg_kpi'
UNION ALL
SELECT 'job kind ' || k.kind || ' ' || concat_ws(' | ', k.run::text, k.validate::text, k.managed, k.description)
FROM kpi.job_kinds k
UNION ALL
SELECT 'built-in job ' || j.kind || ' ' || coalesce(j.schedule_interval::text, j.schedule_cron)
FROM kpi.jobs j WHERE j.kind IN ('partitions', 'alerts', 'rules', 'retention')
"""


def snapshot(conn):
    return sorted(r[0] for r in conn.execute(SNAPSHOT))


SEED = """
SELECT kpi.create_partitions(now() - interval '2 days', now() + interval '1 day');
INSERT INTO kpi.metric_definitions (metric, unit, warning, critical, measurement_window)
VALUES ('latency', 'ms', 300, 500, '10 minutes'), ('cpu', '%', 80, 95, '5 minutes');
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'latency', 100 + (g % 50) + CASE WHEN g % 500 = 0 THEN 400 ELSE 0 END, now() - interval '1 day' + g * interval '30 seconds',
       jsonb_build_object('host', 'h' || g % 3)
FROM generate_series(0, 2879) g;
SELECT kpi.add_rollup('1 minute', lag => '0');
SELECT kpi.add_rollup('1 hour', source_resolution => '1 minute', lag => '0');
SELECT kpi.run_job(job_id) FROM kpi.rollups ORDER BY resolution;
SELECT kpi.add_alert_rule('Busy', 'cpu', 'avg', '1 minute', '>', 80, group_by => '{host}');
INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('cpu', 99, now() - interval '10 seconds', '{"host": "a"}');
SELECT kpi.evaluate_alerts();
SELECT kpi.add_job('sql', '{"command": "SELECT 1"}', schedule_interval => '1 hour');
CREATE TABLE user_sketches AS
SELECT kpi.sketch_agg(value) AS s, kpi.trend_agg(ts, value) AS t, kpi.summary_stats(value) AS st
FROM kpi.metrics WHERE metric = 'latency';
"""

STATE = """
SELECT (SELECT sum(count) FROM kpi.summaries WHERE resolution = '1 minute'),
       (SELECT sum(count) FROM kpi.summaries WHERE resolution = '1 hour'),
       (SELECT kpi.approx_percentiles(kpi.sketch_agg(sketch), ARRAY[0.5, 0.95, 0.99])::text FROM kpi.summaries WHERE resolution = '1 hour'),
       (SELECT kpi.approx_percentiles(s, ARRAY[0.5, 0.99])::text FROM user_sketches),
       (SELECT kpi.slope(t) FROM user_sketches),
       (SELECT st::text FROM user_sketches),
       (SELECT count(*) FROM kpi.alerts),
       (SELECT string_agg(state || ':' || severity, ',' ORDER BY id) FROM kpi.alerts),
       (SELECT count(*) FROM kpi.jobs),
       (SELECT count(*) FROM kpi.alert_rules)
"""


def make_db(version=None):
    name = "kpi_up_" + uuid.uuid4().hex[:10]
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = DSN.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi" + (f" VERSION '{version}'" if version else ""))
    return name, dsn


def drop_db(name):
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("released", RELEASED)
def test_upgrade_keeps_data_and_equals_a_fresh_install(released):
    cur = current_version()
    if released == cur:
        pytest.skip("the current version is not released yet")
    old, old_dsn = make_db(released)
    new, new_dsn = make_db()
    try:
        with psycopg.connect(old_dsn, autocommit=True) as c:
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_kpi'").fetchone()[0] == released
            c.execute("SET kpi.trigger_alerts = on")
            for stmt in SEED.split(";\n"):
                if stmt.strip():
                    c.execute(stmt)
            before = c.execute(STATE).fetchone()
            assert before[0] > 2800 and before[6] > 0, before
            c.execute("ALTER EXTENSION pg_kpi UPDATE")
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_kpi'").fetchone()[0] == cur
        # a new session: the upgraded functions, the same data
        with psycopg.connect(old_dsn, autocommit=True) as c:
            after = c.execute(STATE).fetchone()
            assert after == before
            # it keeps working: more rows roll up exactly once, rules evaluate, jobs run, reports read
            c.execute("INSERT INTO kpi.metrics (metric, value, ts) SELECT 'latency', 100, now() - interval '5 minutes' "
                      "FROM generate_series(1, 10)")
            c.execute("SELECT kpi.run_job(job_id) FROM kpi.rollups ORDER BY resolution")
            # every raw row below the watermark is counted once
            assert c.execute(
                "SELECT (SELECT sum(count) FROM kpi.summaries WHERE resolution = '1 minute') = "
                "(SELECT count(*) FROM kpi.metrics m, kpi.rollups r WHERE r.resolution = '1 minute' AND m.ts < r.watermark)"
            ).fetchone()[0]
            assert c.execute("SELECT sum(count) FROM kpi.summaries WHERE resolution = '1 minute'").fetchone()[0] >= before[0] + 10
            c.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('cpu', 99, now(), '{\"host\": \"b\"}')")
            c.execute("SELECT kpi.evaluate_alerts()")
            assert c.execute("SELECT count(*) FROM kpi.alerts WHERE source = 'rule'").fetchone()[0] == 2
            assert c.execute("SELECT status FROM kpi.run_job((SELECT id FROM kpi.jobs WHERE kind = 'sql'))").fetchone()[0] == "success"
            assert c.execute("SELECT count(*) FROM kpi.timeseries('latency', now() - interval '1 day', now(), 24)").fetchone()[0] > 0
            old_snap = snapshot(c)
        with psycopg.connect(new_dsn, autocommit=True) as c:
            new_snap = snapshot(c)
        missing = sorted(set(new_snap) - set(old_snap))
        extra = sorted(set(old_snap) - set(new_snap))
        assert not missing and not extra, (
            "the upgraded schema differs from a fresh install\n"
            "only in a fresh install:\n  " + "\n  ".join(missing[:40]) +
            "\nonly after the upgrade:\n  " + "\n  ".join(extra[:40]))
    finally:
        drop_db(old)
        drop_db(new)
