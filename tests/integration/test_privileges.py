"""The privilege model: a login with no kpi role reads and writes nothing;
kpi_reader reads (not receivers' secrets) and writes nothing; kpi_writer
ingests but defines nothing and runs no jobs; kpi_admin does it all. Checked
both through the catalog (every table of the extension) and by calling the
functions that write."""

import psycopg
import pytest

SEED = [
    "SELECT kpi.create_partitions(now() - interval '1 day', now() + interval '1 day')",
    "INSERT INTO kpi.metric_definitions (metric, warning, critical) VALUES ('m', 50, 80)",
    "INSERT INTO kpi.metrics (metric, value, ts) SELECT 'm', g, now() - interval '1 hour' + g * interval '1 minute' FROM generate_series(0, 59) g",
    "SELECT kpi.add_rollup('1 minute', lag => '0')",
    "SELECT kpi.run_job(job_id) FROM kpi.rollups",
    "SELECT kpi.add_receiver('ops', 'webhook', 'http://127.0.0.1:9/hook?token=s3cret', headers => '{\"Authorization\": \"Bearer s3cret\"}')",
]

# (what, SQL) that write or define: each must fail with 42501 below kpi_admin
DEFINE = [
    ("add a rollup", "SELECT kpi.add_rollup('1 hour', lag => '0')"),
    ("refresh a rollup", "SELECT kpi.refresh((SELECT min(id) FROM kpi.rollups), now() - interval '1 hour', now())"),
    ("add an alert rule", "SELECT kpi.add_alert_rule('r', 'm', 'avg', '1 minute', '>', 1)"),
    ("define a metric", "INSERT INTO kpi.metric_definitions (metric) VALUES ('x')"),
    ("change a threshold", "UPDATE kpi.metric_definitions SET warning = 1"),
    ("add a job", "SELECT kpi.add_job('report', '{\"name\": \"daily\", \"report\": \"performance_report\", \"period\": \"1 day\"}', schedule_interval => '1 day')"),
    ("run a job", "SELECT kpi.run_job((SELECT min(id) FROM kpi.jobs))"),
    ("pause a job", "SELECT kpi.pause_job((SELECT min(id) FROM kpi.jobs))"),
    ("add a receiver", "SELECT kpi.add_receiver('x', 'webhook', 'http://127.0.0.1:9/')"),
    ("silence", "SELECT kpi.silence('{\"metric\": \"m\"}')"),
    ("evaluate rules", "SELECT kpi.evaluate_alerts()"),
    ("resolve quiet alerts", "SELECT kpi.resolve_quiet_alerts()"),
    ("job bookkeeping", "SELECT kpi_internal.fail_interrupted_runs()"),
    ("delete summaries", "DELETE FROM kpi.summaries"),
    ("add retention", "SELECT kpi.add_retention('metrics', '30 days')"),
    ("take a report snapshot", "SELECT kpi.take_report_snapshot('s', 'performance_report')"),
]
# sql jobs run their command as their owner: kpi_admin may write its own, but neither
# turn a job owned by someone else into an sql job nor register or repoint job kinds
# (their functions run as the worker's role)
SQL_JOBS = [
    ("turn someone else's job into an sql job",
     "UPDATE kpi.jobs SET kind = 'sql', config = '{\"command\": \"SELECT 1\"}' WHERE kind = 'partitions'"),
    ("make a superuser own a job", "UPDATE kpi.jobs SET owner = 'postgres' WHERE kind = 'sql'"),
    ("register a job kind", "INSERT INTO kpi.job_kinds (kind, run, validate, description) "
                            "VALUES ('evil', 'kpi_internal.run_sql_job(jsonb)', 'kpi_internal.check_sql_job(jsonb,boolean)', 'x')"),
    ("repoint a job kind", "UPDATE kpi.job_kinds SET run = 'kpi_internal.run_sql_job(jsonb)' WHERE kind = 'partitions'"),
]
INGEST = [
    ("kpi.record", "SELECT kpi.record('m', 1)"),
    ("kpi.record_batch", "SELECT kpi.record_batch('[{\"metric\": \"m\", \"value\": 2}]')"),
    ("INSERT", "INSERT INTO kpi.metrics (metric, value) VALUES ('m', 3)"),
    ("revenue", "INSERT INTO kpi.revenue_events (event_id, customer_id, revenue_type, amount) VALUES ('e1', 'c1', 'usage', 10)"),
]
READ = [
    "SELECT count(*) FROM kpi.metrics",
    "SELECT count(*) FROM kpi.summaries",
    "SELECT count(*) FROM kpi.alerts",
    "SELECT count(*) FROM kpi.active_alerts",
    "SELECT count(*) FROM kpi.job_status",
    "SELECT count(*) FROM kpi.delivery_status",
    "SELECT name, kind FROM kpi.alert_receivers",
    "SELECT count(*) FROM kpi.timeseries('m', now() - interval '2 hours', now())",
    "SELECT kpi.performance_report(now() - interval '2 hours', now())",
    "SELECT length(kpi.html_report(now() - interval '2 hours', now()))",
    "SELECT length(kpi.prometheus_metrics())",
    "SELECT count(*) FROM kpi.metric_series",
    "SELECT count(*) FROM kpi.engine_health",
    "SELECT kpi.approx_percentile(kpi.sketch_agg(value), 0.5) FROM kpi.metrics",
]
SECRETS = ["SELECT url FROM kpi.alert_receivers", "SELECT headers FROM kpi.alert_receivers", "SELECT * FROM kpi.alert_receivers"]


@pytest.fixture
def roles(db):
    with psycopg.connect(db, autocommit=True) as c:
        for s in SEED:
            c.execute(s)
        for r, grant in [("kpi_t_none", None), ("kpi_t_reader", "kpi_reader"), ("kpi_t_writer", "kpi_writer"),
                         ("kpi_t_admin", "kpi_admin")]:
            c.execute(f"DROP ROLE IF EXISTS {r}")
            c.execute(f"CREATE ROLE {r} LOGIN" + (f" IN ROLE {grant}" if grant else ""))
    yield {r: db.replace("user=postgres", f"user=kpi_t_{r}") for r in ("none", "reader", "writer", "admin")}
    with psycopg.connect(db, autocommit=True) as c:
        for r in ("none", "reader", "writer", "admin"):
            c.execute(f"DROP OWNED BY kpi_t_{r}")
            c.execute(f"DROP ROLE kpi_t_{r}")


def attempt(dsn, sql):
    """None when it worked, else the SQLSTATE."""
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            c.execute(sql)
            return None
        except psycopg.Error as e:
            return e.sqlstate


def test_roles_exist_and_nothing_is_granted_to_public(db):
    with psycopg.connect(db, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('kpi_reader', 'kpi_writer', 'kpi_admin') "
                         "AND NOT rolcanlogin").fetchone()[0] == 3
        assert c.execute("SELECT pg_has_role('kpi_admin', 'kpi_reader', 'MEMBER')").fetchone()[0]
        public = c.execute(
            "SELECT n.nspname FROM pg_namespace n WHERE n.nspname IN ('kpi', 'kpi_internal') "
            "AND has_schema_privilege('public', n.oid, 'USAGE')").fetchall()
        assert public == []
        # no table of the extension is readable or writable by PUBLIC
        rows = c.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('kpi', 'kpi_internal') AND c.relkind IN ('r', 'p', 'v') "
            "AND (SELECT bool_or(a.grantee = 0) FROM aclexplode(c.relacl) a)").fetchall()
        assert rows == []
        # SECURITY DEFINER functions pin search_path with pg_catalog first
        bad = c.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname IN ('kpi', 'kpi_internal') AND p.prosecdef "
            "AND NOT coalesce(p.proconfig[1] LIKE 'search_path=pg_catalog%', false)").fetchall()
        assert bad == []


def test_a_login_without_a_kpi_role_reads_and_writes_nothing(roles):
    for sql in READ + [s for _, s in INGEST] + [s for _, s in DEFINE]:
        assert attempt(roles["none"], sql) == "42501", sql


def test_reader_reads_but_writes_nothing_and_sees_no_secrets(roles):
    for sql in READ:
        assert attempt(roles["reader"], sql) is None, sql
    for sql in SECRETS:
        assert attempt(roles["reader"], sql) == "42501", sql
    for what, sql in INGEST + DEFINE + SQL_JOBS:
        assert attempt(roles["reader"], sql) == "42501", what


def test_writer_ingests_but_defines_and_runs_nothing(roles, db):
    for what, sql in INGEST:
        assert attempt(roles["writer"], sql) is None, what
    with psycopg.connect(roles["writer"], autocommit=True) as c:
        with c.cursor().copy("COPY kpi.metrics (metric, value) FROM STDIN") as cp:
            cp.write_row(("m", 4))
    for what, sql in DEFINE + SQL_JOBS:
        assert attempt(roles["writer"], sql) == "42501", what
    for sql in SECRETS:
        assert attempt(roles["writer"], sql) == "42501", sql
    with psycopg.connect(db) as c:
        assert c.execute("SELECT count(*) FROM kpi.metrics WHERE value IN (1, 2, 3, 4) AND ts > now() - interval '1 minute'").fetchone()[0] == 4


def test_admin_defines_and_reads_secrets_and_sql_jobs_run_as_their_owner(roles, db):
    for sql in SECRETS:
        assert attempt(roles["admin"], sql) is None, sql
    for what, sql in DEFINE:
        assert attempt(roles["admin"], sql) is None, what
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE public.whoami (who text)")
        c.execute("GRANT INSERT ON public.whoami TO kpi_t_admin")
    with psycopg.connect(roles["admin"], autocommit=True) as a:
        mine = a.execute("SELECT kpi.add_job('sql', '{\"command\": \"INSERT INTO public.whoami SELECT current_user\"}', "
                         "schedule_interval => '1 hour')").fetchone()[0]
        up = a.execute("SELECT kpi.add_job('sql', '{\"command\": \"ALTER ROLE kpi_t_admin SUPERUSER\"}', "
                       "schedule_interval => '1 hour')").fetchone()[0]
        back = a.execute("SELECT kpi.add_job('sql', '{\"command\": \"RESET ROLE; INSERT INTO public.whoami SELECT current_user\"}', "
                         "schedule_interval => '1 hour')").fetchone()[0]
        setr = a.execute("SELECT kpi.add_job('sql', '{\"command\": \"SET ROLE postgres\"}', "
                         "schedule_interval => '1 hour')").fetchone()[0]
        owners = a.execute("SELECT DISTINCT owner FROM kpi.jobs WHERE kind = 'sql'").fetchall()
        assert owners == [("kpi_t_admin",)]
    for what, sql in SQL_JOBS:
        assert attempt(roles["admin"], sql) == "42501", what
    # the jobs run (as the job worker would, from a superuser session) as their owner
    with psycopg.connect(db, autocommit=True) as c:
        runs = {j: c.execute("SELECT status, sqlstate FROM kpi.run_job(%s)", (j,)).fetchone() for j in (mine, up, back, setr)}
        assert runs[mine] == ("success", None), runs
        assert runs[up] == ("failed", "42501"), runs          # must be superuser to alter superusers
        assert runs[back][0] == "failed", runs                 # no way back to the worker's role
        assert runs[setr] == ("failed", "42501"), runs
        assert c.execute("SELECT array_agg(who) FROM public.whoami").fetchone()[0] == ["kpi_t_admin"]
        assert not c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'kpi_t_admin'").fetchone()[0]
        assert c.execute("SELECT current_user").fetchone()[0] == "postgres"
        # a superuser may write an sql job owned by anyone, and it runs as that owner
        c.execute("UPDATE kpi.jobs SET owner = 'kpi_t_writer' WHERE id = %s", (mine,))
        c.execute("GRANT INSERT ON public.whoami TO kpi_t_writer")
        assert c.execute("SELECT status FROM kpi.run_job(%s)", (mine,)).fetchone()[0] == "success"
        assert c.execute("SELECT array_agg(who ORDER BY who) FROM public.whoami").fetchone()[0] == ["kpi_t_admin", "kpi_t_writer"]
        c.execute("DROP TABLE public.whoami")
    # another admin may not change the command of a job it does not own
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE kpi.jobs SET owner = 'postgres' WHERE id = %s", (mine,))
    assert attempt(roles["admin"], f"SELECT kpi.alter_job({mine}, config => '{{\"command\": \"SELECT 2\"}}')") == "42501"