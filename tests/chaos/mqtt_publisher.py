"""A minimal MQTT 3.1.1 client that publishes at QoS 1 and waits for
each PUBACK, reconnecting and resending (DUP) across broker restarts, so
that the publisher itself never loses a message. Standard library only."""

import socket
import struct
import time


def _remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


class Publisher:

    def __init__(self, port, client_id="chaos-publisher"):
        self.port = port
        self.client_id = client_id
        self.sock = None
        self.packet_id = 0
        self.reconnects = 0

    def _connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        body = (_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60)
                + _string(self.client_id))
        sock.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
        ack = _read_exact(sock, 4)
        if ack[0] != 0x20 or ack[3] != 0:
            sock.close()
            raise ConnectionError("CONNACK refused: %r" % ack)
        self.sock = sock

    def _send(self, topic, payload, pid, dup):
        body = _string(topic) + struct.pack("!H", pid) + payload
        head = 0x32 | (0x08 if dup else 0)
        self.sock.sendall(bytes([head]) + _remaining_length(len(body))
                          + body)
        while True:
            kind = _read_exact(self.sock, 2)
            rest = _read_exact(self.sock, kind[1])
            if kind[0] == 0x40 and struct.unpack("!H", rest)[0] == pid:
                return

    def publish(self, topic, payload, deadline):
        """Publishes until the broker acknowledged it, or raises once
        deadline (time.monotonic()) has passed."""
        self.packet_id = self.packet_id % 65535 + 1
        dup = False
        while True:
            try:
                if self.sock is None:
                    self._connect()
                self._send(topic, payload, self.packet_id, dup)
                return
            except (OSError, ConnectionError):
                self.close()
                self.reconnects += 1
                dup = True
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
