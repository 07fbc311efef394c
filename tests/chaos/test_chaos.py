"""Chaos: no event is lost from broker to HTTP. N numbered QoS 1 events
are published at a steady rate while the daemon is killed with SIGKILL
three times, the broker restarts twice, and the target answers 503 for
60 s and then refuses connections for 30 s. Every event must reach the
target at least once.

CHAOS_SEED replays a run's fault times; CHAOS_N sets N (default 5000)."""

import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "helpers"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from mqtt_publisher import Publisher  # noqa: E402
from target import Target  # noqa: E402

RATE = 100          # events per second
OUTAGE_503 = 60
OUTAGE_REFUSED = 30
DRAIN_LIMIT = 240   # seconds after the last fault


def ranges(numbers):
    """[1, 2, 3, 7] -> "1-3 7"."""
    out, start, prev = [], None, None
    for n in numbers + [None]:
        if start is not None and (n is None or n != prev + 1):
            out.append(str(start) if start == prev else
                       "%d-%d" % (start, prev))
            start = None
        if n is not None and start is None:
            start = n
        prev = n
    return " ".join(out) or "none"


class Broker:

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = harness.free_port()
        self.proc = None
        # mosquitto started as root drops to its own user: give it a
        # directory it can write its database to.
        workdir.chmod(0o711)
        store = workdir / "broker"
        store.mkdir()
        store.chmod(0o777)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            "listener %d 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            "persistence_location %s/\n"
            "autosave_interval 1\n"
            "autosave_on_changes true\n"
            "max_queued_messages 1000000\n"
            "log_dest stderr\n" % (self.port, store))

    def start(self):
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["/usr/sbin/mosquitto", "-c", str(self.conf)], stdout=log,
                stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + 10
        while not harness.accepts(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.05)

    def restart(self):
        # SIGTERM: mosquitto saves its database on the way out.
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.start()

    def stop(self):
        if self.proc is not None:
            harness.stop_group(self.proc)


class Daemon:

    def __init__(self, workdir, broker_port, target_port):
        self.workdir = workdir
        self.proc = None
        self.config = workdir / "mqttrules.ini"
        self.config.write_text(
            "[mqtt]\nurl = mqtt://127.0.0.1:%d\nclient_id = chaos-daemon\n"
            "session = persistent\n[rules]\ndir = %s\n"
            "[daemon]\nstate_dir = %s\nmetrics =\nshutdown_timeout = 5\n"
            "[log]\nlevel = info\n"
            % (broker_port, HERE / "rules", workdir / "var"))
        self.env = dict(os.environ, CHAOS_TARGET="http://127.0.0.1:%d/"
                        "webhook/chaos" % target_port)
        self.log_path = workdir / "mqttrules.log"

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.daemon_binary()), "run", "-c",
                 str(self.config)], cwd=self.workdir, env=self.env,
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def wait_subscribed(self):
        # Until the first subscription, the broker keeps nothing for
        # the daemon's session.
        deadline = time.monotonic() + 15
        while "subscribed to" not in self.log_path.read_text(
                errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError("mqttrules did not subscribe")
            time.sleep(0.05)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            harness.stop_group(self.proc)
            return None


class Chaos(unittest.TestCase):

    def setUp(self):
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="chaos-"))
        self.target = Target().start()
        self.broker = Broker(self.workdir)
        self.broker.start()
        self.daemon = Daemon(self.workdir, self.broker.port,
                             self.target.port)

    def tearDown(self):
        if self.daemon.proc is not None and self.daemon.proc.poll() is None:
            harness.stop_group(self.daemon.proc)
        self.broker.stop()
        self.target.stop()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def schedule(self, rng, duration):
        """(time, name, action) of every fault, from the seed."""
        faults = [(rng.uniform(3, duration), "kill daemon", self.daemon.kill)
                  for _ in range(3)]
        faults += [(rng.uniform(5, duration), "restart broker",
                    self.broker.restart) for _ in range(2)]
        outage = rng.uniform(3, duration / 2)
        faults += [
            (outage, "target answers 503",
             lambda: setattr(self.target, "failing", True)),
            (outage + OUTAGE_503, "target refuses connections",
             self.target.refuse),
            (outage + OUTAGE_503 + OUTAGE_REFUSED, "target back",
             self.restore_target)]
        return sorted(faults, key=lambda f: f[0])

    def restore_target(self):
        self.target.failing = False
        self.target.start()

    def run_faults(self, faults, t0, log):
        for at, name, action in faults:
            time.sleep(max(0, t0 + at - time.monotonic()))
            action()
            log.append("%6.1f s  %s" % (time.monotonic() - t0, name))

    def publish_all(self, n, t0):
        pub = Publisher(self.broker.port)
        for seq in range(n):
            time.sleep(max(0, t0 + seq / RATE - time.monotonic()))
            pub.publish("chaos/events", b'{"seq": %d}' % seq,
                        time.monotonic() + 60)
        pub.close()

    def test_no_event_lost(self):
        seed = int(os.environ.get("CHAOS_SEED", time.time_ns() % 2**31))
        n = int(os.environ.get("CHAOS_N", 5000))
        print("chaos: seed %d (CHAOS_SEED=%d replays it), N %d"
              % (seed, seed, n), flush=True)
        rng = random.Random(seed)
        faults = self.schedule(rng, n / RATE)
        self.daemon.start()
        self.daemon.wait_subscribed()
        t0 = time.monotonic()
        done = []
        injector = threading.Thread(target=self.run_faults,
                                    args=(faults, t0, done))
        injector.start()
        self.publish_all(n, t0)
        injector.join()
        last_fault = time.monotonic()
        while (len(self.target.received()) < n and
               time.monotonic() - last_fault < DRAIN_LIMIT):
            time.sleep(0.5)
        drain = time.monotonic() - last_fault
        status = self.daemon.stop()

        got = self.target.received()
        lost = sorted(set(range(n)) - set(got))
        dups = sum(got.values()) - len(got)
        print("\n".join("chaos: " + line for line in done))
        print("chaos: lost %s" % ranges(lost))
        print("chaos: N %d, received %d, lost %d, duplicates %d, drained "
              "%.1f s after the last fault" % (n, len(got), len(lost), dups,
                                               drain), flush=True)
        log = self.daemon.log_path.read_text(errors="replace")
        if lost or status != 0:
            print(log[-4000:], file=sys.stderr)
        self.assertEqual(lost, [], "lost events (seed %d)" % seed)
        self.assertEqual(status, 0, "exit status after SIGTERM")
        for mark in harness.FATAL_MARKS:
            self.assertNotIn(mark, log)


if __name__ == "__main__":
    unittest.main()
