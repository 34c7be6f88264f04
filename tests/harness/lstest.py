"""Integration-test helpers: real processes on free ports, always torn down.

Every integration test file is a plain Python 3 script (Debian's python3,
no pip) that ends with ``lstest.main(globals())``. It runs every function
named ``test_*`` in definition order and prints TAP, which meson reads
(``protocol : 'tap'``). ``raise lstest.Skip("why")`` skips one test;
``lstest.skip_all("why")`` skips the whole file (TAP ``1..0 # SKIP``).

Processes are started inside one temporary directory per file, logs go to
files there, and everything started is stopped at exit, whatever happened.
On failure the tail of each process log is printed as TAP comments.
"""

import base64
import inspect
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

SOURCE_ROOT = os.environ.get(
    "LIGHTSTREAM_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_ROOT = os.environ.get("LIGHTSTREAM_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
LIGHTSTREAM = os.environ.get("LIGHTSTREAM_BIN", os.path.join(BUILD_ROOT, "cmd", "lightstream"))
FIXTURE = os.path.join(SOURCE_ROOT, "tests", "fixtures", "accounts.json")


class Skip(Exception):
    """Raised by a test to report itself skipped."""


_tmpdir = None
_procs = []


def tmpdir():
    """The per-file temporary directory (removed at exit unless KEEP_TMP)."""
    global _tmpdir
    if _tmpdir is None:
        _tmpdir = tempfile.mkdtemp(prefix="lstest-")
    return _tmpdir


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %d:\n%s"
                               % (proc.name, proc.returncode, port, proc.log_tail()))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %.1fs" % (host, port, timeout))


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll predicate() until it is truthy; return its value or raise."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() >= deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def stop_popen(popen, timeout=10.0):
    """SIGTERM popen (a subprocess.Popen), then SIGKILL after timeout.
    Returns the exit status."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    return popen.returncode


class Proc:
    """A started process whose output goes to a log file in tmpdir()."""

    def __init__(self, name, argv, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(tmpdir(), "%s-%d.log" % (name, len(_procs)))
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env,
                                      cwd=cwd or tmpdir(), start_new_session=True)
        self.pid = self.popen.pid
        _procs.append(self)

    def poll(self):
        return self.popen.poll()

    @property
    def returncode(self):
        return self.popen.returncode

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        return stop_popen(self.popen, timeout)

    def wait(self, timeout=None):
        return self.popen.wait(timeout)

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])


def redis_server(port=None):
    """Start a real redis-server on a free port; returns (proc, port)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (scripts/setup installs it)")
    port = port or free_port()
    data = os.path.join(tmpdir(), "redis-%d" % port)
    os.makedirs(data, exist_ok=True)
    proc = Proc("redis-%d" % port, [exe, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", data])
    wait_port(port, proc=proc)
    return proc, port


def lightstream(*args, name=None, env=None, wait_tcp=None, timeout=15.0):
    """Start `lightstream ARGS...`; wait until wait_tcp (a port) accepts."""
    proc = Proc(name or ("lightstream-" + (args[0] if args else "")),
                [LIGHTSTREAM] + [str(a) for a in args], env=env)
    if wait_tcp is not None:
        wait_port(wait_tcp, proc=proc, timeout=timeout)
    return proc


def run(*args, input=None, timeout=30, env=None):
    """Run `lightstream ARGS...` to completion; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([LIGHTSTREAM] + [str(a) for a in args], input=input,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


_bus_keys = {}


class BusKey:
    """A CURVE key pair made by `lightstream keygen --out PREFIX`."""

    def __init__(self, name):
        prefix = os.path.join(tmpdir(), "bus-%s" % name)
        r = run("keygen", "--out", prefix)
        if r.returncode != 0:
            raise RuntimeError("lightstream keygen failed: %s" % r.stderr)
        self.name = name
        self.key_file = prefix + ".key"  # public and secret, 0600
        self.pub_file = prefix + ".pub"
        self.public = r.stdout.strip()
        with open(self.key_file) as f:
            self.secret = json.load(f)["secret"]


def bus_key(name):
    """The key pair called name in this test file (made once)."""
    if name not in _bus_keys:
        _bus_keys[name] = BusKey(name)
    return _bus_keys[name]


def bus_broker_args(worker=("worker",), client=("client",), admin=("admin",),
                    broker="broker"):
    """Flags of a CURVE broker allowing the named keys with their roles."""
    args = ["--bus-keys", bus_key(broker).key_file]
    for role, names in (("worker", worker), ("client", client), ("admin", admin)):
        for n in names:
            args += ["--bus-allow", "%s:%s" % (role, bus_key(n).public)]
    return args


def bus_peer_args(name, broker="broker"):
    """Flags of a gateway, app server, admin or call using key name."""
    return ["--bus-keys", bus_key(name).key_file,
            "--bus-server-key", bus_key(broker).pub_file]


def bus_curve_socket(sock, name, broker="broker"):
    """Make a pyzmq socket a CURVE client with key name (before connect)."""
    k = bus_key(name)
    sock.curve_serverkey = bus_key(broker).public.encode()
    sock.curve_publickey = k.public.encode()
    sock.curve_secretkey = k.secret.encode()
    return sock


def http(method, url, body=None, headers=None, timeout=10):
    """One HTTP request; returns (status, headers dict, body bytes)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(method, url, body=None, headers=None, timeout=10):
    status, hdrs, raw = http(method, url, body, headers, timeout)
    try:
        return status, json.loads(raw.decode() or "null")
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class WSClosed(Exception):
    def __init__(self, code, reason):
        super().__init__("closed %s %r" % (code, reason))
        self.code = code
        self.reason = reason


class WS:
    """A small blocking WebSocket client (RFC 6455), exact on the wire.

    Enough to drive every protocol rule from a test: text and binary
    frames, fragmentation, oversized frames, pings, close codes.
    """

    def __init__(self, url, headers=None, timeout=10.0, source=None):
        assert url.startswith("ws://"), "WS supports ws:// only; use TLS helpers for wss"
        rest = url[5:]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /%s HTTP/1.1" % path, "Host: %s" % hostport, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key,
                 "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection closed during handshake")
            buf += chunk
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n")[0].decode()
        self.status = int(status_line.split()[1])
        if self.status != 101:
            raise ConnectionError("handshake refused: %s" % status_line)
        self.closed = None

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WSClosed(1006, "connection lost")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload, fin=True, mask=True):
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            header += bytes([mbit | n])
        elif n < 65536:
            header += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            header += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            header += key
        self.sock.sendall(header + payload)

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send(self, t, m):
        """Send one protocol envelope {"t": t, "m": m}."""
        self.send_json({"t": t, "m": m})

    def recv_frame(self, timeout=None):
        """Next frame as (opcode, payload); answers pings itself."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            b0, b1 = self._recv_exact(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            if b1 & 0x80:
                key = self._recv_exact(4)
                data = bytes(b ^ key[i % 4] for i, b in enumerate(self._recv_exact(n)))
            else:
                data = self._recv_exact(n)
            if opcode == 0x9:
                self.send_frame(0xA, data)
                continue
            if opcode == 0x8:
                code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                self.closed = (code, data[2:].decode("utf-8", "replace"))
                try:
                    self.send_frame(0x8, data[:2])
                except OSError:
                    pass
                raise WSClosed(code, self.closed[1])
            return opcode, data

    def recv(self, timeout=5.0):
        """Next text frame, parsed as JSON."""
        opcode, data = self.recv_frame(timeout)
        return json.loads(data.decode())

    def recv_type(self, t, timeout=5.0):
        """Skip frames until an envelope of type t; return its message."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no message of type %d within %.1fs" % (t, timeout))
            env = self.recv(left)
            if env.get("t") == t:
                return env["m"]

    def expect_close(self, timeout=5.0):
        """Read until the server closes; return the close code."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                self.recv_frame(max(0.01, deadline - time.time()))
        except WSClosed as e:
            return e.code
        except socket.timeout:
            pass
        raise AssertionError("server did not close within %.1fs" % timeout)

    def close(self, code=1000):
        try:
            self.send_frame(0x8, struct.pack(">H", code))
        except OSError:
            pass
        self.sock.close()


class _Piped:
    """A process a test started itself (for its pipes), stopped at exit
    like the ones lightstream() starts."""

    def __init__(self, popen):
        self.popen = popen
        self.name = " ".join(str(a) for a in popen.args[1:3])
        self.log_path = "its output is piped to the test"

    def log_tail(self, lines=40):
        return ""

    def stop(self, timeout=10.0):
        return stop_popen(self.popen, timeout)


def track(popen):
    """Stop popen (a subprocess.Popen) when the test file ends, also when
    a test failed before stopping it. Returns popen."""
    _procs.append(_Piped(popen))
    return popen


def _cleanup():
    for p in reversed(_procs):
        try:
            p.stop(timeout=5)
        except Exception:
            pass
    if _tmpdir and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(_tmpdir, ignore_errors=True)


def skip_all(reason):
    """Skip the whole file: TAP plan 1..0 with a SKIP directive."""
    print("1..0 # SKIP %s" % reason)
    sys.stdout.flush()
    _cleanup()
    sys.exit(0)


def main(namespace):
    """Run every test_* function of namespace in order; print TAP; exit."""
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith("test_") and inspect.isfunction(f)]
    only = os.environ.get("LS_TEST_FILTER")
    if only:
        tests = [(n, f) for n, f in tests if only in n]
    print("1..%d" % len(tests))
    sys.stdout.flush()
    failed = 0
    try:
        for i, (name, fn) in enumerate(tests, 1):
            try:
                fn()
                print("ok %d - %s" % (i, name))
            except Skip as e:
                print("ok %d - %s # SKIP %s" % (i, name, e))
            except Exception:
                failed += 1
                print("not ok %d - %s" % (i, name))
                for line in traceback.format_exc().splitlines():
                    print("# " + line)
                for p in _procs:
                    print("# --- log of %s (%s) ---" % (p.name, p.log_path))
                    for line in p.log_tail(40).splitlines():
                        print("#   " + line)
            sys.stdout.flush()
    finally:
        _cleanup()
    sys.exit(1 if failed else 0)
