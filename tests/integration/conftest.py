import os
import uuid

import psycopg
import pytest

DSN = os.environ.get("KPI_TEST_DSN", "host=localhost port=28816 dbname=postgres user=postgres")


@pytest.fixture
def db():
    """A fresh database with pg_kpi, dropped afterwards; yields its DSN."""
    name = "kpi_it_" + uuid.uuid4().hex[:10]
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = DSN.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION pg_kpi")
    try:
        yield dsn
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
