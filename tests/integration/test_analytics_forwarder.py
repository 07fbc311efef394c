"""Integration: rules/analytics-forwarder.lua passes analytics events on to
an n8n webhook unchanged, through a real broker and the n8n stand-in."""

import json
import pathlib
import re
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

PAGEVIEW = "kompose/analytics/pageview"
CUSTOM = "kompose/analytics/event"


def forwarded(reqs, topic=None):
    return [r for r in reqs if r["service"] == "n8n"
            and (topic is None or (r["json"] or {}).get("topic") == topic)]


def has_forwarded(n, topic=None):
    return lambda reqs: len(forwarded(reqs, topic)) >= n


def embeds(raw, payload):
    """True when the request body holds payload, byte for byte, as the
    value of "event"."""
    pattern = rb'"event"\s*:\s*' + re.escape(payload) + rb'\s*[,}]'
    return re.search(pattern, raw) is not None


class AnalyticsForwarder(unittest.TestCase):

    def check_request(self, req, topic, payload):
        self.assertEqual(req["method"], "POST")
        self.assertEqual(req["path"], harness.WEBHOOK_PATH)
        self.assertTrue(req["headers"].get("content-type", "")
                        .startswith("application/json"))
        self.assertEqual(req["status"], 200)
        self.assertEqual(req["json"],
                         {"topic": topic, "event": json.loads(payload)})
        self.assertTrue(embeds(req["raw"], payload.encode()),
                        req["body"])

    def test_pageview_and_custom_event_are_forwarded(self):
        pageview = json.dumps(harness.sample(PAGEVIEW))
        custom = json.dumps(harness.sample(CUSTOM), indent=1)
        with harness.Rig() as rig:
            rig.publish(PAGEVIEW, pageview)
            rig.publish(CUSTOM, custom)
            reqs = rig.wait_requests(has_forwarded(2), what="2 forwards")
            self.assertEqual(len(reqs), 2)
            self.check_request(forwarded(reqs, PAGEVIEW)[0], PAGEVIEW,
                               pageview)
            self.check_request(forwarded(reqs, CUSTOM)[0], CUSTOM, custom)
            rig.wait_log("analytics-forwarder", "forwarded " + PAGEVIEW)

    def test_payload_arrives_byte_for_byte(self):
        # A number beyond 2^53, empty containers, key order, an escape
        # and a float's trailing zero: all lost by a decode and re-encode.
        payload = ('{"z": 9007199254740993, "a": [], "o": {}, '
                   '"s": "caf\\u00e9", "f": 1.50, "n": null}')
        with harness.Rig() as rig:
            rig.publish(PAGEVIEW, payload)
            reqs = rig.wait_requests(has_forwarded(1), what="the forward")
            req = forwarded(reqs)[0]
            self.assertTrue(embeds(req["raw"], payload.encode()),
                            req["body"])
            self.assertEqual(req["json"]["event"]["z"], 9007199254740993)

    def test_every_subtopic_and_no_other(self):
        deep = "kompose/analytics/web/shop/checkout"
        with harness.Rig() as rig:
            rig.publish("kompose/analyticsx/pageview", "{}")
            rig.publish("kompose/news/analytics", "{}")
            rig.publish(deep, '{"n": 1}')
            reqs = rig.wait_requests(has_forwarded(1, deep),
                                     what="the deep topic")
            self.assertEqual(len(forwarded(reqs)), 1)
            self.check_request(forwarded(reqs)[0], deep, '{"n": 1}')

    def test_webhook_error_fails_only_that_event(self):
        with harness.Rig() as rig:
            rig.http.answer(harness.WEBHOOK_PATH, 404, times=1)
            rig.publish(PAGEVIEW, '{"first": true}')
            rig.wait_log("analytics-forwarder", "status 404")
            rig.publish(PAGEVIEW, '{"second": true}')
            reqs = rig.wait_requests(has_forwarded(2), what="2 forwards")
            self.assertEqual([r["status"] for r in forwarded(reqs)],
                             [404, 200])

    def test_sigterm_lets_the_request_in_flight_finish(self):
        # The answer comes while the daemon leaves the broker (about
        # 0.1 s after SIGTERM) or later, while it drains.
        for delay in (0.05, 0.5):
            with self.subTest(delay=delay), harness.Rig() as rig:
                rig.http.answer(harness.WEBHOOK_PATH, None, delay=delay)
                rig.publish(PAGEVIEW, '{"late": true}')
                self.assertTrue(rig.http.wait_for(
                    has_forwarded(1), 10, answered=False))
                started = time.monotonic()
                status = rig.daemon.stop(timeout=15)
                took = time.monotonic() - started
                self.assertEqual(status, 0)
                self.assertLess(took, 5, "exit took %.1f s" % took)
                self.assertTrue(rig.log_lines("analytics-forwarder",
                                              "forwarded " + PAGEVIEW))


if __name__ == "__main__":
    unittest.main()
