"""Alert delivery against real HTTP servers on loopback: bodies and headers
as sent, retries after errors, timeouts and redirect loops with nothing lost
and no receiver blocking another; the delivery worker delivering on its own,
past a hanging receiver while the job worker keeps running, and after a
server restart with nothing sent twice; and a real Prometheus Alertmanager
(Debian's prometheus-alertmanager) receiving rule alerts, routing them to a
webhook, and silencing them."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from test_worker import WORKER_DB, WORKER_DSN, wait_for, wdb  # noqa: F401  (fixture)

DATA = os.environ.get("KPI_TEST_DATA", "/var/tmp/pg_kpi/test-cluster")


class Receiver:
    """A loopback HTTP server recording what it gets; each path answers its way."""

    def __init__(self, port=0):
        self.requests = []
        self.times = []
        self.fail = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.times.append((self.path, time.monotonic()))
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                if self.path == "/hang":
                    time.sleep(3)
                if self.path == "/loop":
                    self.send_response(307)
                    self.send_header("Location", "/loop")
                    self.end_headers()
                    return
                code = 500 if self.path == "/flaky" and outer.fail else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path):
        return [r for r in self.requests if r[0] == path]


    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def fire(conn, at="2026-01-01 12:00:10+00"):
    conn.execute(
        "SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '1 minute', '>', 300, group_by => '{host}', "
        "annotations => '{\"summary\": \"{{labels.host}} is slow\"}')"
    )
    conn.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 400, '2026-01-01 12:00:00+00', '{\"host\": \"a\"}')")
    return conn.execute("SELECT count(*) FROM kpi.evaluate_alerts(%s)", (at,)).fetchone()[0]


def test_bodies_headers_retries_and_no_loss(db, receiver):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE kpi.jobs SET enabled = false")
        c.execute("SET kpi.delivery_timeout = '500ms'")
        c.execute("SELECT kpi.add_receiver('hook', 'webhook', %s, headers => '{\"Authorization\": \"Bearer s3cret\"}')", (receiver.url + "/ok",))
        c.execute("SELECT kpi.add_receiver('chat', 'slack', %s)", (receiver.url + "/slack",))
        c.execute("SELECT kpi.add_receiver('flaky', 'webhook', %s)", (receiver.url + "/flaky",))
        c.execute("SELECT kpi.add_receiver('hang', 'webhook', %s)", (receiver.url + "/hang",))
        c.execute("SELECT kpi.add_receiver('loop', 'webhook', %s)", (receiver.url + "/loop",))
        c.execute("SELECT kpi.add_receiver('down', 'webhook', 'http://127.0.0.1:1/')")
        assert fire(c) == 1
        nid = c.execute("SELECT id FROM kpi.notifications").fetchone()[0]
        got = dict(
            (r, (s, code, err is not None))
            for r, _, s, code, err in c.execute("SELECT * FROM kpi.deliver_now()").fetchall()
        )
        assert got == {
            "hook": ("delivered", 200, False),
            "chat": ("delivered", 200, False),
            "flaky": ("pending", 500, True),
            "hang": ("pending", None, True),
            "loop": ("pending", None, True),
            "down": ("pending", None, True),
        }
        # what the webhook got: Alertmanager's webhook JSON, the receiver's header, an idempotency key
        (_, headers, body), = receiver.to("/ok")
        assert headers["authorization"] == "Bearer s3cret"
        assert headers["idempotency-key"] == str(nid)
        assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "hook"
        alert = body["alerts"][0]
        assert alert["labels"] == {"alertname": "HighLatency", "host": "a", "metric": "lat", "severity": "warning", "source": "rule"}
        assert alert["annotations"]["summary"] == "a is slow"
        assert "s3cret" not in json.dumps(body)
        (_, _, slack), = receiver.to("/slack")
        assert slack["text"] == "[FIRING:warning] HighLatency: a is slow"
        # the flaky receiver comes back: delivered once on the retry, nothing twice
        receiver.fail = False
        c.execute("UPDATE kpi.deliveries SET next_attempt_at = now()")
        again = dict((r, s) for r, _, s, _, _ in c.execute("SELECT * FROM kpi.deliver_now()").fetchall())
        assert again["flaky"] == "delivered" and "hook" not in again
        assert len(receiver.to("/ok")) == 1 and len(receiver.to("/flaky")) == 2
        attempts = dict(c.execute(
            "SELECT r.name, count(*) FROM kpi.delivery_attempts t JOIN kpi.alert_receivers r ON r.id = t.receiver_id GROUP BY 1"
        ).fetchall())
        assert attempts == {"hook": 1, "chat": 1, "flaky": 2, "hang": 2, "loop": 2, "down": 2}
        status = dict((r, (p, d)) for r, p, d in c.execute(
            "SELECT receiver, pending, delivered_last_hour FROM kpi.delivery_status").fetchall())
        assert status["flaky"] == (0, 1) and status["down"] == (1, 0)
        # given up once the notification is older than kpi.delivery_max_age
        c.execute("UPDATE kpi.deliveries SET created_at = now() - interval '2 days', next_attempt_at = now()")
        final = dict((r, s) for r, _, s, _, _ in c.execute("SELECT * FROM kpi.deliver_now()").fetchall())
        assert final == {"hang": "failed", "loop": "failed", "down": "failed"}


def test_a_receiver_that_is_down_gets_one_attempt_per_stream(db):
    """Twelve notifications to a webhook that is down: one attempt per stream
    (at most 4) in a round, the others wait for the same retry; none is lost."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("UPDATE kpi.jobs SET enabled = false")
        c.execute("SELECT kpi.add_receiver('down', 'webhook', 'http://127.0.0.1:1/')")
        c.execute("SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '1 minute', '>', 300, group_by => '{host}')")
        c.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) SELECT 'lat', 400, '2026-01-01 12:00:00+00', "
                  "jsonb_build_object('host', 'h' || g) FROM generate_series(1, 12) g")
        assert c.execute("SELECT count(*) FROM kpi.evaluate_alerts('2026-01-01 12:00:10+00')").fetchone()[0] == 12
        sent = c.execute("SELECT count(*) FROM kpi.deliver_now()").fetchone()[0]
        assert 1 <= sent <= 4
        assert c.execute("SELECT count(*) FROM kpi.delivery_attempts").fetchone()[0] == sent
        waiting = c.execute(
            "SELECT count(*) FILTER (WHERE next_attempt_at > now()), count(*) FILTER (WHERE status = 'pending') "
            "FROM kpi.deliveries").fetchone()
        assert waiting == (12, 12)
        assert c.execute("SELECT count(*) FROM kpi.deliver_now()").fetchone()[0] == 0


def delivery_pid(conn):
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_kpi delivery' AND datname = %s", (WORKER_DB,)
    ).fetchone()
    return row[0] if row else None


def test_the_worker_delivers_on_its_own(wdb, receiver):
    # no receiver, no delivery worker
    time.sleep(1.5)
    assert delivery_pid(wdb) is None
    wdb.execute("SELECT kpi.add_receiver('hook', 'webhook', %s)", (receiver.url + "/ok",))
    wdb.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    # the receiver's commit starts it
    wait_for(wdb, "SELECT delivery_pid IS NOT NULL FROM kpi.worker_status() WHERE database = %s", (WORKER_DB,))
    wait_for(wdb, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_kpi delivery' AND datname = %s",
             (WORKER_DB,))
    pid = delivery_pid(wdb)
    assert fire(wdb) == 1
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.deliveries WHERE status = 'delivered'", timeout=30)
    assert len(receiver.to("/ok")) == 1
    assert wdb.execute("SELECT delivered_at IS NOT NULL FROM kpi.notifications").fetchone()[0]
    # a receiver added later is used without a restart, and hears of the alert already firing
    wdb.execute("SELECT kpi.add_receiver('chat', 'slack', %s)", (receiver.url + "/slack",))
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 900, '2026-01-01 12:00:20+00', '{\"host\": \"b\"}')")
    wdb.execute("SELECT kpi.evaluate_alerts('2026-01-01 12:00:30+00')")
    wait_for(wdb, "SELECT count(*) = 4 FROM kpi.deliveries WHERE status = 'delivered'", timeout=30)
    assert sorted(b["text"] for _, _, b in receiver.to("/slack")) == [
        "[FIRING:warning] HighLatency: a is slow", "[FIRING:warning] HighLatency: b is slow"]
    assert len(receiver.to("/ok")) == 2 and delivery_pid(wdb) == pid
    # SIGTERM: the launcher starts another
    wdb.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_for(wdb, "SELECT delivery_pid IS NOT NULL AND delivery_pid <> %s FROM kpi.worker_status() WHERE database = %s",
             (pid, WORKER_DB), timeout=30)
    # with no enabled receiver left it exits
    wdb.execute("UPDATE kpi.alert_receivers SET enabled = false")
    wait_for(wdb, "SELECT delivery_pid IS NULL FROM kpi.worker_status() WHERE database = %s", (WORKER_DB,))
    assert delivery_pid(wdb) is None


def test_a_hanging_receiver_blocks_nobody(wdb, receiver):
    wdb.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    wdb.execute("CREATE TABLE ticks (at timestamptz)")
    wdb.execute("SELECT kpi.add_job('sql', '{\"command\": \"INSERT INTO ticks VALUES (now())\"}', '1 second')")
    wdb.execute("SELECT kpi.add_receiver('hang', 'webhook', %s)", (receiver.url + "/hang",))
    wdb.execute("SELECT kpi.add_receiver('ok', 'webhook', %s)", (receiver.url + "/ok",))
    wait_for(wdb, "SELECT delivery_pid IS NOT NULL FROM kpi.worker_status() WHERE database = %s", (WORKER_DB,))
    assert fire(wdb) == 1
    wait_for(wdb, "SELECT count(*) = 2 FROM kpi.deliveries WHERE status = 'delivered'", timeout=30)
    (_, hang_at), = [t for t in receiver.times if t[0] == "/hang"]
    (_, ok_at), = [t for t in receiver.times if t[0] == "/ok"]
    # the fast receiver got its notification while the slow one was still answering
    assert ok_at < hang_at + 2.5
    # and the job worker ran its job meanwhile
    assert wdb.execute("SELECT count(*) FROM ticks").fetchone()[0] >= 1


def restart_cluster():
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    cmd = [f"{bindir}/pg_ctl", "-D", DATA, "-w", "-m", "fast", "restart", "-l", f"{DATA}/server.log"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True)


def test_undelivered_notifications_survive_a_restart(wdb):
    # a receiver that is down: every attempt fails, nothing is lost
    down = Receiver()
    port = down.port
    down.stop()
    wdb.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    wdb.execute("SELECT kpi.add_receiver('later', 'webhook', %s)", (f"http://127.0.0.1:{port}/ok",))
    fire(wdb)
    wdb.execute(
        "INSERT INTO kpi.metrics (metric, value, ts, tags) SELECT 'lat', 500, '2026-01-01 12:00:20+00', "
        "jsonb_build_object('host', h) FROM unnest(array['b', 'c']) h"
    )
    wdb.execute("SELECT kpi.evaluate_alerts('2026-01-01 12:00:30+00')")
    wait_for(wdb, "SELECT count(*) = 3 FROM kpi.deliveries WHERE attempts >= 1 AND status = 'pending'", timeout=30)
    wdb.close()
    restart_cluster()
    up = Receiver(port)
    try:
        with psycopg.connect(WORKER_DSN, autocommit=True) as c:
            wait_for(c, "SELECT count(*) = 3 FROM kpi.deliveries WHERE status = 'delivered'", timeout=60)
            time.sleep(1.5)
            keys = [h["idempotency-key"] for _, h, _ in up.to("/ok")]
            # each once: nothing sent twice
            assert len(keys) == 3 and len(set(keys)) == 3
            assert c.execute("SELECT count(*) FROM kpi.notifications WHERE delivered_at IS NULL").fetchone()[0] == 0
    finally:
        up.stop()


# ---- a real Prometheus Alertmanager ----------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def am_get(base, path):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        return json.load(r)


def am_post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def until(check, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def alertmanager(receiver):
    """Prometheus Alertmanager on a loopback port, routing every alert to the test's webhook."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "prometheus-alertmanager is not installed (scripts/test.sh installs it)"
    tmp = tempfile.mkdtemp(prefix="kpi_am_")
    port = free_port()
    with open(os.path.join(tmp, "am.yml"), "w") as f:
        f.write(f"""
route:
  receiver: hook
  group_by: [alertname, host]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {receiver.url}/am
        send_resolved: true
""")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp}/am.yml", f"--storage.path={tmp}/data",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "am.log"), "w"),
    )
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail(open(os.path.join(tmp, "am.log")).read())

    until(ready, what="Alertmanager to be ready")
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def am_notifications(receiver, host):
    return [(b["status"], a["status"]) for _, _, b in receiver.to("/am") for a in b["alerts"]
            if a["labels"].get("host") == host]


def test_alertmanager_receives_routes_and_silences(wdb, receiver, alertmanager):
    wdb.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    wdb.execute("SELECT kpi.add_receiver('am', 'alertmanager', %s)", (alertmanager,))
    wdb.execute(
        "SELECT kpi.add_alert_rule('HighLatency', 'lat', 'avg', '1 minute', '>', 300, 1000, group_by => '{host,k8s.pod}', "
        "labels => '{\"team\": \"api\"}', annotations => '{\"summary\": \"{{labels.host}} is slow\", \"runbook\": \"https://wiki/{{rule}}\"}')"
    )
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 400, now() - interval '5 seconds', '{\"host\": \"a\", \"k8s.pod\": \"p-1\"}')")
    wdb.execute("SELECT kpi.evaluate_alerts()")
    # the alert reaches Alertmanager's API with Prometheus's labels
    def firing():
        return [a for a in am_get(alertmanager, "/api/v2/alerts") if a["labels"].get("host") == "a"]
    (alert,) = until(firing, what="the alert in Alertmanager")
    assert alert["labels"] == {"alertname": "HighLatency", "host": "a", "k8s_pod": "p-1", "team": "api",
                               "severity": "warning", "metric": "lat", "source": "rule"}
    assert alert["annotations"] == {"summary": "a is slow", "runbook": "https://wiki/HighLatency"}
    assert alert["status"]["state"] == "active"
    # Alertmanager routes it to the webhook: firing ...
    until(lambda: ("firing", "firing") in am_notifications(receiver, "a"), what="the firing notification")
    # a silence created in Alertmanager suppresses host b
    now = time.time()
    am_post(alertmanager, "/api/v2/silences", {
        "matchers": [{"name": "alertname", "value": "HighLatency", "isRegex": False},
                     {"name": "host", "value": "b", "isRegex": False}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
        "createdBy": "pg_kpi tests", "comment": "maintenance of b"})
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 2000, now() - interval '5 seconds', '{\"host\": \"b\"}')")
    wdb.execute("SELECT kpi.evaluate_alerts()")
    def silenced():
        got = [a for a in am_get(alertmanager, "/api/v2/alerts") if a["labels"].get("host") == "b"]
        return got and got[0]["status"]["state"] == "suppressed" and got[0]
    b = until(silenced, what="the silenced alert")
    assert b["labels"]["severity"] == "critical" and b["status"]["silencedBy"]
    # ... then resolved
    wdb.execute("INSERT INTO kpi.metrics (metric, value, ts, tags) VALUES ('lat', 10, now() - interval '1 second', '{\"host\": \"a\", \"k8s.pod\": \"p-1\"}'), "
                "('lat', 10, now() - interval '1 second', '{\"host\": \"a\", \"k8s.pod\": \"p-1\"}')")
    assert wdb.execute("SELECT count(*) FROM kpi.evaluate_alerts() WHERE state = 'resolved'").fetchone()[0] == 1
    until(lambda: ("resolved", "resolved") in am_notifications(receiver, "a"), what="the resolved notification")
    time.sleep(2)
    # the silenced alert never reached the webhook
    assert am_notifications(receiver, "b") == []
    # everything was delivered to Alertmanager (firing a, firing b, resolved a)
    assert wdb.execute("SELECT count(*) FROM kpi.deliveries WHERE status = 'delivered'").fetchone()[0] == 3
