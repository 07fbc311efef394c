"""Integration: a hostile rule is contained. Each way a rule can
misbehave aborts only that handler, with a log record naming the rule,
the topic and the reason; after each, the daemon is alive and another
rule's next event is handled."""

import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

RULES = pathlib.Path(__file__).resolve().parent / "containment"

# case -> a part of the reason the failure record must give
CASES = {
    "busy_loop": "instruction limit",
    "caught_busy_loop": "instruction limit",
    "own_coroutine": "instruction limit",
    "recursion": "not enough memory",  # 16M is reached before C stack
    "huge_string": "too large",
    "growing_table": "not enough memory",
    "io_open": "global 'io'",
    "os_execute": "global 'os'",
    "require": "global 'require'",
    "package_loadlib": "global 'package'",
    "debug_registry": "global 'debug'",
    "binary_chunk": "attempt to load a binary chunk",
    "string_metatable": "attempt to index a boolean value",
    "error": "deliberate failure",
    "never_finishes": "coroutine.yield outside",
}


class Containment(unittest.TestCase):

    def test_each_case_is_contained(self):
        with harness.Rig(rules_dir=RULES) as rig:
            for n, (case, reason) in enumerate(sorted(CASES.items())):
                with self.subTest(case=case):
                    topic = "hostile/" + case
                    rig.publish(topic, b"{}")
                    rig.wait_log("rule=hostile", "topic=" + topic,
                                 "handler failed", reason, timeout=20)
                    witness = "witness/%d" % n
                    rig.publish(witness, b"{}")
                    rig.wait_requests(
                        lambda reqs, w=witness: any(
                            (r.get("json") or {}).get("seen") == w
                            for r in reqs),
                        timeout=10, what="the witness event " + witness)
                    self.assertIsNone(rig.daemon.proc.poll())
            self.assertEqual(
                rig.log_lines("escaped the instruction limit"), [])

    def test_failing_timer_goes_on(self):
        with harness.Rig(rules_dir=RULES) as rig:
            lines = rig.wait_log("rule=hostile", "timer callback failed",
                                 "tick failure", count=4, timeout=10)
            self.assertGreaterEqual(len(lines), 4)
            rig.publish("witness/timer", b"{}")
            rig.wait_requests(
                lambda reqs: any((r.get("json") or {}).get("seen") ==
                                 "witness/timer" for r in reqs),
                what="the witness event")


if __name__ == "__main__":
    unittest.main()
