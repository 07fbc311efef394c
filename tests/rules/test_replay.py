"""Replay tests of the shipped rules through `mqttrules test`.

Each directory tests/rules/<rule>/ holds cases for rules/<rule>.lua. A
case is named by its events file and may have these files beside it:

    <case>.events.jsonl     the events replayed (required)
    <case>.expected.jsonl   the actions expected, in order (required;
                            empty when none are)
    <case>.responses.jsonl  canned HTTP answers (--responses)
    <case>.args             extra command-line arguments, one line
    <case>.env              NAME=VALUE lines added to the rule's
                            environment (settings the rule reads)
    <case>.ini              the configuration (-c); without one, a
                            configuration holding only [log] level = info
    <case>.exit             the exit status expected (default 0)

Actions are compared as parsed JSON, so key order does not matter; the
order of the lines does. The rule's environment is built from scratch
(PATH, the settings below, then <case>.env), so neither the caller's
settings nor MQTTRULES_* overrides can change the outcome.

The binary is $MQTTRULES_BIN (ctest sets it), else build/mqttrules under
$MQTTRULES_SOURCE_DIR, else under the checkout holding this file.
"""

import difflib
import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = pathlib.Path(os.environ.get("MQTTRULES_SOURCE_DIR")
                          or HERE.parent.parent)
BINARY = os.environ.get("MQTTRULES_BIN") or str(SOURCE_DIR / "build"
                                                / "mqttrules")

# What every shipped rule needs to load; a case's .env adds to these.
BASE_ENV = {
    "LINKWARDEN_URL": "http://lw.test",
    "LINKWARDEN_API_TOKEN": "lwtok",
    "GOTIFY_URL": "http://gotify.test",
    "GOTIFY_TOKEN": "gtok",
    "N8N_WEBHOOK_URL": "http://n8n.test/webhook/kompose-analytics",
}

DEFAULT_INI = "[log]\nlevel = info\n"
EVENTS_SUFFIX = ".events.jsonl"
RUN_TIMEOUT = 30
# Lines that fail a case wherever they appear on stderr: the tests also
# run against sanitizer builds.
FATAL_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer")


def find_cases():
    """(rule, case directory, case name) for every events file."""
    cases = []
    for rule_dir in sorted(p for p in HERE.iterdir() if p.is_dir()):
        for events in sorted(rule_dir.glob("*" + EVENTS_SUFFIX)):
            name = events.name[:-len(EVENTS_SUFFIX)]
            cases.append((rule_dir.name, rule_dir, name))
    return cases


def read_env(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "=" not in line:
                raise ValueError(f"{path}:{n}: expected NAME=VALUE")
            name, value = line.split("=", 1)
            env[name.strip()] = value
    return env


def parse_lines(text, what):
    """The JSON values of the non-blank lines of text; a line that does
    not parse fails the case with its number."""
    values = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"{what} line {n} is not JSON ({e}): "
                                 f"{line[:200]}") from None
    return values


def same(a, b):
    """Equality of parsed JSON that, unlike ==, tells true from 1 and
    false from 0; 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def canonical(values):
    """One line per value with sorted keys, for a readable diff."""
    return [json.dumps(v, sort_keys=True, ensure_ascii=False)
            for v in values]


def shorten(line, limit=400):
    return line if len(line) <= limit else line[:limit] + " ..."


class Case:
    def __init__(self, rule, directory, name):
        self.rule = rule
        self.dir = directory
        self.name = name

    def file(self, suffix):
        return self.dir / (self.name + suffix)

    def command(self, config):
        rule_file = SOURCE_DIR / "rules" / (self.rule + ".lua")
        cmd = [BINARY, "test", "-c", str(config),
               "--events", str(self.file(EVENTS_SUFFIX))]
        if self.file(".responses.jsonl").exists():
            cmd += ["--responses", str(self.file(".responses.jsonl"))]
        if self.file(".args").exists():
            cmd += shlex.split(self.file(".args").read_text())
        return cmd + [str(rule_file)]

    def environment(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(BASE_ENV)
        if self.file(".env").exists():
            env.update(read_env(self.file(".env")))
        return env

    def expected_exit(self):
        if self.file(".exit").exists():
            return int(self.file(".exit").read_text().strip())
        return 0

    def run(self, workdir):
        config = self.file(".ini")
        if not config.exists():
            config = pathlib.Path(workdir) / "default.ini"
            config.write_text(DEFAULT_INI)
        return subprocess.run(self.command(config), cwd=workdir,
                              env=self.environment(),
                              capture_output=True, encoding="utf-8",
                              errors="replace", timeout=RUN_TIMEOUT)


class ReplayTest(unittest.TestCase):
    maxDiff = None

    def test_cases(self):
        cases = find_cases()
        self.assertTrue(cases, f"no cases under {HERE}")
        self.assertTrue(os.access(BINARY, os.X_OK),
                        f"{BINARY} is not an executable; build first")
        for rule, directory, name in cases:
            with self.subTest(case=f"{rule}/{name}"):
                print(f"case {rule}/{name}", file=sys.stderr, flush=True)
                self.check(Case(rule, directory, name))

    def check(self, case):
        with tempfile.TemporaryDirectory() as workdir:
            proc = case.run(workdir)
        expected_text = case.file(".expected.jsonl").read_text(
            encoding="utf-8")
        expected = parse_lines(expected_text, "expected")
        got = parse_lines(proc.stdout, "output")
        problems = []
        if not same(got, expected):
            diff = difflib.unified_diff(canonical(expected),
                                        canonical(got), "expected", "got",
                                        lineterm="")
            problems.append("actions differ:\n" + "\n".join(
                shorten(line) for line in diff))
        if proc.returncode != case.expected_exit():
            problems.append(f"exit status {proc.returncode}, expected "
                            f"{case.expected_exit()}")
        if any(mark in proc.stderr for mark in FATAL_MARKS):
            problems.append("sanitizer report on stderr")
        if problems:
            command = " ".join(shlex.quote(a) for a in
                               case.command("CONFIG"))
            self.fail(f"{case.rule}/{case.name}: " + "\n".join(problems)
                      + f"\ncommand: {command}\nstderr:\n"
                      + proc.stderr[-2000:])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
