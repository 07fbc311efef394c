"""packaging.deb: the Debian package, built by cpack into a temporary
directory, inspected with dpkg-deb, and run from an extracted root
(never installed on this machine). Lintian, where installed, reviews it
too."""

import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

SOURCE_DIR = pathlib.Path(os.environ.get("MQTTRULES_SOURCE_DIR") or
                          pathlib.Path(__file__).resolve().parents[2])
BUILD_DIR = pathlib.Path(os.environ.get("MQTTRULES_BUILD_DIR") or
                         SOURCE_DIR / "build")
VERSION = os.environ.get("MQTTRULES_VERSION", "")
CPACK = os.environ.get("CPACK") or "cpack"

RULES = sorted(p.name for p in (SOURCE_DIR / "rules").glob("*.lua"))
SCRIPTS = ("postinst", "prerm", "postrm")
LIBRARIES = ("libpaho-mqtt1.3", "libcurl4", "libcjson1", "liblua5.4-0",
             "libinih1", "libmicrohttpd12", "libc6")

# What the rules need to load; placeholders, nothing is contacted.
RULE_ENV = {
    "LINKWARDEN_URL": "http://127.0.0.1:9/linkwarden",
    "LINKWARDEN_API_TOKEN": "placeholder",
    "GOTIFY_URL": "http://127.0.0.1:9/gotify",
    "GOTIFY_TOKEN": "placeholder",
    "N8N_WEBHOOK_URL": "http://127.0.0.1:9/n8n",
}

# Lintian errors that stay until the project decides: there is no
# licence to put in /usr/share/doc/mqttrules/copyright yet.
KNOWN_LINTIAN_ERRORS = {"no-copyright-file"}


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(args, **kw)


def clean_env(extra):
    """This environment without any setting the daemon or rules read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MQTTRULES_", "N8N_", "GOTIFY_",
                                "LINKWARDEN_", "SECURITY_"))}
    env.update(extra)
    return env


class Deb(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="deb-")
        cls.dir = pathlib.Path(cls.tmp.name)
        out = run([CPACK, "-G", "DEB", "-B", str(cls.dir / "out"),
                   "--config", str(BUILD_DIR / "CPackConfig.cmake")],
                  cwd=BUILD_DIR)
        if out.returncode != 0:
            cls.tmp.cleanup()
            raise AssertionError("cpack failed:\n" + out.stdout +
                                 out.stderr)
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        cls.debs = sorted((cls.dir / "out").glob("*.deb"))
        cls.deb = cls.dir / "out" / ("mqttrules_%s_%s.deb" %
                                     (VERSION, arch))
        cls.root = cls.dir / "root"
        run(["dpkg-deb", "-x", str(cls.deb), str(cls.root)], check=True)
        cls.control = cls.dir / "control"
        run(["dpkg-deb", "-e", str(cls.deb), str(cls.control)], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def field(self, name):
        return run(["dpkg-deb", "-f", str(self.deb), name],
                   check=True).stdout.strip()

    def test_file_name(self):
        self.assertEqual(self.debs, [self.deb])
        self.assertEqual(self.field("Package"), "mqttrules")
        self.assertEqual(self.field("Version"), VERSION)

    def test_contents(self):
        listing = run(["dpkg-deb", "-c", str(self.deb)], check=True).stdout
        entries = {}
        for line in listing.splitlines():
            mode, _, _, _, _, path = line.split(None, 5)
            entries[path.split(" -> ")[0]] = mode
        expected = ["./usr/bin/mqttrules",
                    "./lib/systemd/system/mqttrules.service",
                    "./etc/mqttrules/mqttrules.ini",
                    "./usr/share/doc/mqttrules/README.md",
                    "./usr/share/doc/mqttrules/operations.md",
                    "./usr/share/doc/mqttrules/mqttrules.env.example",
                    "./usr/share/doc/mqttrules/changelog.gz"]
        expected += ["./etc/mqttrules/rules/" + r for r in RULES]
        for path in expected:
            self.assertIn(path, entries)
        self.assertEqual(entries["./usr/bin/mqttrules"], "-rwxr-xr-x")
        self.assertEqual(entries["./etc/mqttrules/mqttrules.ini"],
                         "-rw-r--r--")
        self.assertEqual(len(RULES), 3)

    def test_unit_is_the_source_one(self):
        shipped = self.root / "lib/systemd/system/mqttrules.service"
        self.assertEqual(shipped.read_text(),
                         (SOURCE_DIR / "packaging/mqttrules.service")
                         .read_text())

    def test_conffiles(self):
        listed = (self.control / "conffiles").read_text().split()
        self.assertEqual(sorted(listed), sorted(
            ["/etc/mqttrules/mqttrules.ini"] +
            ["/etc/mqttrules/rules/" + r for r in RULES]))

    def test_maintainer_scripts(self):
        for name in SCRIPTS:
            path = self.control / name
            self.assertEqual(path.read_text(),
                             (SOURCE_DIR / "packaging/deb" / name)
                             .read_text())
            self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o755)
            self.assertEqual(run(["sh", "-n", str(path)]).returncode, 0)
        postinst = (self.control / "postinst").read_text()
        self.assertIn("adduser --system", postinst)
        self.assertIn("--home /var/lib/mqttrules", postinst)

    def test_depends(self):
        depends = self.field("Depends")
        names = {d.strip().split()[0] for d in depends.split(",")}
        for name in LIBRARIES + ("adduser", "procps"):
            self.assertIn(name, names, depends)

    def test_extracted_binary_runs(self):
        binary = str(self.root / "usr/bin/mqttrules")
        out = run([binary, "version"], env=clean_env({}))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith("mqttrules %s " % VERSION),
                        out.stdout)

        config = str(self.root / "etc/mqttrules/mqttrules.ini")
        env = clean_env(dict(RULE_ENV, MQTTRULES_RULES_DIR=str(
            self.root / "etc/mqttrules/rules")))
        out = run([binary, "check", "-c", config], env=env, cwd=self.dir)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        listed = re.findall(r"^rule (\S+) \(", out.stdout, re.M)
        self.assertEqual(sorted(listed), [r[:-4] for r in RULES])

        # Without the rules' variables the daemon would not start.
        del env["GOTIFY_TOKEN"]
        out = run([binary, "check", "-c", config], env=env, cwd=self.dir)
        self.assertEqual(out.returncode, 1)
        self.assertIn("GOTIFY_TOKEN", out.stderr)

    def test_lintian(self):
        lintian = shutil.which("lintian")
        if lintian is None:
            self.skipTest("lintian is not installed")
        out = run([lintian, "--pedantic", "--info", str(self.deb)],
                  timeout=600)
        tags = re.findall(r"^([EWIPX]): mqttrules(?: \S+)?: (\S+)(.*)$",
                          out.stdout, re.M)
        for level, tag, rest in tags:
            print("lintian %s: %s%s" % (level, tag, rest))
        errors = {t for level, t, _ in tags if level == "E"}
        self.assertEqual(errors - KNOWN_LINTIAN_ERRORS, set(),
                         out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
