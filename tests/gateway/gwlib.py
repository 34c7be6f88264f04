"""Helpers of the gateway tests: start `lightstream serve`, get tokens,
open authenticated WebSockets."""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import time
import urllib.parse

import lstest

WS_PATH = "/lightstream/websocket"


def serve(config=None, args=(), name="serve"):
    """Start `lightstream serve` on a free port with the fixture accounts.

    config: dict written as a JSON configuration file. Returns (proc, port).
    """
    port = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "data-%d" % port)
    os.makedirs(data, exist_ok=True)
    argv = ["serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
            "--fixture", lstest.FIXTURE]
    if config is not None:
        path = os.path.join(lstest.tmpdir(), "config-%d.json" % port)
        with open(path, "w") as f:
            json.dump(config, f)
        argv = ["serve", "--config", path] + argv[1:]
    proc = lstest.lightstream(*(argv + list(args)), name=name, wait_tcp=port)
    return proc, port


def url(port, path="/"):
    return "http://127.0.0.1:%d%s" % (port, path)


def ready(port):
    """Is the gateway on port ready (GET /readyz 200)?"""
    return lstest.http_json("GET", url(port, "/readyz"))[0] == 200


def metric(port, name):
    """The value of lightstream_<name> in the gateway's /metrics."""
    _, _, body = lstest.http("GET", url(port, "/metrics"))
    for line in body.decode().splitlines():
        if line.startswith("lightstream_" + name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def ws_url(port):
    return "ws://127.0.0.1:%d%s" % (port, WS_PATH)


def token(port, app, private, roles, ttl=None, web=False, ip=None,
          expect=200):
    """Issue a token over HTTP; returns the `data` of the answer."""
    q = {"publicKey": app, "privateKey": private, "roles": "|".join(roles)}
    if ttl is not None:
        q["ttl"] = str(ttl)
    if web:
        q["webToken"] = "true"
    if ip is not None:
        q["ipAddress"] = ip
    status, body = lstest.http_json(
        "GET", url(port, "/lightstream/services/auth/generatetoken?" +
                   urllib.parse.urlencode(q)))
    assert status == expect, (status, body)
    return body["data"]


ACC1 = ("acc1", "acc1_private")
SVC1 = ("svc1", "svc1_private")


def acc1_token(port, roles=("public", "publisher", "weather-reader"), **kw):
    return token(port, ACC1[0], ACC1[1], list(roles), **kw)["value"]


def connect(port, app, tok, headers=None):
    """An authenticated WebSocket; returns (ws, AuthResponse message)."""
    ws = lstest.WS(ws_url(port), headers=headers)
    ws.send(1, {"appKey": app, "token": tok})
    m = ws.recv_type(2)
    assert m["ok"] is True, m
    return ws, m


def subscribe(ws, owner, stream, query=None, rid="r1"):
    m = {"owner": owner, "stream": stream, "requestId": rid}
    if query is not None:
        m["query"] = query
    ws.send(6, m)
    r = ws.recv_type(7)
    assert r["requestId"] == rid, r
    return r


def signature(secret, app, tok, conn_id):
    return hmac.new(secret.encode(), ("%s:%s:%s" % (app, tok, conn_id)).encode(),
                    hashlib.sha256).hexdigest()


def send_masked_fast(ws, payload, opcode=0x1):
    """Send one masked frame quickly (big payloads)."""
    ws.sock.sendall(masked_frame(payload, opcode))


def masked_frame(payload, opcode=0x1):
    """The bytes of one masked client frame (several may go in one send)."""
    n = len(payload)
    header = bytes([0x80 | opcode])
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", n)
    key = os.urandom(4)
    reps = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(reps, "big")).to_bytes(n, "big") \
        if n else b""
    return header + key + masked


def raw_http(port, request, timeout=5):
    """Send raw bytes; return the whole answer (until close or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return out
    except socket.timeout:
        pass
    finally:
        s.close()
    return out


def tls_ws(port, ctx):
    """A lstest.WS over TLS (the helper itself speaks ws:// only)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET /lightstream/websocket HTTP/1.1\r\nHost: localhost\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "closed during the TLS handshake"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    ws = lstest.WS.__new__(lstest.WS)
    ws.sock, ws.buf, ws.closed, ws.status = sock, rest, None, 101
    return ws


class RawReader:
    """Server frames straight off a WebSocket's socket: nothing skipped,
    every header checked. Pings are answered unless answer_pings is False
    (another thread writing on the socket). Reads by offset, so tens of
    thousands of frames cost no copying per frame."""

    def __init__(self, ws, answer_pings=True):
        self.ws = ws
        self.sock = ws.sock
        self.buf = bytearray(ws.buf)  # bytes read with the handshake
        self.at = 0
        self.answer_pings = answer_pings
        ws.buf = b""

    def _fill(self, n, deadline):
        while len(self.buf) - self.at < n:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no frame within the time allowed")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed after %d bytes" % len(self.buf))
            if self.at > 0:
                del self.buf[:self.at]
                self.at = 0
            self.buf += chunk

    def frame(self, timeout=20.0):
        deadline = time.time() + timeout
        self._fill(2, deadline)
        a = self.at
        b0, b1 = self.buf[a], self.buf[a + 1]
        head = bytes(self.buf[a:a + 16])
        assert b0 & 0x80, "a fragment: %r" % head
        assert b0 & 0x70 == 0, "reserved bits set: %r" % head
        assert not b1 & 0x80, "a masked server frame: %r" % head
        opcode, n, hl = b0 & 0x0F, b1 & 0x7F, 2
        assert opcode in (0x1, 0x8, 0x9, 0xA), "opcode %d: %r" % (opcode, head)
        if n == 126:
            self._fill(4, deadline)
            a = self.at
            n, hl = struct.unpack(">H", self.buf[a + 2:a + 4])[0], 4
            assert n >= 126, "length not minimal"
        elif n == 127:
            self._fill(10, deadline)
            a = self.at
            n, hl = struct.unpack(">Q", self.buf[a + 2:a + 10])[0], 10
            assert 65536 <= n < 1 << 32, "length %d" % n
        self._fill(hl + n, deadline)
        a = self.at
        data = bytes(self.buf[a + hl:a + hl + n])
        self.at += hl + n
        if opcode == 0x9 and self.answer_pings:
            self.ws.send_frame(0xA, data)  # a live peer answers
        return opcode, data
