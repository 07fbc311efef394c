"""packaging.unit_verify: the systemd unit, checked without a running
systemd.

What this checks:
- `systemd-analyze verify` loads the unit the way systemd would and has
  nothing to say about it: no unknown section or key, no value it fails
  to parse (a bad ProtectSystem=, a malformed Documentation= URL, a user
  name it would not accept), an ExecStart= and ExecReload= that exist and
  are executable, and dependencies (After=, WantedBy=) that load. It
  needs the command to exist, so the check runs on a copy whose
  ExecStart= names the built binary instead of /usr/bin/mqttrules.
- A copy with planted mistakes is flagged, so that a silent verify here
  cannot pass for a clean one.
- The directives the service relies on are there with their values
  (user, reload, restart, state directory, hardening).
- `systemd-analyze security --offline` rates the exposure at most
  MAX_EXPOSURE (out of 10).

What it cannot check here, where systemd is not PID 1: that the unit
starts, that the mqttrules user exists, that the sandbox lets the daemon
run (writes to /var/lib/mqttrules, reaches the broker), or that a reload
reloads. Those need a booted systemd.
"""

import os
import pathlib
import re
import subprocess
import tempfile
import unittest

SOURCE_DIR = pathlib.Path(os.environ.get("MQTTRULES_SOURCE_DIR") or
                          pathlib.Path(__file__).resolve().parents[2])
UNIT = SOURCE_DIR / "packaging" / "mqttrules.service"
BINARY = os.environ.get("MQTTRULES_BIN",
                        str(SOURCE_DIR / "build" / "mqttrules"))
ANALYZE = os.environ.get("SYSTEMD_ANALYZE") or "systemd-analyze"

MAX_EXPOSURE = 2.0

# Lines verify may print about units other than ours (the targets and
# mounts it loads as dependencies, with this machine's quirks): noted,
# not failures.
OTHER_UNIT = re.compile(
    r"^(/\S+/)?(?!mqttrules\.service)[\w@.\\-]+"
    r"\.(service|socket|target|mount|automount|timer|path|slice|swap)"
    r"(:\d+)?:")

EXPECTED = {
    "Type": ["simple"],
    "User": ["mqttrules"],
    "Group": ["mqttrules"],
    "ExecStart": ["/usr/bin/mqttrules run -c /etc/mqttrules/mqttrules.ini"],
    "ExecReload": ["/bin/kill -HUP $MAINPID"],
    "Restart": ["on-failure"],
    "StateDirectory": ["mqttrules"],
    "WorkingDirectory": ["/var/lib/mqttrules"],
    "EnvironmentFile": ["-/etc/mqttrules/mqttrules.env"],
    "Environment": ["MQTTRULES_DAEMON_STATE_DIR=/var/lib/mqttrules",
                    "MQTTRULES_RULES_DIR=/etc/mqttrules/rules"],
    "NoNewPrivileges": ["yes"],
    "ProtectSystem": ["strict"],
    "ProtectHome": ["yes"],
    "PrivateTmp": ["yes"],
    "PrivateDevices": ["yes"],
    "ProtectKernelTunables": ["yes"],
    "ProtectKernelModules": ["yes"],
    "ProtectControlGroups": ["yes"],
    "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
    "RestrictNamespaces": ["yes"],
    "LockPersonality": ["yes"],
    "MemoryDenyWriteExecute": ["yes"],
    "SystemCallArchitectures": ["native"],
    "SystemCallFilter": ["@system-service", "~@privileged @resources"],
    "CapabilityBoundingSet": [""],
}


def service_section(text):
    """The [Service] section's keys, each with its values in order."""
    keys, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def run_analyze(*args):
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True,
                          timeout=120)


class UnitVerify(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="unit-verify-")
        self.dir = pathlib.Path(self.tmp.name)
        self.text = UNIT.read_text()

    def tearDown(self):
        self.tmp.cleanup()

    def copy(self, text):
        """A copy of the unit that runs the built binary."""
        self.assertIn("ExecStart=/usr/bin/mqttrules ", text)
        path = self.dir / "mqttrules.service"
        path.write_text(text.replace("ExecStart=/usr/bin/mqttrules ",
                                     "ExecStart=%s " % BINARY))
        return path

    def complaints(self, path):
        """Verify's lines about the unit; the rest is printed."""
        out = run_analyze("verify", str(path))
        lines = (out.stdout + out.stderr).splitlines()
        mine = [l for l in lines if l.strip() and not OTHER_UNIT.match(l)]
        for line in lines:
            if line not in mine:
                print("verify, about another unit:", line)
        return out.returncode, mine

    def test_directives(self):
        keys = service_section(self.text)
        for key, values in EXPECTED.items():
            self.assertEqual(keys.get(key), values, key)
        stop = int(keys["TimeoutStopSec"][0])
        self.assertGreater(stop, 10, "above [daemon] shutdown_timeout")

    def test_verify_is_clean(self):
        rc, lines = self.complaints(self.copy(self.text))
        self.assertEqual(lines, [])
        self.assertEqual(rc, 0)

    def test_verify_flags_mistakes(self):
        text = self.text.replace("ProtectSystem=strict",
                                 "ProtectSystem=sometimes\nHardening=yes")
        text = text.replace("Documentation=file:", "Documentation=foo:")
        rc, lines = self.complaints(self.copy(text))
        joined = "\n".join(lines)
        self.assertIn("Unknown key 'Hardening'", joined)
        self.assertIn("sometimes", joined)
        self.assertIn("Invalid URL", joined)

        missing = self.copy(self.text)
        missing.write_text(missing.read_text().replace(
            BINARY, str(self.dir / "no-such-binary")))
        rc, lines = self.complaints(missing)
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such-binary", "\n".join(lines))

    def test_exposure(self):
        out = run_analyze("security", "--offline=yes",
                          str(self.copy(self.text)))
        found = re.search(r"Overall exposure level for mqttrules\.service:"
                          r" ([0-9.]+)", out.stdout + out.stderr)
        self.assertIsNotNone(found, out.stdout + out.stderr)
        print("exposure:", found.group(1))
        self.assertLessEqual(float(found.group(1)), MAX_EXPOSURE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
