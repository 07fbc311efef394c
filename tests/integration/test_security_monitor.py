"""Integration: rules/security-monitor.lua counts failed logins per email
and IP and alerts Gotify and the broker, through a real broker and the
Gotify stand-in."""

import json
import pathlib
import re
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

TOPIC = "kompose/vault/security/failed"
ALERT_TOPIC = "kompose/system/alert/triggered"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def failure(email, ip, reason="invalid_password"):
    return {"event": "security.failed", "timestamp": "2025-10-12T14:30:00Z",
            "data": {"email": email, "ip_address": ip, "reason": reason,
                     "attempt_count": 1}}


def alerts(reqs, email=None, ip=None):
    """Gotify messages, optionally only those naming email and ip (IPs in
    these tests are never prefixes of one another)."""
    found = []
    for r in reqs:
        if r["method"] != "POST" or r["path"].split("?")[0] != "/message":
            continue
        text = (r["json"] or {}).get("message", "")
        if (email is None or email in text) and (ip is None or ip in text):
            found.append(r)
    return found


def has_alerts(n, email=None, ip=None):
    return lambda reqs: len(alerts(reqs, email, ip)) >= n


class SecurityMonitor(unittest.TestCase):

    def fail_times(self, rig, n, email, ip, reason="invalid_password"):
        for _ in range(n):
            rig.publish_json(TOPIC, failure(email, ip, reason))

    def raise_marker(self, rig, n_alerts, email="marker@example.com",
                     ip="10.99.99.99"):
        """Three failures of another pair: once their alert arrived, every
        event published before has been counted."""
        self.fail_times(rig, 3, email, ip)
        return rig.wait_requests(has_alerts(n_alerts, email, ip),
                                 what="the marker alert")

    def test_threshold_alert_and_count_restart(self):
        email, ip = "alice@example.com", "10.1.1.1"
        with harness.Rig() as rig:
            self.fail_times(rig, 2, email, ip)
            reqs = self.raise_marker(rig, 1)
            self.assertEqual(alerts(reqs, email, ip), [], "2 failures")

            self.fail_times(rig, 1, email, ip, reason="locked")
            reqs = rig.wait_requests(has_alerts(1, email, ip),
                                     what="the alert after 3 failures")
            self.check_alert(alerts(reqs, email, ip)[0], email, ip)

            # The count started again from zero after the alert.
            self.fail_times(rig, 2, email, ip)
            reqs = self.raise_marker(rig, 2)
            self.assertEqual(len(alerts(reqs, email, ip)), 1)
            self.fail_times(rig, 1, email, ip)
            reqs = rig.wait_requests(has_alerts(2, email, ip),
                                     what="the second alert")
            reqs = self.raise_marker(rig, 3)
            self.assertEqual(len(alerts(reqs, email, ip)), 2)
            self.assertNotIn(harness.GOTIFY_TOKEN, rig.daemon.log_text())
            self.assertEqual(rig.error_lines(), [])

    def check_alert(self, req, email, ip):
        self.assertEqual(req["method"], "POST")
        self.assertEqual(req["path"], "/message")
        self.assertNotIn(harness.GOTIFY_TOKEN, req["path"])
        self.assertEqual(req["headers"].get("x-gotify-key"),
                         harness.GOTIFY_TOKEN)
        self.assertTrue(req["headers"].get("content-type", "")
                        .startswith("application/json"))
        self.assertEqual(req["status"], 200)
        body = req["json"]
        self.assertEqual(body["priority"], 8)
        self.assertIsInstance(body["title"], str)
        self.assertTrue(body["title"])
        self.assertIn("3 failed logins for %s from %s within 1 hour"
                      % (email, ip), body["message"])
        self.assertIn("locked", body["message"])

    def test_different_ips_are_different_keys(self):
        email = "bob@example.com"
        with harness.Rig() as rig:
            self.fail_times(rig, 2, email, "10.2.2.1")
            self.fail_times(rig, 2, email, "10.2.2.2")
            self.fail_times(rig, 1, email, "10.2.2.1")
            rig.wait_requests(has_alerts(1, email, "10.2.2.1"),
                              what="the alert for the first IP")
            reqs = self.raise_marker(rig, 1)
            self.assertEqual(len(alerts(reqs, email)), 1)
            self.assertEqual(alerts(reqs, email, "10.2.2.2"), [])

    def test_alert_is_emitted_on_the_broker(self):
        email, ip = "carol@example.com", "10.3.3.3"
        with harness.Rig() as rig:
            sub = rig.subscribe(ALERT_TOPIC, count=1, timeout=10)
            self.fail_times(rig, 2, email, ip)
            self.fail_times(rig, 1, email, ip, reason="account_locked")
            msgs = sub.messages()
            self.assertEqual(len(msgs), 1, msgs)
            topic, payload = msgs[0]
            self.assertEqual(topic, ALERT_TOPIC)
            envelope = json.loads(payload)
            self.assertEqual(envelope["event"], "alert.triggered")
            self.assertRegex(envelope["timestamp"], ISO_UTC)
            data = envelope["data"]
            self.assertEqual(data["email"], email)
            self.assertEqual(data["ip_address"], ip)
            self.assertEqual(data["count"], 3)
            self.assertEqual(data["window_seconds"], 3600)
            self.assertEqual(data["reason"], "account_locked")
            self.assertIsInstance(data["type"], str)
            rig.wait_requests(has_alerts(1, email, ip), what="the alert")

    def test_settings_come_from_the_environment(self):
        email, ip = "dave@example.com", "10.4.4.4"
        env = {"SECURITY_THRESHOLD": "2", "SECURITY_WINDOW": "60",
               "SECURITY_PRIORITY": "15"}
        with harness.Rig(env=env) as rig:
            self.fail_times(rig, 2, email, ip)
            reqs = rig.wait_requests(has_alerts(1, email, ip),
                                     what="the alert after 2 failures")
            body = alerts(reqs)[0]["json"]
            self.assertEqual(body["priority"], 10)
            self.assertIn("2 failed logins for %s from %s within 1 minute"
                          % (email, ip), body["message"])

    def test_failures_older_than_the_window_do_not_count(self):
        email, ip = "erin@example.com", "10.5.5.5"
        env = {"SECURITY_THRESHOLD": "2", "SECURITY_WINDOW": "3"}
        with harness.Rig(env=env) as rig:
            self.fail_times(rig, 1, email, ip)
            rig.wait_log("security-monitor", "failed login 1 of 2")
            # Time passing is the point here: the first failure must
            # leave the 3 s window.
            time.sleep(4.2)
            self.fail_times(rig, 1, email, ip)
            self.fail_times(rig, 2, "marker@example.com", "10.99.99.99")
            reqs = rig.wait_requests(has_alerts(1, "marker@example.com"),
                                     what="the marker alert")
            self.assertEqual(alerts(reqs, email, ip), [])

    def test_gotify_error_fails_the_event(self):
        email, ip = "frank@example.com", "10.6.6.6"
        with harness.Rig() as rig:
            rig.http.answer("/message", 401, times=1)
            self.fail_times(rig, 3, email, ip)
            rig.wait_log("security-monitor", "status 401")
            reqs = self.raise_marker(rig, 1)
            self.assertEqual(len(alerts(reqs, email, ip)), 1)


if __name__ == "__main__":
    unittest.main()
