"""Integration: a message the daemon has taken and handled, whose
acknowledgement the broker never got (the connection was cut first), is
sent again by the broker after the reconnect, and is not handled twice;
while a new message that merely looks the same (same packet identifier,
topic and payload, after a broker restart) is handled. The cuts are made
by a TCP relay between daemon and broker."""

import json
import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

PAGEVIEW = "kompose/analytics/pageview"


def forwards(reqs):
    return [r for r in reqs if r["service"] == "n8n"]


class Redelivery(unittest.TestCase):

    def test_a_resend_of_a_handled_message_is_not_handled_again(self):
        payload = json.dumps(harness.sample(PAGEVIEW))
        with harness.Rig(cutter=True, session="persistent") as rig:
            rig.cutter.drop_upstream = True     # the PUBACK gets lost
            rig.broker.publish(PAGEVIEW, payload)
            rig.wait_requests(lambda rs: len(forwards(rs)) == 1,
                              what="the forward")
            rig.wait_log("analytics-forwarder", "forwarded")
            time.sleep(0.5)     # the acknowledgement has gone (nowhere)
            rig.cutter.cut()
            rig.cutter.drop_upstream = False
            rig.wait_log("reconnected to mqtt://", timeout=20)
            rig.wait_log("sent again after a reconnect", timeout=10)
            time.sleep(1)
            self.assertEqual(len(forwards(rig.http.requests())), 1)
            # The broker got the acknowledgement this time: nothing more.
            rig.broker.publish(PAGEVIEW, payload)
            rig.wait_requests(lambda rs: len(forwards(rs)) == 2,
                              what="the next forward")
            self.assertEqual(
                len(rig.log_lines("sent again after a reconnect")), 1)

    def test_a_new_message_with_an_old_identifier_is_handled(self):
        # The broker restarts without its store: packet identifiers
        # start again, so the next message to the daemon carries the
        # identifier, topic and payload of the one before the restart.
        # It is lost in transit and comes back with DUP after a cut.
        payload = json.dumps(harness.sample(PAGEVIEW))
        with harness.Rig(cutter=True, session="persistent") as rig:
            rig.broker.publish(PAGEVIEW, payload)
            rig.wait_requests(lambda rs: len(forwards(rs)) == 1,
                              what="the first forward")
            rig.broker.stop()
            rig.broker.start()
            rig.cutter.target_port = rig.broker.port
            rig.wait_log("reconnected to mqtt://", timeout=30)
            rig.wait_log("subscribed to", count=2, timeout=10)
            rig.cutter.drop_downstream = True   # the PUBLISH gets lost
            rig.broker.publish(PAGEVIEW, payload)
            time.sleep(0.5)
            rig.cutter.cut()
            rig.cutter.drop_downstream = False
            rig.wait_requests(lambda rs: len(forwards(rs)) == 2,
                              timeout=20, what="the resent message")
            self.assertEqual(rig.log_lines("sent again"), [])


if __name__ == "__main__":
    unittest.main()
