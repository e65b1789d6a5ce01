"""Alert delivery against real HTTP servers on loopback: bodies and headers
as sent, retries after errors, timeouts and redirect loops with nothing lost
and no receiver blocking another, and the worker delivering on its own."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from test_worker import wait_for, wdb  # noqa: F401  (fixture)


class Receiver:
    """A loopback HTTP server recording what it gets; each path answers its way."""

    def __init__(self):
        self.requests = []
        self.fail = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path):
        return [r for r in self.requests if r[0] == path]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


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


def test_the_worker_delivers_on_its_own(wdb, receiver):
    wdb.execute("SELECT kpi.add_receiver('hook', 'webhook', %s)", (receiver.url + "/ok",))
    wdb.execute("UPDATE kpi.jobs SET enabled = false WHERE kind = 'rules'")
    assert fire(wdb) == 1
    wait_for(wdb, "SELECT count(*) = 1 FROM kpi.deliveries WHERE status = 'delivered'", timeout=30)
    assert len(receiver.to("/ok")) == 1
    assert wdb.execute("SELECT delivered_at IS NOT NULL FROM kpi.notifications").fetchone()[0]
