"""The chaos test's HTTP target: records the sequence number of every
request, and can answer 503 or refuse connections for a while."""

import http.server
import json
import socket
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        target = self.server.target
        if target.failing:
            self._answer(503, b'{"error":"unavailable"}')
            return
        try:
            seq = json.loads(body)["seq"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, b'{"error":"no seq"}')
            return
        target.record(seq)
        self._answer(200, b'{"message":"Workflow was started"}')

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # Connections cut by the faults are expected here.
        pass


class Target:

    def __init__(self):
        self.port = None
        self.failing = False
        self.counts = {}
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def record(self, seq):
        with self.lock:
            self.counts[seq] = self.counts.get(seq, 0) + 1

    def start(self):
        self.server = _Server(("127.0.0.1", self.port or 0), _Handler)
        self.server.target = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def refuse(self):
        """Closes the listening socket: connections are refused until
        start() opens the same port again."""
        self.server.shutdown()
        self.server.socket.shutdown(socket.SHUT_RDWR)
        self.server.server_close()
        self.server = None

    def stop(self):
        if self.server is not None:
            self.refuse()

    def received(self):
        with self.lock:
            return dict(self.counts)
