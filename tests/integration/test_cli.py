"""The command line: exit codes, and errors that name the file and line
(bad config) or the file, line and variable (bad rule), never a value."""

import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402


def run(args, env=None, cwd=None):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MQTTRULES_", "N8N_", "GOTIFY_",
                                 "LINKWARDEN_", "SECURITY_"))}
    base.update(env or {})
    return subprocess.run([str(harness.daemon_binary())] + args, env=base,
                          cwd=cwd, capture_output=True, text=True,
                          timeout=30)


class Cli(unittest.TestCase):

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="cli-"))
        self.rules = self.dir / "rules"
        self.rules.mkdir()

    def tearDown(self):
        for p in sorted(self.dir.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        self.dir.rmdir()

    def config(self, text):
        """Writes the config; text starts at its line 3."""
        path = self.dir / "c.ini"
        path.write_text("[rules]\ndir = %s\n%s" % (self.rules, text))
        return str(path)

    def check(self, config_text="", env=None):
        return run(["check", "-c", self.config(config_text)], env=env)

    def test_version_and_usage(self):
        out = run(["version"])
        self.assertEqual(out.returncode, 0)
        self.assertTrue(out.stdout.startswith("mqttrules "))
        self.assertEqual(run(["frobnicate"]).returncode, 2)
        self.assertEqual(run(["check", "-x"]).returncode, 2)
        self.assertEqual(run(["test"]).returncode, 2)

    def test_config_errors_name_file_and_line(self):
        cases = {
            "[mqtt]\nqos = 1\nflavour = x\n": ":5: unknown key flavour",
            "[nope]\na = 1\n": ":4: unknown section [nope]",
            "[mqtt]\nqos = 7\n": ":4: [mqtt] qos: 7 is outside 0..2",
            "[mqtt]\nsession = sticky\n": ":4: [mqtt] session: must be",
            "[log]\nlevel = info\nlevel = debug\n": ":5: [log] level given",
            "[http]\nallow_hosts = %s\n" % ("a," * 100):
                ":4: line longer than 190",
        }
        for text, message in cases.items():
            with self.subTest(message=message):
                out = self.check(text)
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn("c.ini" + message, out.stderr)

    def test_missing_config_given_with_c_is_an_error(self):
        out = run(["check", "-c", str(self.dir / "absent.ini")])
        self.assertEqual(out.returncode, 1)
        self.assertIn("absent.ini", out.stderr)

    def test_environment_overrides_and_never_echoes_values(self):
        out = self.check("", env={"MQTTRULES_MQTT_QOS": "secret-9"})
        self.assertEqual(out.returncode, 1)
        self.assertIn("MQTTRULES_MQTT_QOS", out.stderr)
        self.assertNotIn("secret-9", out.stderr)
        (self.rules / "r.lua").write_text('on("a/#", function() end)\n')
        out = self.check("", env={"MQTTRULES_MQTT_QOS": "2"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("on a/# qos 2", out.stdout)

    def test_rule_errors_name_file_and_line(self):
        cases = {
            "syntax": ("local x = \n\nfunction(\n", "syntax.lua:4:"),
            "runtime": ("local t = nil\nlocal y = t.field\n",
                        "runtime.lua:2: attempt to index"),
            "badfilter": ('on("a/#/b", function() end)\n',
                          "badfilter.lua:1: on: 'a/#/b' is not a valid"),
            "needsenv": ('local token = env("CLI_TEST_TOKEN")\n',
                         "needsenv.lua:1: env: CLI_TEST_TOKEN is not set"),
            "spin": ("while true do end\n", "instruction limit"),
        }
        for name, (code, message) in cases.items():
            with self.subTest(rule=name):
                path = self.rules / (name + ".lua")
                path.write_text(code)
                for command in ("check", "run"):
                    out = run([command, "-c", self.config("")])
                    self.assertEqual(out.returncode, 1, out.stderr)
                    self.assertIn(message, out.stderr)
                path.unlink()

    def test_check_lists_rules_filters_and_env_without_values(self):
        (self.rules / "b.lua").write_text(
            'local u = env("CLI_URL")\n'
            'local p = env("CLI_PRIORITY", "8")\n'
            'on("x/+/y", function() end, {qos = 0})\n'
            'on("x/#", function() end, {retained = true})\n')
        out = self.check("", env={"CLI_URL": "http://hidden.example/"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), [
            "rule b (%s/b.lua)" % self.rules,
            "  on x/+/y qos 0",
            "  on x/# qos 1 retained",
            "  env CLI_URL set",
            "  env CLI_PRIORITY not set, default used",
            "subscriptions:",
            "  x/# qos 1",
        ])
        self.assertNotIn("hidden.example", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
