#!/usr/bin/env python3
"""A local HTTP server standing in for Linkwarden, Gotify and n8n.

It answers the endpoints the shipped rules call, in the shapes the real
services use (status codes, bodies, validation limits), and records every
request. Tests use the StandIn class in-process; the demo and manual runs
use the command line, which serves on 127.0.0.1 only:

    python3 tests/helpers/stand_in.py --port 8080 --print --log req.jsonl

Endpoints: GET and POST /api/v1/collections, POST /api/v1/links
(Linkwarden); POST /message (Gotify); POST /webhook/<path> (n8n).
Anything else is 404.
"""

import argparse
import datetime
import http.server
import json
import signal
import socket
import sys
import threading
import time
import urllib.parse

# Linkwarden's validation limits; a rule that sends more gets a 400 here
# as it would from the real server.
MAX_TEXT = 2048
MAX_TAG = 50

# Headers that carry credentials: shown masked when printing requests.
SECRET_HEADERS = ("authorization", "x-gotify-key")


def service_of(path):
    """Names the service a request path belongs to."""
    if path.startswith("/api/v1/"):
        return "linkwarden"
    if path == "/message" or path.startswith("/message?"):
        return "gotify"
    if path.startswith("/webhook/") or path.startswith("/webhook-test/"):
        return "n8n"
    return "unknown"


def mask(value):
    """Keeps enough of a credential to tell which one was sent."""
    scheme, _, rest = value.rpartition(" ")
    shown = rest[:4] + "..." if len(rest) > 4 else "..."
    return (scheme + " " + shown) if scheme else shown


class _State:
    """What the fake services remember; guarded by the StandIn lock."""

    def __init__(self, collections):
        self.collections = [dict(c) for c in collections]
        self.next_collection = 1 + max(
            [c["id"] for c in self.collections] or [0])
        self.next_link = 1
        self.next_tag = 1
        self.tags = {}
        self.next_message = 1

    def add_collection(self, name):
        coll = {"id": self.next_collection, "name": name,
                "description": "", "color": "#0ea5e9", "parentId": None}
        self.next_collection += 1
        self.collections.append(coll)
        return coll

    def collection_by_id(self, cid):
        for coll in self.collections:
            if coll["id"] == cid:
                return coll
        return None

    def tag(self, name):
        if name not in self.tags:
            self.tags[name] = {"id": self.next_tag, "name": name}
            self.next_tag += 1
        return self.tags[name]


def _webhook_name(path):
    """The <path> of /webhook/<path>, or "" when there is none."""
    parts = path.split("/", 2)
    return parts[2] if len(parts) == 3 else ""


def _too_long(body):
    """Returns Linkwarden's complaint about an over-long field, or None."""
    for field in ("url", "name", "description"):
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            return "%s must be a string" % field
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return "%s is longer than %d characters" % (field, MAX_TEXT)
    tags = body.get("tags", [])
    if not isinstance(tags, list):
        return "tags must be a list"
    for tag in tags:
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str) or len(name) > MAX_TAG:
            return "each tag needs a name of at most %d characters" % MAX_TAG
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stand-in/1"
    # Idle keep-alive connections end on their own, so threads do too.
    timeout = 30

    def setup(self):
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and
        # the client's delayed ACK hold the body back some 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.stand_in._track(self.connection, True)

    def finish(self):
        self.server.stand_in._track(self.connection, False)
        super().finish()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def do_PATCH(self):
        self._serve()

    def do_DELETE(self):
        self._serve()

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(parts)

    def _serve(self):
        raw = self._read_body()
        stand_in = self.server.stand_in
        req = stand_in._record(self.command, self.path, self.headers, raw)
        status, body, delay = stand_in._answer(req)
        if delay:
            time.sleep(delay)
        data = body if isinstance(body, bytes) else \
            json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        stand_in._answered(req, status)


class _Server(http.server.ThreadingHTTPServer):
    # The daemon opens up to [http] max_connections (64) at once; the
    # default listen backlog of 5 would leave some unanswered.
    request_queue_size = 256


class StandIn:
    """The fake services on 127.0.0.1, recording every request.

    collections: the Linkwarden collections that already exist, as
    [{"id": N, "name": ...}]. tokens: optional {"linkwarden": ...,
    "gotify": ...}; when given, requests without that token get a 401.
    echo: a stream to print one line per request on. log_path: a file
    that gets one JSON line per request.

    Each recorded request is a dict: method, path (with query), service,
    headers (names in lower case), raw (bytes), body (text), json (parsed
    or None), time, and status and answered (its time) once answered.
    """

    def __init__(self, port=0, collections=None, tokens=None, echo=None,
                 log_path=None):
        if collections is None:
            collections = [{"id": 1, "name": "Unorganized"}]
        self.port = port
        self.tokens = dict(tokens or {})
        self.echo = echo
        self.log_path = log_path
        self._state = _State(collections)
        self._cond = threading.Condition()
        self._requests = []
        self._overrides = []
        self._connections = set()
        self._server = None
        self._thread = None

    # Life cycle.

    def start(self):
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.stand_in = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1},
            name="stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._cond:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # What tests look at and steer.

    def requests(self, service=None, path=None):
        """A copy of the requests so far, optionally only one service's
        or those whose path (query left out) equals path."""
        with self._cond:
            reqs = list(self._requests)
        if service is not None:
            reqs = [r for r in reqs if r["service"] == service]
        if path is not None:
            reqs = [r for r in reqs if r["path"].split("?")[0] == path]
        return reqs

    def wait_for(self, predicate, timeout=10, answered=True):
        """Waits until predicate(requests) is true; returns whether it
        became true within timeout seconds. Requests count once they are
        answered, so their status is known, unless answered is False."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = [r for r in self._requests
                        if "status" in r or not answered]
                if predicate(done):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def answer(self, path, status=None, body=None, times=None, method=None,
               delay=0):
        """Makes requests whose path (without query) starts with path get
        status and body instead of the normal answer (status None keeps
        the normal answer, e.g. to only add a delay). times limits how
        many requests this applies to; None is every one."""
        if body is None and status is not None:
            body = {"error": "stand-in answers %d" % status}
        with self._cond:
            self._overrides.append({"path": path, "status": status,
                                    "body": body, "times": times,
                                    "method": method, "delay": delay})

    def collections(self):
        with self._cond:
            return [dict(c) for c in self._state.collections]

    def describe(self):
        """The requests so far, one line each, for assertion messages."""
        lines = ["%s %s -> %s %s" % (r["method"], r["path"],
                                     r.get("status"), r["body"][:200])
                 for r in self.requests()]
        return "requests seen by the stand-in:\n  " + \
            ("\n  ".join(lines) if lines else "(none)")

    # Called from handler threads.

    def _track(self, conn, alive):
        with self._cond:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, method, path, headers, raw):
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        req = {"method": method, "path": path, "service": service_of(path),
               "headers": {k.lower(): v for k, v in headers.items()},
               "raw": raw, "body": text, "json": parsed,
               "time": time.time()}
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()
        return req

    def _answered(self, req, status):
        # Printed before waiters wake, so that a caller's own output
        # comes after the request it waited for.
        if self.echo is not None:
            self._print(req, status)
        if self.log_path is not None:
            self._append(req, status)
        with self._cond:
            req["status"] = status
            req["answered"] = time.time()
            self._cond.notify_all()

    def _print(self, req, status):
        shown = []
        for name in SECRET_HEADERS:
            if name in req["headers"]:
                shown.append("%s: %s" % (name, mask(req["headers"][name])))
        body = req["body"] if len(req["body"]) <= 160 else \
            req["body"][:157] + "..."
        line = "[%s] %s %s -> %d" % (req["service"], req["method"],
                                     req["path"], status)
        if shown:
            line += "  (" + ", ".join(shown) + ")"
        if body:
            line += "\n    " + body
        print(line, file=self.echo, flush=True)

    def _append(self, req, status):
        entry = {k: v for k, v in req.items() if k != "raw"}
        entry["status"] = status
        with self._cond, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def _answer(self, req):
        """Returns (status, body, delay) for a recorded request."""
        path = req["path"].split("?")[0]
        with self._cond:
            override = self._take_override(req["method"], path)
            if override is not None and override["status"] is not None:
                return override["status"], override["body"], \
                    override["delay"]
            delay = override["delay"] if override else 0
            status, body = self._route(req, path)
        return status, body, delay

    def _take_override(self, method, path):
        for ov in self._overrides:
            if not path.startswith(ov["path"]):
                continue
            if ov["method"] is not None and ov["method"] != method:
                continue
            if ov["times"] is not None:
                ov["times"] -= 1
                if ov["times"] <= 0:
                    self._overrides.remove(ov)
            return ov
        return None

    def _route(self, req, path):
        method = req["method"]
        service = req["service"]
        denied = self._check_token(req, service)
        if denied is not None:
            return denied
        if path == "/api/v1/collections" and method == "GET":
            return 200, {"response": self._state.collections}
        if path == "/api/v1/collections" and method == "POST":
            return self._create_collection(req["json"])
        if path == "/api/v1/links" and method == "POST":
            return self._create_link(req["json"])
        if path == "/message" and method == "POST":
            return self._create_message(req["json"])
        if service == "n8n" and method == "POST" and _webhook_name(path):
            return 200, {"message": "Workflow was started"}
        if service == "n8n":
            return 404, {"code": 404, "message": "The requested webhook "
                         "\"%s %s\" is not registered." % (method, path)}
        if service == "linkwarden":
            return 404, {"response": "Not found."}
        return 404, {"error": "not found"}

    def _check_token(self, req, service):
        want = self.tokens.get(service)
        if want is None:
            return None
        headers = req["headers"]
        if service == "linkwarden":
            if headers.get("authorization") == "Bearer " + want:
                return None
            return 401, {"response": "You must be logged in."}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(
            req["path"]).query)
        bearer = headers.get("authorization", "")
        bearer = bearer[7:] if bearer.startswith("Bearer ") else None
        if want in (headers.get("x-gotify-key"), bearer,
                    (query.get("token") or [None])[0]):
            return None
        return 401, {"error": "Unauthorized", "errorCode": 401,
                     "errorDescription": "you need to provide a valid "
                     "access token or user credentials to access this api"}

    def _create_collection(self, body):
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return 400, {"response": "Collection name is required."}
        return 200, {"response": self._state.add_collection(name)}

    def _create_link(self, body):
        if not isinstance(body, dict):
            return 400, {"response": "Invalid request body."}
        problem = _too_long(body)
        if problem:
            return 400, {"response": problem}
        coll = self._link_collection(body.get("collection"))
        if coll is None:
            return 400, {"response": "Collection is not accessible."}
        link = {"id": self._state.next_link,
                "name": body.get("name", ""),
                "url": body.get("url"),
                "description": body.get("description", ""),
                "collectionId": coll["id"], "collection": coll,
                "tags": [self._state.tag(t["name"])
                         for t in body.get("tags", [])]}
        self._state.next_link += 1
        return 200, {"response": link}

    def _link_collection(self, ref):
        """Finds the collection a link goes to, as Linkwarden does: an id
        must exist; a name other than Unorganized makes a new one."""
        if ref is None or ref == {}:
            ref = {"name": "Unorganized"}
        if not isinstance(ref, dict):
            return None
        if "id" in ref:
            return self._state.collection_by_id(ref["id"])
        name = ref.get("name")
        if name == "Unorganized":
            for coll in self._state.collections:
                if coll["name"] == name:
                    return coll
        return self._state.add_collection(name) if name else None

    def _create_message(self, body):
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            return 400, {"error": "Bad Request", "errorCode": 400,
                         "errorDescription": "Field 'message' is required"}
        stored = {"id": self._state.next_message, "appid": 1,
                  "message": message, "title": body.get("title", ""),
                  "priority": body.get("priority", 0),
                  "date": datetime.datetime.now(datetime.timezone.utc)
                  .isoformat(timespec="seconds").replace("+00:00", "Z")}
        self._state.next_message += 1
        return 200, stored


def _parse_args(argv):
    p = argparse.ArgumentParser(
        description="Serve fake Linkwarden, Gotify and n8n endpoints on "
        "127.0.0.1 and record every request.")
    p.add_argument("--port", type=int, default=0,
                   help="port to listen on (default: any free one)")
    p.add_argument("--print", action="store_true", dest="echo",
                   help="print one line per request on stdout")
    p.add_argument("--log", metavar="FILE",
                   help="append each request to FILE as a JSON line")
    p.add_argument("--collection", action="append", default=[],
                   metavar="ID=NAME", help="a Linkwarden collection that "
                   "already exists (repeatable)")
    p.add_argument("--linkwarden-token", help="require this Bearer token")
    p.add_argument("--gotify-token", help="require this application token")
    p.add_argument("--answer", action="append", default=[],
                   metavar="PATH=STATUS", help="answer requests whose path "
                   "starts with PATH with STATUS (repeatable)")
    return p.parse_args(argv)


def main(argv):
    args = _parse_args(argv)
    collections = [{"id": 1, "name": "Unorganized"}]
    for spec in args.collection:
        cid, _, name = spec.partition("=")
        collections.append({"id": int(cid), "name": name})
    tokens = {}
    if args.linkwarden_token:
        tokens["linkwarden"] = args.linkwarden_token
    if args.gotify_token:
        tokens["gotify"] = args.gotify_token
    server = StandIn(port=args.port, collections=collections, tokens=tokens,
                     echo=sys.stdout if args.echo else None,
                     log_path=args.log)
    for spec in args.answer:
        path, _, status = spec.rpartition("=")
        server.answer(path, int(status))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    try:
        print("stand-in listening on %s" % server.url, flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
