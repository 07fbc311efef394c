"""Integration: what an operator sees. /metrics counts exactly the
test's own traffic and passes promtool; /healthz follows the broker
session; the retained status topic says online while the daemon runs
and offline after a SIGKILL (its last will)."""

import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

PAGEVIEW = "kompose/analytics/pageview"
FAILED = "kompose/vault/security/failed"
ARTICLE = "kompose/news/article/published"
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    """{(name, frozenset of (label, value))): float}"""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"',
                                          m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def retained(port, topic):
    out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p",
                          str(port), "-t", topic, "-C", "1", "-W", "5"],
                         capture_output=True, text=True, timeout=15)
    return out.stdout.strip()


class Observability(unittest.TestCase):

    def test_metrics_health_and_status(self):
        port = harness.free_port()
        with harness.Rig(metrics="127.0.0.1:%d" % port) as rig:
            status = "mqttrules/%s/status" % rig.daemon.client_id
            self.assertEqual(retained(rig.broker.port, status), "online")
            self.assertEqual(scrape(port, "/healthz"), (200, "ok\n"))

            rig.http.answer(harness.WEBHOOK_PATH, 503, times=1)
            rig.http.answer("/api/v1/links", 400, times=1)
            for n in range(3):
                rig.publish(PAGEVIEW, json.dumps({"n": n}))
            rig.publish(PAGEVIEW, "not json")
            for _ in range(2):
                rig.publish_json(FAILED, harness.sample(FAILED))
            rig.publish_json(ARTICLE, harness.sample(ARTICLE))
            rig.wait_log("kept as a dead letter")
            rig.wait_requests(lambda reqs: sum(
                r["path"] == harness.WEBHOOK_PATH and r["status"] == 200
                for r in reqs) == 4, timeout=15, what="4 forwards")
            rig.wait_log("rule=security-monitor", "failed login 2 of 3")
            time.sleep(0.3)

            code, text = scrape(port)
            self.assertEqual(code, 200)
            s = samples(text)
            fwd = "analytics-forwarder"
            self.assertEqual(value(s, "mqttrules_events_handled_total",
                                   rule=fwd), 4)
            self.assertEqual(value(s, "mqttrules_events_handled_total",
                                   rule="security-monitor"), 2)
            self.assertEqual(value(s, "mqttrules_events_failed_total",
                                   rule="article-to-bookmark"), 1)
            self.assertEqual(value(s, "mqttrules_events_dead_lettered_total",
                                   rule="article-to-bookmark"), 1)
            self.assertEqual(value(s, "mqttrules_messages_received_total",
                                   filter="kompose/analytics/#"), 4)
            self.assertEqual(value(s, "mqttrules_http_requests_total",
                                   rule=fwd, **{"class": "2xx"}), 4)
            self.assertEqual(value(s, "mqttrules_http_requests_total",
                                   rule=fwd, **{"class": "5xx"}), 1)
            self.assertEqual(value(s, "mqttrules_http_retries_total",
                                   rule=fwd), 1)
            self.assertEqual(value(s, "mqttrules_handler_duration_seconds_"
                                   "count", rule=fwd), 4)
            self.assertEqual(value(s, "mqttrules_http_request_duration_"
                                   "seconds_count", rule=fwd), 5)
            self.assertEqual(value(s, "mqttrules_mqtt_connected"), 1)
            self.assertEqual(value(s, "mqttrules_mqtt_subscriptions"), 3)
            self.assertEqual(value(s, "mqttrules_events_in_flight"), 0)
            # The security monitor's key; the article's dedupe key was
            # reset when its POST failed, so that a redelivery retries.
            self.assertEqual(value(s, "mqttrules_counters_keys"), 1)
            self.check_with_promtool(text)

            rig.broker.stop()
            deadline = time.monotonic() + 10
            while scrape(port, "/healthz")[0] == 200 and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(scrape(port, "/healthz"),
                             (503, "mqtt disconnected\n"))
            self.assertTrue(rig.broker._try_start(rig.broker.port, 10))
            rig.wait_log("mqtt: reconnected", timeout=40)
            self.assertEqual(retained(rig.broker.port, status), "online")

            rig.daemon.proc.send_signal(signal.SIGKILL)
            rig.daemon.proc.wait(10)
            self.assertEqual(retained(rig.broker.port, status), "offline")
            rig.daemon.proc = None
            rig.daemon.start()
            rig.wait_log("subscribed to", count=3)
            self.assertEqual(retained(rig.broker.port, status), "online")
        # A clean stop says offline itself (the rig stopped the daemon).

    def check_with_promtool(self, text):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool not installed")
        out = subprocess.run([promtool, "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_clean_stop_says_offline(self):
        with harness.Rig() as rig:
            status = "mqttrules/%s/status" % rig.daemon.client_id
            self.assertEqual(retained(rig.broker.port, status), "online")
            self.assertEqual(rig.daemon.stop(), 0)
            self.assertEqual(retained(rig.broker.port, status), "offline")


if __name__ == "__main__":
    unittest.main()
