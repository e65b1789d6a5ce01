import os
import time
import uuid

import psycopg
import pytest

_SESSION_START = time.time()
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


def pytest_terminal_summary(terminalreporter):
    """test_hostile.py's outcome counts and every suspicious call (timeouts, XX000, crashes)."""
    import collections
    import json
    path = os.environ.get("KPI_HOSTILE_RESULTS", "/tmp/pg_kpi_hostile_results.jsonl")
    if not os.path.exists(path) or os.path.getmtime(path) < _SESSION_START:
        return
    rows = [json.loads(line) for line in open(path)]
    counts = collections.Counter(r["status"] for r in rows)
    terminalreporter.write_sep("-", f"hostile input: {dict(counts)} (details in {path})")
    for r in rows:
        if r["status"] in ("timeout", "xx000", "crash", "internal"):
            terminalreporter.write_line(f"{r['status']:8} {r['test']} [{r['arg']}={r['case']}]: {r['sql'][:200]}")
