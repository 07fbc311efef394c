"""Integration: a message whose topic matches the filters of several
rules reaches each of them exactly once, however the filters overlap;
after the broker restarts, the daemon reconnects and every subscription
is in place again."""

import collections
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

# Each rule posts what it gets on its filter, naming itself.
FILTERS = {"wide": "o/#", "middle": "o/+/c", "exact": "o/b/c",
           "second": "+/b/#"}
RULE = """
local url = env("N8N_WEBHOOK_URL")
on("%s", function(_, msg)
  local res = http_post(url, {rule = "%s", topic = msg.topic,
                              payload = msg.payload})
  if not res.ok then error("post failed: " .. res.status) end
end)
"""


def seen(rig):
    return collections.Counter(
        (r["json"]["rule"], r["json"]["topic"], r["json"]["payload"])
        for r in rig.http.requests() if r.get("json"))


class OverlapAndReconnect(unittest.TestCase):

    def setUp(self):
        self.rules = pathlib.Path(tempfile.mkdtemp(prefix="overlap-"))
        self.addCleanup(shutil.rmtree, self.rules, True)
        for name, filter_ in FILTERS.items():
            (self.rules / (name + ".lua")).write_text(
                RULE % (filter_, name))

    def test_check_lists_the_reduced_subscriptions(self):
        out = subprocess.run(
            [str(harness.daemon_binary()), "check", "-c", "/dev/null"],
            env={"MQTTRULES_RULES_DIR": str(self.rules),
                 "N8N_WEBHOOK_URL": "http://127.0.0.1:9/x"},
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        subs = out.stdout.split("subscriptions:\n")[1].split()
        # o/#, o/+/c, o/b/c and +/b/# overlap: one filter covers them.
        self.assertEqual(subs, ["+/#", "qos", "1"])

    def expect(self, rig, wanted, what):
        rig.wait_requests(lambda _: sum(seen(rig).values()) >= sum(
            wanted.values()), what=what)
        time.sleep(0.3)  # a duplicate would arrive right behind
        self.assertEqual(seen(rig), wanted)

    def test_each_rule_once_and_after_broker_restart(self):
        with harness.Rig(rules_dir=self.rules) as rig:
            rig.publish("o/b/c", "one")
            rig.publish("o/x", "two")
            rig.publish("z/b/q", "three")
            rig.publish("o/b/d", "four")
            wanted = collections.Counter({
                ("wide", "o/b/c", "one"): 1,
                ("middle", "o/b/c", "one"): 1,
                ("exact", "o/b/c", "one"): 1,
                ("second", "o/b/c", "one"): 1,
                ("wide", "o/x", "two"): 1,
                ("second", "z/b/q", "three"): 1,
                ("wide", "o/b/d", "four"): 1,
                ("second", "o/b/d", "four"): 1,
            })
            self.expect(rig, wanted, "one request per matching rule")

            port = rig.broker.port
            rig.broker.stop()
            self.assertTrue(rig.broker._try_start(port, 10),
                            "broker restarted on the same port")
            rig.wait_log("mqtt: reconnected", timeout=40)
            rig.wait_log("subscribed to 1 filters", count=2, timeout=10)
            rig.publish("o/b/c", "five")
            wanted.update({("wide", "o/b/c", "five"): 1,
                           ("middle", "o/b/c", "five"): 1,
                           ("exact", "o/b/c", "five"): 1,
                           ("second", "o/b/c", "five"): 1})
            self.expect(rig, wanted, "requests after the reconnect")


if __name__ == "__main__":
    unittest.main()
