"""Integration: [daemon] max_in_flight. A slow target holds the daemon at
the limit without it leaving the broker; a stalled one makes it leave
(intake paused) and come back; either way every event is forwarded once
and never more than max_in_flight at a time."""

import json
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

PAGEVIEW = "kompose/analytics/pageview"
LIMIT = 4


def pageviews(n):
    base = harness.sample(PAGEVIEW)
    out = []
    for seq in range(n):
        event = dict(base)
        event["data"] = dict(base["data"], seq=seq)
        out.append(json.dumps(event))
    return out


def seqs(reqs):
    return [r["json"]["event"]["data"]["seq"] for r in reqs
            if r["service"] == "n8n" and r.get("status") == 200]


def most_at_once(reqs):
    """The largest number of requests the target was answering at one
    moment."""
    edges = sorted([(r["time"], 1) for r in reqs] +
                   [(r["answered"], -1) for r in reqs])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


class Backpressure(unittest.TestCase):

    def run_through(self, n, delay, timeout, after):
        """Publishes n pageviews to a target answering after delay s,
        checks they are all forwarded once within the limit, then calls
        after(rig)."""
        env = {"MQTTRULES_DAEMON_MAX_IN_FLIGHT": str(LIMIT),
               "MQTTRULES_MQTT_SESSION": "persistent"}
        with harness.Rig(env=env) as rig:
            rig.http.answer(harness.WEBHOOK_PATH, delay=delay)
            rig.broker.publish_lines(PAGEVIEW, pageviews(n))
            reqs = rig.wait_requests(lambda rs: len(set(seqs(rs))) >= n,
                                     timeout=timeout,
                                     what="%d forwards" % n)
            self.assertEqual(sorted(seqs(reqs)), list(range(n)))
            self.assertLessEqual(most_at_once(reqs), LIMIT)
            after(rig)

    def test_slow_target_slows_intake_without_leaving_the_broker(self):
        # 0.3 s per request, 4 at a time: an event finishes every 75 ms,
        # so a message waiting for room never waits the whole second.
        def after(rig):
            self.assertEqual(rig.log_lines("pausing intake"), [])
            self.assertEqual(len(rig.log_lines("connected to mqtt://")), 1)
        self.run_through(40, 0.3, 30, after)

    def test_stalled_target_pauses_intake_and_loses_nothing(self):
        # 2.5 s per request: the queue (as long as the limit) stays full
        # for more than a second, so the daemon leaves the broker, and
        # the persistent session keeps the rest until it is back.
        def after(rig):
            self.assertGreaterEqual(len(rig.log_lines("pausing intake")), 1)
            rig.wait_log("resuming intake")
            rig.wait_log("reconnected to mqtt://")
        self.run_through(16, 2.5, 60, after)


if __name__ == "__main__":
    unittest.main()
