"""The README's row-level-security example (examples/row_level_security.sql):
two tenants see only their metrics, summaries, alerts, revenue and customers,
through the tables and through pg_kpi's functions; an admin sees all; the
alert trigger and the rollups still see every row."""

import pathlib

import psycopg
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "row_level_security.sql"


@pytest.fixture
def tenants(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT kpi.create_partitions(now() - interval '1 day', now() + interval '1 day')")
        c.execute("INSERT INTO kpi.metric_definitions (metric, warning, critical) VALUES ('lat', 50, 80)")
        c.execute(EXAMPLE.read_text())
        for r in ("acme", "globex", "boss"):
            c.execute(f"DROP ROLE IF EXISTS kpi_rls_{r}")
        c.execute("CREATE ROLE kpi_rls_acme LOGIN IN ROLE kpi_writer")
        c.execute("CREATE ROLE kpi_rls_globex LOGIN IN ROLE kpi_writer")
        c.execute("CREATE ROLE kpi_rls_boss LOGIN IN ROLE kpi_admin")
    dsns = {r: db.replace("user=postgres", f"user=kpi_rls_{r}") for r in ("acme", "globex", "boss")}
    yield db, dsns
    with psycopg.connect(db, autocommit=True) as c:
        for r in ("acme", "globex", "boss"):
            c.execute(f"DROP OWNED BY kpi_rls_{r}")
            c.execute(f"DROP ROLE kpi_rls_{r}")


def test_tenants_see_only_their_rows(tenants):
    db, dsn = tenants
    for tenant, base in (("acme", 10), ("globex", 100)):
        with psycopg.connect(dsn[tenant], autocommit=True) as c:
            c.execute(
                "INSERT INTO kpi.metrics (metric, value, ts, tags) "
                "SELECT 'lat', %s + g %% 5, now() - interval '30 minutes' + g * interval '10 seconds', "
                "jsonb_build_object('tenant', current_user) FROM generate_series(0, 99) g", (base,))
            c.execute("INSERT INTO kpi.revenue_events (event_id, customer_id, revenue_type, amount, metadata) "
                      "VALUES (%s, %s, 'usage', 10, jsonb_build_object('tenant', current_user))",
                      (f"e-{tenant}", f"c-{tenant}"))
            c.execute("INSERT INTO kpi.customers (customer_id) VALUES (%s)", (f"c-{tenant}",))
            # a row for another tenant is refused
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("INSERT INTO kpi.metrics (metric, value, tags) VALUES ('lat', 1, '{\"tenant\": \"kpi_rls_other\"}')")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("SELECT kpi.run_job(job_id) FROM kpi.rollups")
        # the trigger saw both tenants' breaches (globex's values are above 80)
        assert c.execute("SELECT count(*) FROM kpi.alerts WHERE labels ->> 'tenant' = 'kpi_rls_globex'").fetchone()[0] >= 1
    for tenant, base in (("acme", 10), ("globex", 100)):
        me = f"kpi_rls_{tenant}"
        with psycopg.connect(dsn[tenant], autocommit=True) as c:
            assert c.execute("SELECT count(*), min(tags ->> 'tenant'), max(tags ->> 'tenant') FROM kpi.metrics").fetchone() == (100, me, me)
            rows = c.execute("SELECT DISTINCT series ->> 'tenant' FROM kpi.summaries").fetchall()
            assert rows == [(me,)]
            assert {r[0] for r in c.execute("SELECT labels ->> 'tenant' FROM kpi.alerts").fetchall()} <= {me}
            assert c.execute("SELECT array_agg(customer_id) FROM kpi.revenue_events").fetchone()[0] == [f"c-{tenant}"]
            assert c.execute("SELECT array_agg(customer_id) FROM kpi.customers").fetchone()[0] == [f"c-{tenant}"]
            # pg_kpi's functions run with the caller's rights: filtered too
            n, mx = c.execute(
                "SELECT sum(count), max(max) FROM kpi.timeseries('lat', now() - interval '1 hour', now(), 60, "
                "jsonb_build_object('tenant', current_user))").fetchone()
            assert n == 100 and mx == base + 4
            assert c.execute("SELECT sum(count) FROM kpi.timeseries('lat', now() - interval '1 hour', now(), 60)").fetchone()[0] == 100
    with psycopg.connect(dsn["boss"], autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM kpi.metrics").fetchone()[0] == 200
        assert c.execute("SELECT count(DISTINCT customer_id) FROM kpi.customers").fetchone()[0] == 2
