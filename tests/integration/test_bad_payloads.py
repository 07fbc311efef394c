"""Integration: payloads the shipped rules cannot use (not JSON, empty, a
JSON scalar, invalid UTF-8, the wrong shape) crash nothing, are logged by
the rule that got them, and the next good event is still handled."""

import json
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

ARTICLE = "kompose/news/article/published"
FAILED = "kompose/vault/security/failed"
PAGEVIEW = "kompose/analytics/pageview"

NOT_JSON = b"not json {"
EMPTY = b""
NUMBER = b"42"
STRING = b'"just a string"'
BAD_UTF8 = b"\xff\xfe\x80 bytes \xc3"
WRONG_SHAPE = b'{"data": {"published_url": 5, "email": ["x"]}}'
BAD = (NOT_JSON, EMPTY, NUMBER, STRING, BAD_UTF8, WRONG_SHAPE)


def on_path(reqs, path):
    return [r for r in reqs if r["path"].split("?")[0] == path]


class BadPayloads(unittest.TestCase):

    def publish_bad(self, rig, topic):
        for payload in BAD:
            rig.publish(topic, payload)

    def test_article_topic(self):
        with harness.Rig() as rig:
            self.publish_bad(rig, ARTICLE)
            rig.publish_json(ARTICLE, harness.sample(ARTICLE))
            reqs = rig.wait_requests(
                lambda rs: on_path(rs, "/api/v1/links"), what="the link")
            self.assertEqual(len(on_path(reqs, "/api/v1/links")), 1)
            self.assertEqual(len(rig.http.requests()), 3)
            log = ("article-to-bookmark", "skipped article: ")
            rig.wait_log(*log, "payload is not JSON", count=3)
            rig.wait_log(*log, "payload is a JSON number", count=1)
            rig.wait_log(*log, "payload is a JSON string", count=1)
            rig.wait_log(*log, "no data.published_url", count=1)
            self.assertEqual(len(rig.log_lines(*log)), 6)
            self.assertEqual(rig.error_lines(), [])

    def test_security_topic(self):
        with harness.Rig(env={"SECURITY_THRESHOLD": "1"}) as rig:
            self.publish_bad(rig, FAILED)
            good = harness.sample(FAILED)
            rig.publish_json(FAILED, good)
            reqs = rig.wait_requests(
                lambda rs: on_path(rs, "/message"), what="the alert")
            self.assertEqual(len(reqs), 1)
            self.assertIn(good["data"]["email"], reqs[0]["json"]["message"])
            log = ("security-monitor", "skipped failed login: ")
            rig.wait_log(*log, "payload is not JSON", count=3)
            rig.wait_log(*log, "no data object", count=2)
            rig.wait_log(*log, "must be non-empty strings", count=1)
            self.assertEqual(len(rig.log_lines(*log)), 6)
            self.assertEqual(rig.error_lines(), [])

    def test_analytics_topic(self):
        with harness.Rig() as rig:
            self.publish_bad(rig, PAGEVIEW)
            rig.publish(PAGEVIEW, b'{"good": true}')
            reqs = rig.wait_requests(lambda rs: len(rs) == len(BAD) + 1,
                                     what="every payload forwarded")
            # Concurrent requests may arrive in any order.
            events = sorted(json.dumps(r["json"]["event"]) for r in reqs)
            self.assertEqual(events, sorted(json.dumps(e) for e in [
                "not json {", "", 42, "just a string",
                "\ufffd\ufffd\ufffd bytes \ufffd",
                {"data": {"published_url": 5, "email": ["x"]}},
                {"good": True}]))
            for r in reqs:
                self.assertEqual(r["status"], 200)
                self.assertEqual(r["json"]["topic"], PAGEVIEW)
            rig.wait_log("analytics-forwarder", "payload on " + PAGEVIEW,
                         "not JSON; forwarding it as a string", count=3)
            rig.wait_log("analytics-forwarder", "forwarded " + PAGEVIEW,
                         count=len(BAD) + 1)
            self.assertEqual(rig.error_lines(), [])


if __name__ == "__main__":
    unittest.main()
