#!/usr/bin/env python3
"""The mqttrules demo: Kompose sample events in, Linkwarden, Gotify and
n8n requests out, all on this machine.

It starts a private mosquitto and a stand-in HTTP server for the three
services on free 127.0.0.1 ports, runs build/mqttrules with the shipped
rules pointed at them, publishes examples/kompose-samples.jsonl, waits
for the requests the rules should make, and shows them. Everything it
started is stopped before it exits. Exit status 0 when every expected
request arrived, 1 otherwise.
"""

import argparse
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import harness  # noqa: E402
import stand_in  # noqa: E402

LINKWARDEN_TOKEN = "demo-linkwarden-token"
GOTIFY_TOKEN = "demo-gotify-token"
WEBHOOK_PATH = "/webhook/kompose-analytics"
ALERT_TOPIC = "kompose/system/alert/triggered"

RULE_OF_SERVICE = {"linkwarden": "article-to-bookmark",
                   "gotify": "security-monitor",
                   "n8n": "analytics-forwarder"}

# What the samples should cause: (method, path) -> how many requests.
EXPECTED = {("GET", "/api/v1/collections"): 1,
            ("POST", "/api/v1/collections"): 1,
            ("POST", "/api/v1/links"): 1,
            ("POST", "/message"): 1,
            ("POST", WEBHOOK_PATH): 2}


def say(text=""):
    print(text, flush=True)


def heading(text):
    say()
    say(text)
    say("-" * len(text))


def arrived(reqs):
    """True once every expected request was answered with a 2xx."""
    for (method, path), n in EXPECTED.items():
        ok = [r for r in reqs if r["method"] == method
              and r["path"] == path and 200 <= r["status"] < 300]
        if len(ok) < n:
            return False
    return True


def missing(reqs):
    lines = []
    for (method, path), n in EXPECTED.items():
        got = len([r for r in reqs if r["method"] == method
                   and r["path"] == path and 200 <= r["status"] < 300])
        if got < n:
            lines.append("  %s %s: %d of %d" % (method, path, got, n))
    return lines


def rule_env(http):
    return {"LINKWARDEN_URL": http.url,
            "LINKWARDEN_API_TOKEN": LINKWARDEN_TOKEN,
            "GOTIFY_URL": http.url,
            "GOTIFY_TOKEN": GOTIFY_TOKEN,
            "N8N_WEBHOOK_URL": http.url + WEBHOOK_PATH}


def publish_samples(broker):
    events = harness.samples()
    heading("Publishing %d Kompose sample events "
            "(the stand-in prints each request it gets)" % len(events))
    for event in events:
        say("publish %s" % event["topic"])
        broker.publish_json(event["topic"], event["payload"])


def summary(http):
    heading("Summary: requests made by the rules")
    say("%-21s %-6s %-52s %s" % ("rule", "method", "URL", "status"))
    for r in http.requests():
        rule = RULE_OF_SERVICE.get(r["service"], "?")
        say("%-21s %-6s %-52s %s" % (rule, r["method"], http.url + r["path"],
                                     r.get("status")))


def show_alert(sub):
    msgs = sub.messages(timeout=5)
    heading("Published back to the broker by security-monitor")
    if not msgs:
        say("(nothing on %s)" % ALERT_TOPIC)
        return False
    for topic, payload in msgs:
        say("%s %s" % (topic, payload))
    return True


def show_log(daemon):
    heading("mqttrules log")
    for line in daemon.log_lines():
        say("  " + line)


def start(workdir, level, http, broker):
    """Starts the stand-in, the broker and mqttrules; returns the
    daemon."""
    http.start()
    broker.start()
    say("mosquitto     mqtt://127.0.0.1:%d" % broker.port)
    say("stand-in      %s  (Linkwarden, Gotify and n8n)" % http.url)
    daemon = harness.Daemon(workdir, broker.port, ROOT / "rules",
                            rule_env(http), level=level,
                            client_prefix="demo", session="persistent")
    say("mqttrules     %s run -c %s" % (harness.daemon_binary(),
                                         daemon.config_path))
    return daemon


def run(workdir, level, timeout):
    """Runs the demo in workdir; returns the exit status."""
    http = stand_in.StandIn(tokens={"linkwarden": LINKWARDEN_TOKEN,
                                    "gotify": GOTIFY_TOKEN},
                            echo=sys.stdout)
    broker = harness.Broker(workdir)
    daemon = sub = None
    try:
        daemon = start(workdir, level, http, broker)
        daemon.start()
        sub = harness.Subscriber(broker.port, ALERT_TOPIC, count=1,
                                 timeout=timeout).start()
        publish_samples(broker)
        done = http.wait_for(arrived, timeout)
        summary(http)
        alerted = show_alert(sub)
    finally:
        if sub is not None:
            sub.stop()
        status = daemon.stop() if daemon is not None else None
        broker.stop()
        http.stop()
        if daemon is not None:
            show_log(daemon)
    return report(done, alerted, status, http.requests())


def report(done, alerted, status, reqs):
    say()
    ok = done and alerted and status == 0
    if not done:
        say("FAILED: these requests did not arrive:")
        for line in missing(reqs):
            say(line)
    if not alerted:
        say("FAILED: no alert on %s" % ALERT_TOPIC)
    if status != 0:
        say("FAILED: mqttrules exited with %s on SIGTERM" % status)
    return 0 if ok else 1


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warn", "error"))
    p.add_argument("--timeout", type=float, default=20,
                   help="seconds to wait for the requests (default 20)")
    args = p.parse_args(argv)

    binary = harness.daemon_binary()
    if not binary.exists():
        say("%s is missing: run scripts/build first (scripts/demo does)"
            % binary)
        return 1
    started = time.monotonic()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="mqttrules-demo-"))
    heading("mqttrules demo")
    say("Starts a private broker and a stand-in for Linkwarden, Gotify and "
        "n8n on\n127.0.0.1, runs mqttrules with the rules in rules/, "
        "publishes the Kompose\nsample events and shows the requests the "
        "rules make.\n")
    try:
        status = run(workdir, args.log_level, args.timeout)
    except (RuntimeError, AssertionError) as e:
        say("FAILED: %s" % e)
        status = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    say("%s in %.1f s; everything the demo started is stopped."
        % ("Done" if status == 0 else "Failed", time.monotonic() - started))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
