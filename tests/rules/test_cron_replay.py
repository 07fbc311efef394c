"""Replay tests of timer.cron through `mqttrules test`: the virtual
instants at which cron callbacks run over 8 days from Wednesday
2025-01-01, a failing callback that keeps its schedule, and specs that
make loading fail.

The rule files and the one event are in tests/rules/cron/. The binary is
$MQTTRULES_BIN (ctest sets it), else build/mqttrules under
$MQTTRULES_SOURCE_DIR, else under the checkout holding this file.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
CASES = HERE / "cron"
SOURCE_DIR = pathlib.Path(os.environ.get("MQTTRULES_SOURCE_DIR")
                          or HERE.parent.parent)
BINARY = os.environ.get("MQTTRULES_BIN") or str(SOURCE_DIR / "build"
                                                / "mqttrules")

START = "2025-01-01T00:00:00Z"
DAY = 86400
DRAIN = 8 * DAY
RUN_TIMEOUT = 60
INI = "[log]\nlevel = info\n"

# Lines that fail a test wherever they appear: the tests also run
# against sanitizer builds.
FATAL_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer")


def environment():
    """PATH and sanitizer settings only, so that no MQTTRULES_* override
    or other setting of the caller changes the outcome."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update((k, v) for k, v in os.environ.items()
               if k.startswith(("ASAN_", "UBSAN_", "LSAN_")))
    return env


def replay(rule):
    """The finished process and its actions, parsed, for one rule file
    replayed over the one event and DRAIN seconds more."""
    with tempfile.TemporaryDirectory() as workdir:
        ini = pathlib.Path(workdir) / "mqttrules.ini"
        ini.write_text(INI)
        proc = subprocess.run(
            [BINARY, "test", "-c", str(ini), "--start", START,
             "--drain", str(DRAIN), str(CASES / rule),
             "--events", str(CASES / "one-event.jsonl")],
            cwd=workdir, env=environment(), capture_output=True,
            text=True, timeout=RUN_TIMEOUT)
    actions = [json.loads(line) for line in proc.stdout.splitlines()
               if line.strip()]
    return proc, actions


def times_of(actions, message):
    return [a["at"] for a in actions if a.get("message") == message]


class CronReplay(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(os.access(BINARY, os.X_OK),
                        f"{BINARY} is not an executable; build first")

    def check_stderr(self, proc):
        for mark in FATAL_MARKS:
            self.assertNotIn(mark, proc.stderr)

    def test_ticks(self):
        proc, actions = replay("ticks.lua")
        self.check_stderr(proc)
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        for a in actions:
            self.assertEqual((a["rule"], a["action"], a["level"]),
                             ("ticks", "log", "info"), a)
        ats = [a["at"] for a in actions]
        self.assertEqual(ats, sorted(ats), "actions out of time order")

        # Every quarter hour after the start, through the last instant
        # of the drain: 00:15 on the first day to 00:00 on the ninth.
        quarter = times_of(actions, "quarter")
        self.assertEqual(len(quarter), 768)
        self.assertEqual(quarter, list(range(900, DRAIN + 1, 900)))
        # Monday 2025-01-06T00:00:00Z; the next, 2025-01-13, is past
        # the drain.
        self.assertEqual(times_of(actions, "monday"), [432000])
        # 01:00, 02:00 and 03:00, then the callback cancelled its handle.
        hourly = [(a["at"], a["message"]) for a in actions
                  if a["message"].startswith("hourly")]
        self.assertEqual(hourly, [(3600, "hourly 1"), (7200, "hourly 2"),
                                  (10800, "hourly 3")])
        self.assertEqual(len(actions), 768 + 1 + 3)

    def test_failing_callback_keeps_schedule(self):
        proc, actions = replay("failing.lua")
        self.check_stderr(proc)
        # A rule error makes the replay exit 1, yet every noon runs.
        self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
        self.assertEqual([a["at"] for a in actions],
                         [DAY // 2 + d * DAY for d in range(8)])
        for a in actions:
            self.assertEqual((a["rule"], a["action"]),
                             ("failing", "error"), a)
            self.assertTrue(a["message"].endswith("noon failed"), a)

    def test_bad_specs_fail_loading(self):
        cases = [
            ("bad-spec.lua", 4,
             "timer.cron: field 2 (hour): 24 is outside 0-23"),
            ("never.lua", 2, 'timer.cron: "0 0 30 2 *" never matches'),
        ]
        for rule, line, message in cases:
            with self.subTest(rule=rule):
                proc, actions = replay(rule)
                self.check_stderr(proc)
                self.assertEqual(proc.returncode, 1, proc.stderr[-2000:])
                self.assertEqual(actions, [])
                self.assertIn(f"{CASES / rule}:{line}: {message}",
                              proc.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
