"""Helpers for the deployment tests: drive deploy/cluster, and WebSocket
clients (TLS through HAProxy, or plain straight to one gateway) that are
pumped together from one thread, so a test can publish, inject a fault and
watch every subscriber at once without threads.
"""

import base64
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import lstest

CLUSTER = os.path.join(lstest.SOURCE_ROOT, "deploy", "cluster")


class Cluster:
    """A cluster started by deploy/cluster in a directory of tmpdir()."""

    def __init__(self, gateways=3, appservers=2):
        self.dir = os.path.join(lstest.tmpdir(), "cluster")
        self.started = True
        # lstest stops its processes (and prints their logs on failure)
        # before removing tmpdir(): join that list.
        lstest._procs.append(_ClusterProc(self))
        r = self.run("start", "--bin", lstest.LIGHTSTREAM, "--base-port", "auto",
                     "--gateways", str(gateways), "--appservers", str(appservers),
                     "--fixture", lstest.FIXTURE, "--timeout", "60", "--drain-ms", "3000",
                     timeout=120)
        self.started = r.returncode == 0
        if not self.started:
            raise RuntimeError("deploy/cluster start failed:\n%s%s%s"
                               % (r.stdout, r.stderr, self.logs()))
        with open(os.path.join(self.dir, "cluster.json")) as f:
            self.state = json.load(f)
        self.ports = self.state["ports"]
        self.gateways = ["gateway%d" % i for i in range(1, gateways + 1)]
        self.ctx = ssl.create_default_context(cafile=self.state["cert"])
        self.ctx.check_hostname = False

    def run(self, *args, timeout=60):
        return subprocess.run([sys.executable, CLUSTER] + list(args) + ["--dir", self.dir],
                              capture_output=True, text=True, timeout=timeout)

    def stop(self):
        if self.started:
            self.run("stop", "--timeout", "10")
            self.started = False

    def kill(self, name, sig="KILL"):
        r = self.run("kill", name, "--signal", sig)
        assert r.returncode == 0, r.stderr

    def start_one(self, name):
        r = self.run("start-one", name, timeout=90)
        assert r.returncode == 0, r.stderr

    def status(self):
        r = self.run("status", "--json")
        return json.loads(r.stdout)

    def haproxy_status(self):
        """{gateway: HAProxy status ("UP", "UP 1/2" going down, "DOWN",
        "DOWN 1/2" coming up)}."""
        return {p["name"]: p["haproxy"] for p in self.status()["processes"]
                if p["name"].startswith("gateway")}

    def haproxy_up(self):
        """Names of the gateways HAProxy currently considers plainly up."""
        return sorted(n for n, v in self.haproxy_status().items() if v == "UP")

    def haproxy_all_down(self):
        return all((v or "").startswith("DOWN") for v in self.haproxy_status().values())

    def wait_all_up(self, timeout=60):
        lstest.wait_for(lambda: self.haproxy_up() == sorted(self.gateways), timeout=timeout,
                        interval=0.2, what="HAProxy to see every gateway up")

    def logs(self, lines=20):
        out = []
        d = os.path.join(self.dir, "logs")
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
                out.append("--- %s ---\n%s" % (name, "\n".join(tail)))
        return "\n".join(out)

    # -- HTTP through HAProxy (TLS)
    def https(self, method, path, body=None, headers=None):
        url = "https://127.0.0.1:%d%s" % (self.ports["https"], path)
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def token(self, app="svc1", private="svc1_private", roles="public", ip=None):
        args = {"publicKey": app, "privateKey": private, "roles": roles}
        if ip:
            args["ipAddress"] = ip
        q = urllib.parse.urlencode(args)
        status, body = self.https("GET", "/lightstream/services/auth/generatetoken?" + q)
        if status != 200:
            raise AssertionError("generatetoken: HTTP %d %r" % (status, body[:200]))
        return json.loads(body)["data"]["value"]

    def connect(self, token, app="svc1", tls=True, gateway=None, source=None, headers=None):
        """An authenticated client: through HAProxy (TLS), or plain to one
        gateway."""
        if gateway is not None:
            c = Client("127.0.0.1", self.ports[gateway], None, source=source, headers=headers)
        elif tls:
            c = Client("127.0.0.1", self.ports["https"], self.ctx, source=source,
                       headers=headers)
        else:
            c = Client("127.0.0.1", self.ports["http"], None, source=source, headers=headers)
        c.auth(app, token)
        return c


class _ClusterProc:
    """The whole cluster as one lstest process entry."""

    def __init__(self, cl):
        self.cl = cl
        self.name = "cluster"
        self.log_path = os.path.join(cl.dir, "logs")

    def stop(self, timeout=10.0):
        self.cl.stop()

    def log_tail(self, lines=40):
        return self.cl.logs(lines // 2)


class AuthRefused(AssertionError):
    def __init__(self, m):
        super().__init__("auth refused: %r" % m)
        self.m = m


class Closed(Exception):
    def __init__(self, code):
        super().__init__("connection closed (%s)" % code)
        self.code = code


class Client:
    """A WebSocket client whose input is parsed incrementally (never loses
    a partial frame), so many can be polled with select()."""

    def __init__(self, host, port, ctx, path="/lightstream/websocket", source=None,
                 headers=None):
        raw = socket.create_connection((host, port), timeout=10,
                                       source_address=(source, 0) if source else None)
        self.sock = ctx.wrap_socket(raw, server_hostname=host) if ctx else raw
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n%s\r\n"
                           % (path, host, port, key,
                              "".join("%s: %s\r\n" % kv for kv in (headers or {}).items()))
                           ).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            buf += chunk
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        status = head.split(b"\r\n")[0].decode()
        if status.split()[1] != "101":
            raise ConnectionError("handshake refused: %s" % status)
        self.inbox = []       # parsed envelopes not yet consumed
        self.closed = None    # close code once closed
        self.req = 0

    def fileno(self):
        return self.sock.fileno()

    def send(self, t, m):
        payload = json.dumps({"t": t, "m": m}).encode()
        self._send_frame(0x1, payload)

    def _send_frame(self, opcode, payload):
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def readable(self):
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def feed(self):
        """Read what is available and parse complete frames."""
        if self.closed is not None:
            return
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.closed = self.closed or 1006
            return
        self.buf += chunk
        while True:
            if len(self.buf) < 2:
                return
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, off = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                return
            data, self.buf = self.buf[off:off + n], self.buf[off + n:]
            op = b0 & 0x0F
            if op == 0x9:
                try:
                    self._send_frame(0xA, data)
                except OSError:
                    pass
            elif op == 0x8:
                self.closed = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                try:
                    self._send_frame(0x8, data[:2])
                except OSError:
                    pass
                return
            elif op == 0x1:
                self.inbox.append(json.loads(data.decode()))

    def take(self, t):
        """Remove and return the envelopes of type t received so far."""
        out = [e["m"] for e in self.inbox if e.get("t") == t]
        self.inbox = [e for e in self.inbox if e.get("t") != t]
        return out

    def wait(self, t, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.inbox):
                if e.get("t") == t:
                    del self.inbox[i]
                    return e["m"]
            if self.closed is not None:
                raise Closed(self.closed)
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no message of type %d within %.0fs" % (t, timeout))
            pump([self], min(left, 0.5))

    def auth(self, app, token):
        self.send(1, {"appKey": app, "token": token})
        m = self.wait(2)
        if not m.get("ok"):
            raise AuthRefused(m)
        return m

    def subscribe(self, owner, stream, query=None, since=None):
        """Subscribe; returns the subscription id. since: {epoch, offset}
        to resume (docs/protocol.md, "History and recovery"). The whole
        SubscribeResponse is kept in self.subscribed."""
        self.req += 1
        m = {"owner": owner, "stream": stream, "requestId": "r%d" % self.req}
        if query is not None:
            m["query"] = query
        if since is not None:
            m["since"] = since
        self.send(6, m)
        r = self.wait(7)
        if not r.get("ok"):
            raise AssertionError("subscribe refused: %r" % r)
        self.subscribed = r
        return r["subscriptionId"]

    def publish(self, owner, stream, data):
        self.req += 1
        rid = "p%d" % self.req
        self.send(5, {"owner": owner, "stream": stream, "data": data, "requestId": rid})
        r = self.wait(13)
        assert r.get("requestId") == rid and r.get("ok"), r
        return r

    def close(self):
        try:
            self._send_frame(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def pump(clients, timeout):
    """Wait up to timeout for input on any open client; parse it."""
    live = [c for c in clients if c.closed is None]
    if not live:
        time.sleep(timeout)
        return
    ready = [c for c in live if c.readable()]
    if not ready:
        ready, _, _ = select.select(live, [], [], timeout)
    for c in ready:
        c.feed()
