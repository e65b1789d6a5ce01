"""A short soak (scripts/soak.py; the full two-minute run with its figures is
ONLY=soak bash scripts/bench.sh): pgbench clients insert through kpi.record,
100-row INSERTs and COPY while the worker rolls up, evaluates rules and
delivers, on a private server. No pgbench error, no deadlock, no failed job
run; afterwards the jobs catch up, summaries equal raw counts, nothing is
counted, raised or delivered twice. Throughput ratios are the benchmark's,
not asserted here."""

import pathlib
import sys
import uuid

import pytest

from pgserver import Server

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
import soak  # noqa: E402


@pytest.fixture
def server():
    s = Server("soak-" + uuid.uuid4().hex[:6]).init(databases="")
    s.start()
    yield s
    s.destroy()


@pytest.mark.parametrize("breach_all", [False, True], ids=["0.5% breaching", "every row breaching"])
def test_soak_short(server, breach_all):
    r = soak.run(server.dsn("kpi_soak"), seconds=24, clients=4, log=lambda *_: None, breach_all=breach_all)
    assert all(r["checks"].values()), r
    assert r["deadlocks"] == 0, r
    assert r["failed_job_runs"] == 0, r
    assert r["rows"] > 0 and r["summaries"] > 0 and r["alerts"] > 0 and r["notifications"] > 0, r
    assert r["webhook_posts"] > 0, r
    assert "terminated by signal" not in server.log()
