"""The database of the hostile-input test (test_hostile.py) of schema kpi.

The database is created the way tests/integration/conftest.py's `db` fixture does it
(CREATE DATABASE on the admin DSN, CREATE EXTENSION pg_kpi, DROP DATABASE ... WITH (FORCE)
afterwards), but once per session: the test cases are generated from that database's catalog
at collection time, so it must exist before the tests are collected.
"""
import os
import time
import uuid

import psycopg

DSN = os.environ.get("KPI_TEST_DSN", "host=localhost port=28816 dbname=postgres user=postgres")

# Seed: a defined metric 'm' (and 'm2') with rows, a rollup, an alert rule, an open alert, a
# silence, a retention policy, a disabled receiver, a sql job, revenue, scaling and load-test
# data, a KPI target, and valid values of every custom type in public.hostile_vals.
SEED_SQL = r"""
SET kpi.trigger_alerts = on;
INSERT INTO kpi.metric_definitions (metric, optimal, good, warning, critical, target)
VALUES ('m', 10, 20, 50, 100, 15), ('m2', 10, 20, 50, 100, NULL);
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'm', 10 + (g % 37), now() - g * interval '1 minute', jsonb_build_object('host', 'h' || (g % 3))
FROM generate_series(1, 3000) g;
INSERT INTO kpi.metrics (metric, value, ts, tags)
SELECT 'm2', 5 + (g % 11) * 1.5, now() - g * interval '1 minute', jsonb_build_object('host', 'h' || (g % 3))
FROM generate_series(1, 3000) g;
SELECT kpi.record('m', 500);                -- an emergency alert
CREATE TABLE public.hostile_ids (name text PRIMARY KEY, id bigint);
INSERT INTO public.hostile_ids SELECT 'rollup', kpi.add_rollup('1 minute', metrics => 'm%');
INSERT INTO public.hostile_ids SELECT 'rollup_hour', kpi.add_rollup('1 hour', '1 minute', metrics => 'm%');
SELECT kpi.refresh((SELECT id FROM public.hostile_ids WHERE name = 'rollup'), now() - interval '3 days', now());
SELECT kpi.add_alert_rule(name => 'r', metric => 'm', aggregate => 'p95', "window" => '5 minutes',
                          comparator => '>', warning => 30, critical => 100, group_by => '{host}');
INSERT INTO public.hostile_ids SELECT 'alert', min(id) FROM kpi.alerts;
INSERT INTO public.hostile_ids SELECT 'silence', kpi.silence('{"metric": "m2"}', comment => 'seed');
INSERT INTO public.hostile_ids SELECT 'retention', kpi.add_retention('alerts', '30 days');
INSERT INTO public.hostile_ids SELECT 'job', kpi.add_job('sql', '{"command": "SELECT 1"}', '1 hour');
SELECT kpi.add_receiver('rcv', 'webhook', 'http://127.0.0.1:9/hook');
UPDATE kpi.alert_receivers SET enabled = false WHERE name = 'rcv';
INSERT INTO kpi.customers (customer_id, segment, acquired_at, acquisition_cost, billing_cycle) VALUES
    ('a', 'smb', now() - interval '90 days', 300, 'monthly'),
    ('b', 'enterprise', now() - interval '200 days', 5000, 'annual');
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period, feature_id)
SELECT 'a' || g, now() - g * interval '30 days', 'a', 'subscription', 100 + g, 'sa', 'monthly', 'reports'
FROM generate_series(0, 3) g;
INSERT INTO kpi.revenue_events (event_id, ts, customer_id, revenue_type, amount, subscription_id, billing_period)
VALUES ('b1', now() - interval '100 days', 'b', 'subscription', 1200, 'sb', 'annual'),
       ('u1', now() - interval '5 days', 'b', 'usage', 42.5, NULL, NULL);
INSERT INTO kpi.scaling_events (service, occurred_at, trigger, direction, capacity_before, capacity_after, duration, trigger_value, threshold, success, cost_impact)
SELECT 'api', now() - g * interval '1 hour', 'cpu', CASE WHEN g % 2 = 0 THEN 'out' ELSE 'in' END,
       4, CASE WHEN g % 2 = 0 THEN 6 ELSE 4 END, '60 seconds', 80, 70, true, 12.5
FROM generate_series(1, 10) g;
WITH x AS (
  INSERT INTO kpi.load_test_results (scenario, users, duration, expected_ms, requests, errors, response_times_ms)
  VALUES ('checkout', 8, '10 seconds', 200, 100, 3, ARRAY(SELECT 100.0 * g FROM generate_series(1, 10) g))
  RETURNING id)
INSERT INTO public.hostile_ids SELECT 'load_test', id FROM x;
INSERT INTO kpi.kpi_targets (metric, target) VALUES ('m', 12);
CREATE TABLE public.hostile_vals AS
SELECT (SELECT kpi.sketch_agg(x::float8) FROM generate_series(1, 100) x) AS sk,
       (SELECT kpi.sketch_agg(x::float8, 0.05) FROM generate_series(1, 100) x) AS sk05,
       (SELECT kpi.trend_agg(x::float8, 2 * x + 1::float8) FROM generate_series(1, 100) x) AS tr,
       '(0.24,4.4,0.79,2.4,-100,100,t)'::kpi.bgnbd AS bg,
       '(6,4,15,-100,100,t)'::kpi.gamma_gamma AS gg,
       '(0.704,1.182,-100,8,t)'::kpi.sbg AS sbg;
GRANT ALL ON public.hostile_vals, public.hostile_ids TO PUBLIC;
"""

_state = {}


def session_dsn():
    """Create (once) the session database with pg_kpi and the seed; return its DSN."""
    if "dsn" not in _state:
        name = "kpi_hostile_" + uuid.uuid4().hex[:10]
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        _state["name"] = name
        dsn = DSN.replace("dbname=postgres", f"dbname={name}")
        for attempt in range(60):
            try:
                with psycopg.connect(dsn) as c:      # one transaction: all or nothing
                    c.execute("CREATE EXTENSION pg_kpi")
                    c.execute(SEED_SQL)
                break
            except psycopg.errors.UndefinedFile:
                # another session is reinstalling the extension's library: wait for it
                if attempt == 59:
                    raise
                time.sleep(2)
        _state["dsn"] = dsn
    return _state["dsn"]


def drop_session_db():
    """Drop the session database (unless KPI_HOSTILE_KEEP_DB is set)."""
    name = _state.pop("name", None)
    _state.pop("dsn", None)
    if name and not os.environ.get("KPI_HOSTILE_KEEP_DB"):
        try:
            with psycopg.connect(DSN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        except psycopg.Error:
            pass
