"""Alert delivery benchmark (ONLY=delivery bash scripts/bench.sh): a burst of
notifications drained by pg_kpi's delivery worker to a local webhook, beside
the application-side service it replaces (a Python process that polls the
outbox with FOR UPDATE SKIP LOCKED and POSTs each notification over a
keep-alive connection), and the latency from a committed alert to the
webhook's receipt.

Usage: python bench_delivery.py DSN [burst (default 10000)] [latency samples (default 50)]"""

import http.client
import json
import multiprocessing
import queue
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

DSN = sys.argv[1]
BURST = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
SAMPLES = int(sys.argv[3]) if len(sys.argv) > 3 else 50


def serve(port_out, arrivals):
    """The webhook: a keep-alive HTTP/1.1 receiver on loopback, in a process of its own
    (so that neither side's Python competes with it), reporting (host, arrival time)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.monotonic()
            payload = json.loads(body)
            hosts = [a["labels"].get("host") for a in payload.get("alerts", [])] or [payload.get("host")]
            arrivals.put((hosts, now))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


class Webhook:
    def __init__(self):
        self.seen = {}
        self.count = 0
        self.arrivals = multiprocessing.Queue()
        ports = multiprocessing.Queue()
        self.proc = multiprocessing.Process(target=serve, args=(ports, self.arrivals), daemon=True)
        self.proc.start()
        self.url = f"http://127.0.0.1:{ports.get()}/hook"

    def poll(self):
        """Takes in what arrived so far."""
        while True:
            try:
                hosts, at = self.arrivals.get_nowait()
            except queue.Empty:
                return
            self.count += 1
            for h in hosts:
                self.seen.setdefault(h, at)

    def has(self, n):
        self.poll()
        return len(self.seen) >= n

    def got(self, host):
        self.poll()
        return host in self.seen

    def reset(self):
        self.poll()
        self.seen.clear()
        self.count = 0


def fire(c, metric, hosts, value=1000):
    """One alert per host for `metric` (one rule evaluation, one transaction)."""
    c.execute(
        "INSERT INTO kpi.metrics (metric, value, ts, tags) "
        "SELECT %s, %s, now() - interval '2 seconds', jsonb_build_object('host', h) FROM unnest(%s::text[]) h",
        (metric, value, hosts),
    )
    return c.execute("SELECT count(*) FROM kpi.evaluate_alerts() WHERE state = 'firing'").fetchone()[0]


def wait(pred, timeout=600, every=0.05):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(every)


def python_service(dsn, url, stop):
    """The replaced pattern: poll the outbox, POST each notification, mark it delivered."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    with psycopg.connect(dsn) as c:
        while not stop.is_set():
            with c.transaction():
                rows = c.execute(
                    "SELECT id, payload FROM kpi.notifications WHERE delivered_at IS NULL "
                    "ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED"
                ).fetchall()
                done = []
                for nid, payload in rows:
                    body = json.dumps({"host": payload.get("series", {}).get("host"), "notification": payload})
                    conn.request("POST", "/hook", body, {"Content-Type": "application/json", "Idempotency-Key": str(nid)})
                    r = conn.getresponse()
                    r.read()
                    if 200 <= r.status < 300:
                        done.append(nid)
                if done:
                    c.execute("UPDATE kpi.notifications SET delivered_at = now() WHERE id = ANY(%s)", (done,))
            if not rows:
                time.sleep(0.05)


def main():
    hook = Webhook()
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute("UPDATE kpi.jobs SET enabled = false")
        for m in ("burst", "peer", "latency"):
            c.execute(
                "SELECT kpi.add_alert_rule(%s, %s, 'max', '1 minute', '>', 100, group_by => '{host}')",
                (m, m),
            )
        c.execute("SELECT kpi.add_receiver('bench', 'webhook', %s)", (hook.url,))
        # the delivery worker starts with the receiver
        wait(lambda: c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_kpi delivery' "
                               "AND datname = current_database()").fetchone()[0] == 1, 30)
        hosts = [f"h{i}" for i in range(BURST)]

        # 1. a burst drained by the delivery worker
        t0 = time.monotonic()
        assert fire(c, "burst", hosts) >= BURST
        committed = time.monotonic()
        wait(lambda: hook.has(BURST), every=0.005)
        received = time.monotonic()
        wait(lambda: c.execute("SELECT count(*) FROM kpi.deliveries WHERE status = 'pending'").fetchone()[0] == 0)
        recorded = time.monotonic()
        failures = c.execute("SELECT count(*) FROM kpi.delivery_attempts WHERE error IS NOT NULL").fetchone()[0]
        delivered = c.execute("SELECT count(*) FROM kpi.deliveries WHERE status = 'delivered'").fetchone()[0]
        kpi_rate = BURST / (recorded - committed)
        print(f"burst of {BURST} notifications: rule evaluation and queueing {committed - t0:.2f} s, "
              f"all received {received - committed:.2f} s after the commit, all recorded {recorded - committed:.2f} s")
        hook.poll()
        print(f"  delivered {delivered}, failed attempts {failures}, requests {hook.count}")

        # 2. the same burst drained by an application-side Python service
        c.execute("SELECT kpi.drop_receiver('bench')")
        wait(lambda: c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_kpi delivery' "
                               "AND datname = current_database()").fetchone()[0] == 0, 30)
        c.execute("UPDATE kpi.notifications SET delivered_at = coalesce(delivered_at, now())")
        hook.reset()
        assert fire(c, "peer", hosts) >= BURST
        stop = threading.Event()
        committed = time.monotonic()
        svc = threading.Thread(target=python_service, args=(DSN, hook.url, stop))
        svc.start()
        wait(lambda: c.execute("SELECT count(*) FROM kpi.notifications WHERE delivered_at IS NULL").fetchone()[0] == 0)
        done = time.monotonic()
        stop.set()
        svc.join()
        peer_rate = BURST / (done - committed)
        print(f"{'':2}the Python outbox service: all delivered and recorded {done - committed:.2f} s after the commit")
        print(f"throughput: pg_kpi {kpi_rate:,.0f}/s, Python service {peer_rate:,.0f}/s, ratio {kpi_rate / peer_rate:.2f}x")

        # 3. latency from a committed alert to the webhook's receipt (a receiver of the latency
        # rule's alerts only: the burst's alerts resolving meanwhile are not queued ahead of them)
        c.execute("SELECT kpi.add_receiver('bench', 'webhook', %s, matchers => '{\"rule\": \"latency\"}')",
                  (hook.url,))
        wait(lambda: c.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_kpi delivery' "
                               "AND datname = current_database()").fetchone()[0] == 1, 30)
        hook.reset()
        lat = []
        for i in range(SAMPLES):
            h = f"l{i}"
            assert fire(c, "latency", [h]) >= 1
            t = time.monotonic()
            wait(lambda: hook.got(h), 30, every=0.001)
            lat.append((hook.seen[h] - t) * 1000)
        lat.sort()
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        print(f"latency from commit to receipt over {SAMPLES} alerts: median {statistics.median(lat):.1f} ms, "
              f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms")
        c.execute("SELECT kpi.drop_receiver('bench')")


if __name__ == "__main__":
    main()
