"""Helpers for the integration tests and the demo.

Everything runs on 127.0.0.1 on free ports: a private mosquitto, the
stand-in HTTP server, the built daemon, and the real mosquitto_pub and
mosquitto_sub clients. Every process is started in its own process group
and stopped again by the object that started it.

The daemon binary is $MQTTRULES_BIN (ctest sets it), else build/mqttrules
under $MQTTRULES_SOURCE_DIR, else under the checkout holding this file.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HELPERS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HELPERS))

import cutter  # noqa: E402  (needs the path above)
import stand_in  # noqa: E402

SOURCE_DIR = pathlib.Path(os.environ.get("MQTTRULES_SOURCE_DIR")
                          or HELPERS.parent.parent)
RULES_DIR = SOURCE_DIR / "rules"
MOSQUITTO = "/usr/sbin/mosquitto"

# Lines that fail a test wherever they appear in the daemon's output: the
# tests also run against sanitizer builds.
FATAL_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer")

# Tokens the rules get in tests; the assertions look for them in headers.
LINKWARDEN_TOKEN = "test-linkwarden-token"
GOTIFY_TOKEN = "test-gotify-token"
WEBHOOK_PATH = "/webhook/kompose-analytics"


def samples():
    """The Kompose sample events of examples/, as dicts with at, topic,
    payload."""
    path = SOURCE_DIR / "examples" / "kompose-samples.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sample(topic):
    """The payload of the first sample event on topic."""
    for event in samples():
        if event["topic"] == topic:
            return event["payload"]
    raise KeyError(topic)


def daemon_binary():
    path = os.environ.get("MQTTRULES_BIN")
    return pathlib.Path(path) if path else SOURCE_DIR / "build" / "mqttrules"


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_group(proc, grace=5):
    """Ends a process started with start_new_session=True and anything it
    started: SIGTERM to its group, SIGKILL after grace seconds. The group
    is signalled only while its leader is unreaped, so its id cannot have
    been reused."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


class Broker:
    """A mosquitto of our own on a free loopback port."""

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.port = None
        self.proc = None
        self.log_path = self.workdir / "mosquitto.log"
        self._log = None

    def start(self, timeout=10):
        # Another process may take the port between free_port and bind.
        for _ in range(3):
            if self._try_start(free_port(), timeout):
                return self
        raise RuntimeError("mosquitto did not start:\n" + self.log_text())

    def _try_start(self, port, timeout):
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("listener %d 127.0.0.1\n"
                        "allow_anonymous true\n"
                        "persistence false\n"
                        "log_dest stderr\n"
                        "log_type all\n" % port)
        if self._log is None:
            self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=self._log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if accepts(port):
                self.port = port
                return True
            time.sleep(0.05)
        stop_group(self.proc)
        return False

    def stop(self):
        stop_group(self.proc)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def publish(self, topic, payload, qos=1, retain=False):
        """Publishes with mosquitto_pub and waits until it is done (with
        QoS 1, until the broker acknowledged). payload: str (sent as
        UTF-8), bytes (any bytes, sent from a file), or None or empty
        (a zero-length message)."""
        cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port),
               "-q", str(qos), "-t", topic]
        if retain:
            cmd.append("-r")
        if payload is None or len(payload) == 0:
            cmd.append("-n")
        elif isinstance(payload, bytes):
            path = self.workdir / ("payload-%s" % uuid.uuid4().hex)
            path.write_bytes(payload)
            cmd += ["-f", str(path)]
        else:
            cmd += ["-m", payload]
        done = subprocess.run(cmd, capture_output=True, timeout=15,
                              start_new_session=True)
        if done.returncode != 0:
            raise RuntimeError("mosquitto_pub failed (%d): %s" % (
                done.returncode, done.stderr.decode(errors="replace")))

    def publish_json(self, topic, value):
        self.publish(topic, json.dumps(value))

    def publish_lines(self, topic, payloads, qos=1):
        """Publishes each payload (one-line str) as a message on topic,
        in order, from one mosquitto_pub connection."""
        done = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port),
             "-q", str(qos), "-t", topic, "-l"],
            input="".join(p + "\n" for p in payloads).encode(),
            capture_output=True, timeout=30, start_new_session=True)
        if done.returncode != 0:
            raise RuntimeError("mosquitto_pub failed (%d): %s" % (
                done.returncode, done.stderr.decode(errors="replace")))


class Subscriber:
    """mosquitto_sub on one filter, started and subscribed before start()
    returns; collects up to count messages within timeout seconds."""

    def __init__(self, port, topic, count=1, timeout=10):
        # Line-buffered, so that SUBACK shows before the process ends.
        self.cmd = ["stdbuf", "-oL", "mosquitto_sub",
                    "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-t", topic, "-v", "-d",
                    "-C", str(count), "-W", str(timeout)]
        self.proc = None
        self.lines = []
        self._subscribed = threading.Event()
        self._reader = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise RuntimeError("mosquitto_sub did not subscribe:\n"
                               + "\n".join(self.lines))
        return self

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append(line)
            if "received SUBACK" in line:
                self._subscribed.set()

    def messages(self, timeout=15):
        """Waits for mosquitto_sub to end (count reached or its own -W
        timeout) and returns [(topic, payload text)]."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.stop()
        msgs = []
        for line in self.lines:
            if line.startswith("Client ") or line.startswith("Subscribed"):
                continue
            topic, _, payload = line.partition(" ")
            msgs.append((topic, payload))
        return msgs

    def stop(self):
        stop_group(self.proc)
        if self._reader is not None:
            self._reader.join(5)


class Daemon:
    """The built mqttrules, run with a config written for this test."""

    def __init__(self, workdir, broker_port, rules_dir, env, level="debug",
                 client_prefix="test", metrics="", session="clean"):
        self.workdir = pathlib.Path(workdir)
        self.config_path = self.workdir / "mqttrules.ini"
        self.log_path = self.workdir / "mqttrules.log"
        self.broker_port = broker_port
        self.rules_dir = rules_dir
        self.env = env
        self.level = level
        self.client_id = "%s-%s" % (client_prefix, uuid.uuid4().hex[:12])
        self.proc = None
        self.returncode = None
        self.metrics = metrics
        self.session = session

    def write_config(self):
        self.config_path.write_text(
            "[mqtt]\n"
            "url = mqtt://127.0.0.1:%d\n"
            "client_id = %s\n"
            "session = %s\n"
            "[rules]\n"
            "dir = %s\n"
            "[daemon]\n"
            "state_dir = %s\n"
            "metrics = %s\n"
            "[log]\n"
            "level = %s\n" % (self.broker_port, self.client_id,
                              self.session, self.rules_dir,
                              self.workdir / "var", self.metrics,
                              self.level))

    def process_env(self):
        """The caller's environment without anything that would steer the
        daemon or the rules (MQTTRULES_* overrides config keys), plus
        this test's settings."""
        drop = ("MQTTRULES_", "LINKWARDEN_", "GOTIFY_", "SECURITY_", "N8N_")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(drop)}
        env.update(self.env)
        return env

    def start(self, timeout=15):
        binary = daemon_binary()
        if not binary.exists():
            raise RuntimeError("%s not found: build it with scripts/build "
                               "or set MQTTRULES_BIN" % binary)
        self.write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(binary), "run", "-c", str(self.config_path)],
                cwd=self.workdir, env=self.process_env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self.wait_log("subscribed", timeout=timeout)
        return self

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def matching_lines(self, *parts):
        return [line for line in self.log_lines()
                if all(p in line for p in parts)]

    def wait_log(self, *parts, count=1, timeout=10):
        """Waits until count log lines hold every one of parts; returns
        the lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.matching_lines(*parts)
            if len(lines) >= count:
                return lines
            if self.proc.poll() is not None:
                raise AssertionError(
                    "mqttrules exited with %d before logging %r"
                    % (self.proc.returncode, parts))
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%d of %d log lines hold %r after %gs"
                    % (len(lines), count, parts, timeout))
            time.sleep(0.05)

    def stop(self, timeout=15):
        """SIGTERM, then waits up to timeout seconds; returns the exit
        status, or None when the daemon had to be killed."""
        if self.proc is None:
            return self.returncode
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.returncode = None
        finally:
            stop_group(self.proc)
            self.proc = None
        return self.returncode

    def error_lines(self):
        """Records logged at level error (text format: time, level)."""
        return [line for line in self.log_lines()
                if line.split(" ", 2)[1:2] == ["error"]]

    def fatal_lines(self):
        return [line for line in self.log_lines()
                if any(mark in line for mark in FATAL_MARKS)]

    def tail(self, n=80):
        return "\n".join(self.log_lines()[-n:])


class Rig:
    """Broker, stand-in and daemon for one test, as a context manager.

    cutter: put a cutter.Cutter between the daemon and the broker (as
    rig.cutter). session: the daemon's [mqtt] session.
    env overrides the rules' settings (by default pointed at the
    stand-in). On leaving, the daemon must exit 0 on SIGTERM within 15 s
    with no sanitizer or runtime error in its output; otherwise, or when
    the test failed, the daemon's log tail goes to stderr.
    """

    def __init__(self, env=None, rules_dir=None, collections=None,
                 tokens=None, metrics="", cutter=False, session="clean"):
        self.extra_env = dict(env or {})
        self.rules_dir = pathlib.Path(rules_dir or RULES_DIR)
        self.collections = collections
        self.tokens = tokens
        self.metrics = metrics
        self.use_cutter = cutter
        self.session = session
        self.cutter = None
        self.workdir = None
        self.http = None
        self.broker = None
        self.daemon = None
        self._subscribers = []

    def rule_env(self):
        env = {"LINKWARDEN_URL": self.http.url,
               "LINKWARDEN_API_TOKEN": LINKWARDEN_TOKEN,
               "GOTIFY_URL": self.http.url,
               "GOTIFY_TOKEN": GOTIFY_TOKEN,
               "N8N_WEBHOOK_URL": self.http.url + WEBHOOK_PATH}
        env.update(self.extra_env)
        return env

    def __enter__(self):
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="mqttrules-"))
        try:
            self.http = stand_in.StandIn(collections=self.collections,
                                         tokens=self.tokens).start()
            self.broker = Broker(self.workdir).start()
            port = self.broker.port
            if self.use_cutter:
                self.cutter = cutter.Cutter(port)
                port = self.cutter.port
            self.daemon = Daemon(self.workdir, port, self.rules_dir,
                                 self.rule_env(), metrics=self.metrics,
                                 session=self.session)
            self.daemon.start()
        except BaseException:
            self._report("set-up failed")
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        problem = None
        try:
            status = self.daemon.stop()
            fatal = self.daemon.fatal_lines()
            if status != 0:
                problem = "mqttrules did not exit 0 on SIGTERM within " \
                    "15 s (status %s)" % status
            elif fatal:
                problem = "mqttrules reported:\n" + "\n".join(fatal[:20])
            if exc_type is not None or problem:
                self._report(problem or "test failed")
        finally:
            self._teardown()
        if problem and exc_type is None:
            raise AssertionError(problem)
        return False

    def _teardown(self):
        for sub in self._subscribers:
            sub.stop()
        if self.daemon is not None:
            self.daemon.stop()
        if self.cutter is not None:
            self.cutter.close()
        if self.broker is not None:
            self.broker.stop()
        if self.http is not None:
            self.http.stop()
        if self.workdir is not None and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _report(self, why):
        log = self.daemon.tail() if self.daemon else "(not started)"
        print("\n--- %s; mqttrules log tail (%s):\n%s\n--- end of log"
              % (why, self.workdir, log), file=sys.stderr, flush=True)

    # Shorthands for tests.

    def publish(self, topic, payload, **kw):
        self.broker.publish(topic, payload, **kw)

    def publish_json(self, topic, value):
        self.broker.publish_json(topic, value)

    def subscribe(self, topic, count=1, timeout=10):
        sub = Subscriber(self.broker.port, topic, count, timeout)
        self._subscribers.append(sub)
        return sub.start()

    def wait_requests(self, predicate, timeout=10, what="requests"):
        """Asserts that predicate(answered requests) becomes true."""
        if not self.http.wait_for(predicate, timeout):
            raise AssertionError("timed out waiting for %s\n%s"
                                 % (what, self.http.describe()))
        return self.http.requests()

    def wait_log(self, *parts, count=1, timeout=10):
        return self.daemon.wait_log(*parts, count=count, timeout=timeout)

    def log_lines(self, *parts):
        return self.daemon.matching_lines(*parts)

    def error_lines(self):
        return self.daemon.error_lines()
