"""Integration: SIGHUP reloads the rules directory. A changed file is
reloaded, a removed one stops, a new one starts, subscriptions follow; a
file that fails to load keeps its previous version running and the
error names file and line; counters survive; no message arriving during
a reload is lost or handled twice."""

import os
import pathlib
import shutil
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

# A rule that posts which version handled what, with a shared counter.
TEMPLATE = """
local url = env("N8N_WEBHOOK_URL")
on("%(filter)s", function(event, msg)
  local n = counter.incr("reload-test:%(name)s")
  local res = http_post(url, {rule = "%(name)s", version = %(version)d,
                              topic = msg.topic, n = n,
                              seq = type(event) == "table" and event.seq})
  if not res.ok then error("post failed: " .. res.status) end
end)
"""


def write_rule(directory, name, version, filter_):
    """Writes the rule through a rename, as editors and deploy tools do,
    so the daemon sees one whole file."""
    text = TEMPLATE % {"name": name, "version": version, "filter": filter_}
    tmp = directory / (".%s.tmp" % name)
    tmp.write_text(text)
    os.replace(tmp, directory / (name + ".lua"))


def posts(rig):
    return [r["json"] for r in rig.http.requests()
            if r.get("json") and "rule" in r["json"]]


class Reload(unittest.TestCase):

    def setUp(self):
        self.rules = pathlib.Path(tempfile.mkdtemp(prefix="rules-"))
        self.addCleanup(shutil.rmtree, self.rules, True)

    def hup(self, rig, count):
        rig.daemon.proc.send_signal(signal.SIGHUP)
        rig.wait_log("reload done", count=count)

    def wait_posts(self, rig, pred, what):
        rig.wait_requests(lambda _: pred(posts(rig)), what=what)

    def test_change_remove_add_and_broken(self):
        write_rule(self.rules, "alpha", 1, "r/a")
        write_rule(self.rules, "beta", 1, "r/b")
        with harness.Rig(rules_dir=self.rules) as rig:
            rig.publish("r/a", "{}")
            self.wait_posts(rig, lambda p: len(p) == 1, "alpha v1")
            self.assertEqual(posts(rig)[0]["version"], 1)
            self.assertEqual(posts(rig)[0]["n"], 1)

            write_rule(self.rules, "alpha", 2, "r/a")
            (self.rules / "beta.lua").unlink()
            write_rule(self.rules, "gamma", 1, "r/c/#")
            self.hup(rig, 1)
            rig.publish("r/b", "{}")
            rig.publish("r/a", "{}")
            rig.publish("r/c/deep", "{}")
            self.wait_posts(rig, lambda p: len(p) == 3, "alpha v2, gamma")
            after = posts(rig)[1:]
            self.assertEqual(
                sorted((p["rule"], p["version"], p["topic"]) for p in after),
                [("alpha", 2, "r/a"), ("gamma", 1, "r/c/deep")])
            alpha2 = [p for p in after if p["rule"] == "alpha"][0]
            self.assertEqual(alpha2["n"], 2, "counters survive a reload")
            self.assertEqual(rig.log_lines("rule beta removed")[:1] != [],
                             True)

            (self.rules / "alpha.lua").write_text(
                "on('r/a', function() end)\nthis is not lua\n")
            self.hup(rig, 2)
            broken = rig.log_lines("alpha.lua:2:")
            self.assertTrue(broken, "the load error names file and line")
            self.assertIn("previous version keeps running", broken[0])
            rig.publish("r/a", "{}")
            self.wait_posts(rig, lambda p: len(p) == 4, "alpha v2 again")
            self.assertEqual(posts(rig)[3]["version"], 2)
            self.assertEqual(posts(rig)[3]["n"], 3)

    def test_keyed_timer_goes_to_the_new_version(self):
        rule = """
local url = env("N8N_WEBHOOK_URL")
local function post(via)
  return function(key, data)
    http_post(url, {rule = "alpha", key = key, n = data.n, via = via})
  end
end
timer.restore(post("restore v%d"))
on("t/set", function(event)
  timer.after(2, post("after v%d"), {key = "k", data = {n = event.n}})
end)
"""
        (self.rules / "alpha.lua").write_text(rule % (1, 1))
        with harness.Rig(rules_dir=self.rules) as rig:
            rig.publish("t/set", '{"n": 7}')
            time.sleep(0.5)     # handled: the timer is set
            tmp = self.rules / ".alpha.tmp"
            tmp.write_text(rule % (2, 2))
            os.replace(tmp, self.rules / "alpha.lua")
            self.hup(rig, 1)
            self.wait_posts(rig, lambda p: len(p) == 1, "the timer")
            self.assertEqual(posts(rig), [{"rule": "alpha", "key": "k",
                                           "n": 7, "via": "restore v2"}])

    def test_no_message_lost_or_doubled_during_reloads(self):
        total = 300
        write_rule(self.rules, "alpha", 1, "burst/+")
        with harness.Rig(rules_dir=self.rules) as rig:
            sent = []

            def publish_all():
                # One client per message, so that messages really arrive
                # spread over the reloads below.
                for i in range(total):
                    rig.publish("burst/x", '{"seq": %d}' % i)
                    sent.append(i)

            publisher = threading.Thread(target=publish_all)
            publisher.start()
            try:
                version = 1
                while publisher.is_alive() and version < 30:
                    time.sleep(0.05)
                    version += 1
                    write_rule(self.rules, "alpha", version, "burst/+")
                    self.hup(rig, version - 1)
            finally:
                publisher.join(60)
            self.assertEqual(len(sent), total)
            self.wait_posts(rig, lambda p: len(p) >= total,
                            "%d posts" % total)
            time.sleep(0.5)
            got = posts(rig)
            self.assertEqual(sorted(p["seq"] for p in got),
                             list(range(total)))
            versions = {p["version"] for p in got}
            self.assertGreater(len(versions), 3,
                               "the reloads happened during the burst")
            self.assertEqual(sorted(p["n"] for p in got),
                             list(range(1, total + 1)))


if __name__ == "__main__":
    unittest.main()
