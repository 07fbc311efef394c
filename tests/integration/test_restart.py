"""Integration: what outlives a restart. Counters survive a stop and a
SIGKILL; an event whose HTTP exchange had not finished is handled after
a SIGKILL from the journal; an event a rule fails for good lands in
dead-letters.jsonl in the format `mqttrules test --events` replays."""

import json
import shutil
import tempfile
import pathlib
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

FAILED = "kompose/vault/security/failed"
PAGEVIEW = "kompose/analytics/pageview"


def failure(ip):
    return json.dumps({"event": "security.failed",
                       "timestamp": "2025-10-12T14:30:00Z",
                       "data": {"email": "eve@example.com",
                                "ip_address": ip, "reason": "bad"}})


def restart(rig, how, starts):
    if how == "sigkill":
        rig.daemon.proc.send_signal(signal.SIGKILL)
        rig.daemon.proc.wait(10)
        harness.stop_group(rig.daemon.proc)
        rig.daemon.proc = None
    else:
        assert rig.daemon.stop() == 0
    rig.daemon.start()
    rig.wait_log("subscribed to", count=starts)


def reminders(rig):
    return [r["json"] for r in rig.http.requests()
            if r.get("json") and "via" in r["json"]]


def alerts(rig):
    return [r for r in rig.http.requests() if r["path"] == "/message"]


REMINDER = """
local url = env("N8N_WEBHOOK_URL")

local function remind(via)
  return function(key, data)
    local res = http_post(url, {key = key, n = data.n, via = via})
    if not res.ok then error("post failed: " .. res.status) end
  end
end

timer.restore(remind("restore"))

on("remind/+", function(event)
  timer.after(event.delay, remind("after"),
    {key = "r-" .. event.n, data = {n = event.n}})
end)
"""


class Restart(unittest.TestCase):

    def test_keyed_timer_fires_after_sigkill(self):
        rules = pathlib.Path(tempfile.mkdtemp(prefix="rules-"))
        self.addCleanup(shutil.rmtree, rules, True)
        (rules / "reminder.lua").write_text(REMINDER)
        with harness.Rig(rules_dir=rules) as rig:
            rig.publish("remind/a", '{"n": 1, "delay": 0.5}')
            rig.publish("remind/b", '{"n": 2, "delay": 4}')
            rig.wait_requests(lambda _: len(reminders(rig)) == 1,
                              what="the short timer")
            self.assertEqual(reminders(rig),
                             [{"key": "r-1", "n": 1, "via": "after"}])
            time.sleep(1.5)     # saved within a second
            started = time.monotonic()
            restart(rig, "sigkill", 2)
            rig.wait_log("1 pending timers restored")
            rig.wait_requests(lambda _: len(reminders(rig)) == 2,
                              timeout=10, what="the restored timer")
            self.assertEqual(reminders(rig)[1],
                             {"key": "r-2", "n": 2, "via": "restore"})
            # Due 4 s after it was set, not 4 s after the restart.
            self.assertLess(time.monotonic() - started, 3.5)
            time.sleep(1.5)
            self.assertEqual(len(reminders(rig)), 2, "fired once")

    def test_counts_survive_a_stop_and_a_sigkill(self):
        for how in ("sigterm", "sigkill"):
            with self.subTest(how=how), harness.Rig() as rig:
                rig.publish(FAILED, failure("10.0.0.1"))
                rig.publish(FAILED, failure("10.0.0.1"))
                rig.wait_log("failed login 2 of 3")
                # Saved within a second of changing.
                time.sleep(1.5)
                restart(rig, how, 2)
                rig.wait_log("keys restored")
                self.assertEqual(alerts(rig), [])
                rig.publish(FAILED, failure("10.0.0.1"))
                rig.wait_requests(lambda _: len(alerts(rig)) == 1,
                                  what="the alert after the restart")
                self.assertIn("3 failed logins",
                              alerts(rig)[0]["json"]["message"])

    def test_unfinished_event_is_handled_after_sigkill(self):
        with harness.Rig() as rig:
            # The first attempt fails; the retry comes 1 s later, after
            # the daemon was killed: only the journal still has it.
            rig.http.answer(harness.WEBHOOK_PATH, 503, times=1)
            rig.publish(PAGEVIEW, '{"event": "pageview", "n": 7}')
            rig.wait_log("-> 503")
            restart(rig, "sigkill", 2)
            rig.wait_log("1 unfinished events from before")
            rig.wait_requests(
                lambda reqs: any(r["status"] == 200 and
                                 r["path"] == harness.WEBHOOK_PATH
                                 for r in reqs),
                what="the event handled after the restart")
            ok = [r for r in rig.http.requests() if r["status"] == 200]
            self.assertEqual(ok[0]["json"]["event"]["n"], 7)

    def test_failed_event_becomes_a_replayable_dead_letter(self):
        with harness.Rig() as rig:
            rig.http.answer(harness.WEBHOOK_PATH, 400)
            rig.publish(PAGEVIEW, '{"event": "pageview", "n": 9}')
            rig.publish("kompose/analytics/raw", b"\xffnot json")
            rig.wait_log("kept as a dead letter", count=2)
            path = rig.workdir / "var" / "dead-letters.jsonl"
            letters = [json.loads(line)
                       for line in path.read_text().splitlines()]
            self.assertEqual(len(letters), 2)
            # The two fail concurrently: find each by its topic.
            by_topic = {letter["topic"]: letter for letter in letters}
            first = by_topic[PAGEVIEW]
            self.assertEqual(first["topic"], PAGEVIEW)
            self.assertEqual(first["payload"],
                             {"event": "pageview", "n": 9})
            self.assertEqual(first["rule"], "analytics-forwarder")
            self.assertIn("400", first["reason"])
            self.assertEqual(by_topic["kompose/analytics/raw"]
                             ["payload_raw"], "\ufffdnot json")

            replay = subprocess.run(
                [str(harness.daemon_binary()), "test", "--events",
                 str(path), str(harness.RULES_DIR /
                                "analytics-forwarder.lua")],
                env={"N8N_WEBHOOK_URL": "http://n8n.test/webhook/x"},
                capture_output=True, text=True, timeout=30)
            self.assertEqual(replay.returncode, 0, replay.stderr)
            posts = {p["body"]["topic"]: p["body"] for p in
                     (json.loads(line) for line in
                      replay.stdout.splitlines())
                     if p["action"] == "http_post"}
            self.assertEqual(posts[PAGEVIEW]["event"],
                             {"event": "pageview", "n": 9})
            self.assertEqual(posts["kompose/analytics/raw"]["event"],
                             "\ufffdnot json")


if __name__ == "__main__":
    unittest.main()
