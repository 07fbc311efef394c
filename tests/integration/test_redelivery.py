"""Integration: a message the daemon has taken and handled, whose
acknowledgement the broker never got (the connection was cut first), is
sent again by the broker after the reconnect, and is not handled twice.
The cut is made by a TCP relay between daemon and broker."""

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


if __name__ == "__main__":
    unittest.main()
