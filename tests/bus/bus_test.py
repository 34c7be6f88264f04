#!/usr/bin/env python3
"""Service bus (docs/bus.md) against the real `lightstream broker` over TCP,
with real worker processes (tests/bus/bus_test_worker, built on
bus_worker_pool) and raw ZeroMQ clients (python3-zmq). Every broker uses
CURVE with keys made by `lightstream keygen` (roles: worker, client, admin)
unless a test is about plain text."""

import json
import os
import signal
import socket
import struct
import time

import zmq

import lstest

WORKER = os.path.join(lstest.BUILD_ROOT, "tests", "bus", "bus_test_worker")
HB = 200  # heartbeat of brokers and workers in these tests (ms)

OK, ERROR, TIMEOUT, NOSERVICE = 1, 2, 3, 4

ctx = zmq.Context.instance()


def worker_curve(key):
    """bus_test_worker flags for CURVE with key."""
    return ["--curve-server-key", lstest.bus_key("broker").public,
            "--curve-keys", lstest.bus_key(key).key_file]


class Bus:
    """One broker on free ports, with helpers to start workers."""

    def __init__(self, *extra, front=None, back=None, insecure=False):
        self.front = front or lstest.free_port()
        self.back = back or lstest.free_port()
        self.fe = "tcp://127.0.0.1:%d" % self.front
        self.be = "tcp://127.0.0.1:%d" % self.back
        self.insecure = insecure
        sec = (["--bus-insecure"] if insecure
               else lstest.bus_broker_args(worker=("worker", "rogue")))
        self.broker = lstest.lightstream(
            "broker", "--broker-frontend", self.fe, "--broker-backend", self.be,
            "--heartbeat-ms", HB, *sec, *extra, name="broker", wait_tcp=self.front)
        self.workers = []

    def client(self, key="client"):
        return Client(self.fe, None if self.insecure else key)

    def peer_args(self, key="client"):
        """Flags of `lightstream call` on this bus with key."""
        return ["--broker-frontend", self.fe] + (
            ["--bus-insecure"] if self.insecure else lstest.bus_peer_args(key))

    def worker(self, threads=1, wait=True, key="worker", extra=()):
        sec = [] if self.insecure else worker_curve(key)
        w = lstest.Proc("worker", [WORKER, self.be, "--threads", str(threads),
                                   "--heartbeat-ms", str(HB), "--reconnect-ms", "200",
                                   *sec, *extra])
        self.workers.append(w)
        if wait:
            self.wait_workers(len([x for x in self.workers if x.poll() is None]) * 0 + threads,
                              at_least=True)
        return w

    def stats(self):
        with self.client() as c:
            status, body = c.raw("mmi.stats", b"")
            assert status == OK, (status, body)
            return json.loads(body)

    def nworkers(self):
        return self.stats()["services"].get("echo", {}).get("workers", 0)

    def wait_workers(self, n, at_least=False):
        lstest.wait_for(lambda: self.nworkers() >= n if at_least else self.nworkers() == n,
                        timeout=15, what="%d echo workers" % n)

    def stop(self):
        for w in self.workers:
            w.stop()
        return self.broker.stop()


def raw_socket(endpoint, key):
    """A DEALER connected to endpoint, a CURVE client with key (or plain)."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if key is not None:
        lstest.bus_curve_socket(sock, key)
    sock.connect(endpoint)
    return sock


class Client:
    """A raw DEALER client speaking docs/bus.md frames."""

    def __init__(self, endpoint, key="client"):
        self.sock = raw_socket(endpoint, key)
        self.next_id = 1

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, service, body):
        rid = self.next_id
        self.next_id += 1
        self.sock.send_multipart([struct.pack("<Q", rid), service.encode(), body])
        return rid

    def send_op(self, service, op, *args):
        return self.send(service, json.dumps({"o": op, "a": list(args)}).encode())

    def recv(self, timeout=5.0):
        """Next reply as (requestId, status, body str)."""
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError("no reply within %.1fs" % timeout)
        frames = self.sock.recv_multipart()
        assert len(frames) == 3, frames
        assert len(frames[1]) == 1, frames
        return struct.unpack("<Q", frames[0])[0], frames[1][0], frames[2].decode()

    def wait(self, rid, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            got, status, body = self.recv(max(0.01, deadline - time.time()))
            if got == rid:
                return status, body

    def raw(self, service, body, timeout=5.0):
        return self.wait(self.send(service, body), timeout)

    def call(self, service, op, *args, timeout=5.0):
        status, body = self.wait(self.send_op(service, op, *args), timeout)
        return status, (json.loads(body) if status == OK else body)


def test_round_trip():
    bus = Bus()
    bus.worker()
    with bus.client() as c:
        assert c.call("echo", "echo", "hello") == (OK, "hello")
        assert c.call("echo", "echo", 1, [2], {"x": None}) == (OK, [1, [2], {"x": None}])
        assert c.call("echo", "echo", "été ✓") == (OK, "été ✓")
        # Pipelined requests come back with their own ids.
        ids = [c.send_op("echo", "echo", i) for i in range(20)]
        got = {}
        for _ in ids:
            rid, status, body = c.recv()
            got[rid] = (status, json.loads(body))
        assert got == {rid: (OK, i) for i, rid in enumerate(ids)}
    bus.stop()


def test_unknown_service_answers_4():
    bus = Bus()
    bus.worker()
    with bus.client() as c:
        status, body = c.call("nosuch", "op")
        assert status == NOSERVICE, (status, body)
        assert c.raw("mmi.nosuch", b"")[0] == NOSERVICE
    bus.stop()


def test_unknown_op_and_bad_body_answer_2():
    bus = Bus()
    bus.worker()
    with bus.client() as c:
        # Error bodies are {"code", "message"} (docs/bus.md, "Errors").
        status, body = c.call("echo", "nope")
        err = json.loads(body)
        assert status == ERROR and err["code"] == "not_found", body
        assert "unknown operation" in err["message"] and "nope" in err["message"], body
        status, body = c.raw("echo", b"not json")
        err = json.loads(body)
        assert status == ERROR and err["code"] == "bad_request", body
        assert "malformed" in err["message"], body
        status, body = c.raw("echo", b'{"a": []}')
        err = json.loads(body)
        assert status == ERROR and err["code"] == "bad_request", body
        assert '"o"' in err["message"], body
        status, body = c.raw("echo", b'{"o": "echo", "a": 5}')
        err = json.loads(body)
        assert status == ERROR and err["code"] == "bad_request", body
        assert '"a"' in err["message"], body
        status, body = c.call("echo", "fail", "it broke")
        assert (status, json.loads(body)) == (
            ERROR, {"code": "bad_request", "message": "it broke"})
        # An internal failure carries its code; its text is logged by
        # the worker, never sent.
        status, body = c.call("echo", "broken", "store: /var/x.db: disk I/O error")
        err = json.loads(body)
        assert status == ERROR and err["code"] == "unavailable", body
        assert "x.db" not in body and "I/O" not in body, body
        # The worker is still there.
        assert c.call("echo", "echo", 7) == (OK, 7)
    bus.stop()


def test_two_workers_share_load():
    bus = Bus()
    a = bus.worker()
    b = bus.worker()
    bus.wait_workers(2)
    with bus.client() as c:
        ids = [c.send_op("echo", "sleep", 200) for _ in range(6)]
        pids = set()
        for _ in ids:
            rid, status, body = c.recv()
            assert status == OK, body
            pids.add(json.loads(body)["pid"])
    assert pids == {a.pid, b.pid}, pids
    bus.stop()


def test_kill9_mid_request_answers_error_and_survivor_serves():
    bus = Bus()
    a = bus.worker()
    with bus.client() as c:
        held = c.send_op("echo", "sleep", 30000)
        # a holds the request once no echo worker is idle.
        lstest.wait_for(lambda: bus.stats()["services"]["echo"]["idle"] == 0,
                        what="request held by the worker")
        b = bus.worker(wait=False)
        bus.wait_workers(2)
        a.kill9()
        status, body = c.wait(held, timeout=10)
        assert status == ERROR, (status, body)
        # The app server went away: transient, the caller may retry.
        assert json.loads(body)["code"] == "unavailable", body
        for _ in range(4):
            status, result = c.call("echo", "pid")
            assert (status, result) == (OK, b.pid)
        stats = bus.stats()["services"]["echo"]
        assert stats["workers"] == 1 and stats["failed"] == 1, stats
    bus.stop()


def test_kill9_with_several_held_answers_each_with_error():
    bus = Bus()
    a = bus.worker()
    with bus.client() as c:
        # A worker holds one request until it has answered one.
        assert c.call("echo", "pid") == (OK, a.pid)
        # One running, three waiting behind it on the same worker.
        held = [c.send_op("echo", "sleep", 30000) for _ in range(4)]
        lstest.wait_for(lambda: bus.stats()["services"]["echo"]["idle"] == 0,
                        what="requests held by the worker")
        queued = c.send_op("echo", "pid")
        lstest.wait_for(lambda: bus.stats()["services"]["echo"]["queue"] == 1,
                        what="a fifth request queued in the broker")
        a.kill9()
        got = {}
        while len(got) < len(held):
            rid, status, body = c.recv(timeout=10)
            got[rid] = (status, body)
        assert all(got[h][0] == ERROR for h in held), got
        # The queued one was never sent: the next worker serves it.
        b = bus.worker()
        assert c.wait(queued, timeout=10) == (OK, str(b.pid))
        stats = bus.stats()["services"]["echo"]
        assert stats["failed"] == 4 and stats["served"] == 2, stats
    bus.stop()


def test_no_worker_answers_timeout():
    bus = Bus("--timeout-ms", 500)
    w = bus.worker()
    assert w.stop() == 0  # SIGTERM: the pool says DISCONNECT
    bus.wait_workers(0)
    with bus.client() as c:
        status, body = c.call("echo", "echo", 1)
        assert status == TIMEOUT, (status, body)
    assert bus.stats()["services"]["echo"]["timedOut"] == 1
    r = lstest.run("call", *bus.peer_args(), "echo", "echo", "1")
    assert r.returncode == 1 and "timeout" in r.stderr, r
    bus.stop()


def test_queue_limit_rejects_with_error():
    bus = Bus("--queue-limit", 1)
    bus.worker()
    with bus.client() as c:
        assert c.call("echo", "echo", 0)[0] == OK  # answered one: prefetch
        held = c.send_op("echo", "sleep", 1000)
        lstest.wait_for(lambda: bus.stats()["services"]["echo"]["idle"] == 0,
                        what="request held by the worker")
        # The busy worker is also given up to 3 more (broker prefetch 4):
        # only what no worker can take waits in the bounded queue.
        behind = [c.send_op("echo", "echo", i) for i in range(3)]
        queued = c.send_op("echo", "echo", "queued")
        rejected = c.send_op("echo", "echo", "rejected")
        status, body = c.wait(rejected)
        assert status == ERROR and json.loads(body)["code"] == "unavailable", body
        assert "queue full" in json.loads(body)["message"], body
        assert c.wait(held)[0] == OK
        for i, b in enumerate(behind):
            assert c.wait(b) == (OK, str(i))
        assert c.wait(queued) == (OK, '"queued"')
    bus.stop()


def test_broker_restart_is_rejoined():
    bus = Bus()
    w = bus.worker()
    c = bus.client()
    assert c.call("echo", "pid") == (OK, w.pid)
    assert bus.broker.stop() == 0  # SIGTERM: clean exit 0
    bus2 = Bus(front=bus.front, back=bus.back)
    # Same worker process, same client socket: both reconnect by themselves.

    def served():
        try:
            return c.call("echo", "pid", timeout=0.5) == (OK, w.pid)
        except AssertionError:
            return False
    lstest.wait_for(served, timeout=20, interval=0.1, what="worker and client back")
    assert w.poll() is None
    c.close()
    w.stop()
    bus2.stop()


def test_workers_rejoin_soon_after_a_long_broker_outage():
    """After a broker outage of any length, workers are registered again
    within about one heartbeat interval plus the 2 s backoff cap — not after
    a backoff that kept doubling while the broker was away."""
    bus = Bus()
    w = lstest.Proc("worker", [WORKER, bus.be, "--heartbeat-ms", str(HB),
                               *worker_curve("worker")])
    bus.workers.append(w)
    bus.wait_workers(1)
    assert bus.broker.stop() == 0
    time.sleep(12)  # long enough for an uncapped backoff to reach 8 s
    bus2 = Bus(front=bus.front, back=bus.back)
    start = time.time()
    lstest.wait_for(lambda: bus2.nworkers() >= 1, timeout=20, interval=0.05,
                    what="worker registered again")
    took = time.time() - start
    assert took < 4.0, "worker back after %.1f s" % took
    assert w.poll() is None
    w.stop()
    bus2.stop()


def test_malformed_frames_leave_broker_serving():
    bus = Bus()
    bus.worker()
    front = raw_socket(bus.fe, "client")
    for frames in ([b"x"], [b""], [b"short", b"echo", b"{}"],
                   [struct.pack("<Q", 1), b"", b"{}"],
                   [struct.pack("<Q", 2), b"echo"],
                   [struct.pack("<Q", 3), b"e" * 300, b"{}"],
                   [b"x"] * 40):
        front.send_multipart(frames)
    back = raw_socket(bus.be, "worker")
    for frames in ([b"garbage"], [b"LSW1"], [b"LSW1", b"\x09"], [b"LSW1", b"\x01\x02"],
                   [b"LSW1", b"\x03", b"who", b"1", b"\x01", b"x"],
                   [b"LSW1", b"\x01"], [b"LSW1", b"\x01", b"s" * 300],
                   [b"LSW1", b"\x01", b"mmi.service"], [b"x"] * 40):
        back.send_multipart(frames)
    # An unknown worker sending anything but READY is told to DISCONNECT.
    back.send_multipart([b"LSW1", b"\x04"])
    assert back.poll(5000), "no DISCONNECT"
    got = back.recv_multipart()
    while got != [b"LSW1", b"\x05"]:
        assert back.poll(5000), "no DISCONNECT"
        got = back.recv_multipart()
    # Raw bytes that are not even ZMTP.
    for port in (bus.front, bus.back):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(os.urandom(4096))
            time.sleep(0.05)
    front.close()
    back.close()
    with bus.client() as c:
        assert c.call("echo", "echo", "still here") == (OK, "still here")
    assert bus.broker.poll() is None
    assert "malformed" in bus.broker.log_text()
    bus.stop()


def test_mmi_service_and_stats():
    bus = Bus()
    bus.worker()
    with bus.client() as c:
        assert c.raw("mmi.service", b"echo") == (OK, "200")
        assert c.raw("mmi.service", b"nosuch") == (OK, "404")
        for i in range(3):
            assert c.call("echo", "echo", i)[0] == OK
        assert c.call("echo", "fail")[0] == ERROR
        status, body = c.raw("mmi.stats", b"")
        assert status == OK
        echo = json.loads(body)["services"]["echo"]
        assert echo["served"] == 3 and echo["failed"] == 1, echo
        assert echo["workers"] == 1 and echo["queue"] == 0, echo
        assert echo["timedOut"] == 0, echo
    bus.stop()


def test_call_command():
    bus = Bus()
    bus.worker()
    fe = bus.peer_args()
    r = lstest.run("call", *fe, "echo", "echo", "hello", "12", '{"a":[1,true]}')
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == ["hello", 12, {"a": [1, True]}], r.stdout
    r = lstest.run("call", *fe, "-o", "plain", "echo", "echo", "hello world")
    assert (r.returncode, r.stdout) == (0, "hello world\n"), r
    r = lstest.run("call", *fe, "echo", "echo", '"12"')
    assert (r.returncode, r.stdout) == (0, '"12"\n'), r
    r = lstest.run("call", *fe, "echo", "nope")
    assert r.returncode == 1 and "unknown operation" in r.stderr and r.stdout == "", r
    r = lstest.run("call", *fe, "echo", "fail", "boom")
    assert r.returncode == 1 and "bad_request: boom" in r.stderr, r
    r = lstest.run("call", *fe, "echo", "broken", "secret-detail")
    assert r.returncode == 1 and "unavailable" in r.stderr, r
    assert "secret-detail" not in r.stderr, r
    r = lstest.run("call", *fe, "nosuch", "op")
    assert r.returncode == 1 and "no such service" in r.stderr, r
    r = lstest.run("call", *fe, "-t", "200", "echo", "sleep", "3000")
    assert r.returncode == 1 and "timeout" in r.stderr, r
    r = lstest.run("call", *fe, "mmi.service", "echo")
    assert (r.returncode, r.stdout) == (0, "200\n"), r
    r = lstest.run("call", *fe, "mmi.stats")
    assert r.returncode == 0 and "echo" in json.loads(r.stdout)["services"], r
    args = os.path.join(lstest.tmpdir(), "args.json")
    with open(args, "w") as f:
        json.dump([{"big": "x" * 200000}, 2], f)
    r = lstest.run("call", *fe, "-f", args, "echo", "echo")
    assert r.returncode == 0 and json.loads(r.stdout) == [{"big": "x" * 200000}, 2], r.stderr
    r = lstest.run("call", *fe, "--args-file", "-", "echo", "echo", input='["from stdin"]')
    assert (r.returncode, r.stdout) == (0, '"from stdin"\n'), r
    r = lstest.run("call", *fe, "-f", "-", "echo", "echo", input='{"not": "an array"}')
    assert r.returncode == 2 and "array" in r.stderr, r
    r = lstest.run("call", *fe, "-f", args, "echo", "echo", "extra")
    assert r.returncode == 2, r
    r = lstest.run("call", "--help")
    assert r.returncode == 0 and "SERVICE OPERATION" in r.stdout, r
    r = lstest.run("call", *fe, "echo")
    assert r.returncode == 2 and "OPERATION" in r.stderr, r
    r = lstest.run("call", *fe, "-o", "yaml", "echo", "echo")
    assert r.returncode == 2, r
    r = lstest.run("broker", "--help")
    assert r.returncode == 0 and "--queue-limit" in r.stdout, r
    bus.stop()
    # Nothing listens: the call times out, exit 1.
    r = lstest.run("call", "--broker-frontend", "tcp://127.0.0.1:%d" % lstest.free_port(),
                   *lstest.bus_peer_args("client"), "-t", "300", "echo", "echo")
    assert r.returncode == 1 and "timeout" in r.stderr, r


def test_broker_refuses_busy_address():
    bus = Bus()
    other = lstest.run("broker", "--broker-frontend", bus.fe, "--broker-backend",
                       "tcp://127.0.0.1:%d" % lstest.free_port(),
                       *lstest.bus_broker_args(), timeout=10)
    assert other.returncode == 1 and "in use" in other.stderr, other
    bus.stop()


def test_wire_protocol_with_a_raw_worker():
    """A worker written from docs/bus.md alone: READY, REQUEST, REPLY frames."""
    bus = Bus()
    w = raw_socket(bus.be, "worker")
    w.send_multipart([b"LSW1", b"\x01", b"raw", b"raw2"])
    with bus.client() as c:
        lstest.wait_for(lambda: c.raw("mmi.service", b"raw2") == (OK, "200"),
                        what="raw worker registered")
        rid = c.send("raw", b'{"o":"x","a":[1]}')

        def next_request():
            while True:
                assert w.poll(5000), "no REQUEST"
                f = w.recv_multipart()
                if f[1] == b"\x02":
                    return f
                assert f == [b"LSW1", b"\x04"], f  # only heartbeats otherwise
        f = next_request()
        assert f[0] == b"LSW1" and len(f) == 6, f
        client, reqid, service, body = f[2:]
        assert struct.unpack("<Q", reqid)[0] == rid and service == b"raw", f
        assert json.loads(body) == {"o": "x", "a": [1]}
        # A reply that does not match the request it holds is dropped ...
        w.send_multipart([b"LSW1", b"\x03", client, struct.pack("<Q", rid + 99), b"\x01", b"1"])
        w.send_multipart([b"LSW1", b"\x03", client, reqid])
        # ... the matching one is delivered, byte for byte.
        w.send_multipart([b"LSW1", b"\x03", client, reqid, b"\x01", b'{"ok":true}'])
        assert c.wait(rid) == (OK, '{"ok":true}')
        # An out-of-range status reaches the client as an error.
        rid = c.send("raw2", b"{}")
        f = next_request()
        w.send_multipart([b"LSW1", b"\x03", f[2], f[3], b"\x09", b"odd"])
        assert c.wait(rid) == (ERROR, "odd")
        # DISCONNECT from the worker: gone at once.
        w.send_multipart([b"LSW1", b"\x05"])
        lstest.wait_for(lambda: c.raw("mmi.service", b"raw") == (OK, "404"),
                        what="raw worker gone")
    w.close()
    assert bus.broker.poll() is None
    bus.stop()


def test_random_frames_leave_broker_serving():
    import random
    rnd = random.Random(1234)
    bus = Bus()
    bus.worker()
    socks = []
    for ep, key in ((bus.fe, "client"), (bus.be, "worker")):
        socks.append(raw_socket(ep, key))
    heads = [b"", b"LSW1", struct.pack("<Q", 7), b"echo", b"mmi.stats", b"mmi.service"]
    for i in range(2000):
        frames = []
        for _ in range(rnd.randint(1, 30)):
            if rnd.random() < 0.3:
                frames.append(rnd.choice(heads))
            elif rnd.random() < 0.5:
                frames.append(bytes([rnd.randint(0, 6)]))
            else:
                frames.append(rnd.randbytes(rnd.randint(0, 300)))
        socks[i % 2].send_multipart(frames)
    with bus.client() as c:
        assert c.call("echo", "echo", "alive", timeout=10) == (OK, "alive")
    for s in socks:
        s.close()
    assert bus.broker.poll() is None
    assert bus.stop() == 0


def forbidden(status, body):
    """A refusal by the broker for the key's role (docs/bus.md)."""
    if status != ERROR:
        return False
    try:
        return json.loads(body)["code"] == "forbidden"
    except (ValueError, TypeError, KeyError):
        return False


def test_keygen_writes_key_files():
    prefix = os.path.join(lstest.tmpdir(), "kg")
    r = lstest.run("keygen", "--out", prefix)
    assert r.returncode == 0, r
    public = r.stdout.strip()
    assert len(public) == 40
    with open(prefix + ".key") as f:
        pair = json.load(f)
    assert pair["public"] == public and len(pair["secret"]) == 40
    assert os.stat(prefix + ".key").st_mode & 0o777 == 0o600  # secret: owner only
    with open(prefix + ".pub") as f:
        assert f.read() == public + "\n"
    # Never overwrites a key.
    r = lstest.run("keygen", "--out", prefix)
    assert r.returncode == 1 and "exists" in r.stderr, r
    r = lstest.run("keygen")
    assert r.returncode == 0 and len(json.loads(r.stdout)["secret"]) == 40, r


def test_encrypted_round_trip_and_unlisted_keys():
    bus = Bus()
    w = bus.worker()
    r = lstest.run("call", *bus.peer_args(), "echo", "echo", "secret")
    assert (r.returncode, r.stdout) == (0, '"secret"\n'), r
    # A key not on the list, and a plain client, are not served.
    r = lstest.run("call", *bus.peer_args("stranger"), "-t", 700, "echo", "echo", "x")
    assert r.returncode == 1 and "timeout" in r.stderr, r
    with Client(bus.fe, None) as c:
        c.send_op("echo", "echo", 1)
        assert not c.sock.poll(700), "a plain client was answered"
    assert "refused" in bus.broker.log_text()
    # Bad key material is refused up front.
    r = lstest.run("call", "--broker-frontend", bus.fe, "--bus-server-key", "short",
                   "--bus-keys", lstest.bus_key("client").key_file, "echo", "echo")
    assert r.returncode == 2, r
    assert w.poll() is None
    bus.stop()


def test_rogue_worker_with_unlisted_key_never_gets_requests():
    bus = Bus()
    good = bus.worker()
    rogue = lstest.Proc("rogue", [WORKER, bus.be, "--heartbeat-ms", str(HB),
                                  "--reconnect-ms", "200", *worker_curve("stranger")])
    raw = raw_socket(bus.be, "stranger")
    raw.send_multipart([b"LSW1", b"\x01", b"echo"])
    lstest.wait_for(lambda: "CURVE peer %s refused" % lstest.bus_key("stranger").public
                    in bus.broker.log_text(), what="rogue refused")
    with bus.client() as c:
        for _ in range(10):
            assert c.call("echo", "pid") == (OK, good.pid)
    assert bus.nworkers() == 1
    assert not raw.poll(300), "the rogue received something"
    raw.close()
    assert rogue.poll() is None  # still trying, never registered
    bus.stop()


def test_client_key_cannot_register_worker_key_cannot_call():
    bus = Bus()
    impostor = bus.worker(wait=False, key="client")
    lstest.wait_for(lambda: "not a worker key" in bus.broker.log_text(),
                    what="READY with a client key refused")
    assert bus.nworkers() == 0
    assert bus.stats()["forbidden"] >= 1
    impostor.stop()
    bus.worker()
    with bus.client("worker") as c:
        assert forbidden(*c.call("echo", "echo", 1))
        assert forbidden(*c.raw("mmi.stats", b""))
    r = lstest.run("call", *bus.peer_args("worker"), "echo", "echo", "1")
    assert r.returncode == 1 and "forbidden" in r.stderr, r
    with bus.client("client") as c:
        assert c.call("echo", "echo", 1) == (OK, 1)
    bus.stop()


def test_only_admin_keys_reach_accounts_and_db():
    bus = Bus()
    data = os.path.join(lstest.tmpdir(), "admin-data")
    os.makedirs(data)
    lstest.lightstream("appserver", "--broker-backend", bus.be, "--data", data,
                       "--heartbeat-ms", HB, "--fixture", lstest.FIXTURE,
                       *lstest.bus_peer_args("worker"), name="appserver")
    with bus.client() as c:
        lstest.wait_for(lambda: c.raw("mmi.service", b"db") == (OK, "200"), what="app server")
        assert forbidden(*c.call("accounts", "list"))
        assert forbidden(*c.call("db", "resetDatabase", {"accounts": []}))
        status, body = c.call("auth", "validateToken", "acc1", "x" * 43, "127.0.0.1")
        assert status == ERROR and not forbidden(status, body), body  # reaches auth
    with bus.client("admin") as c:
        status, accounts = c.call("accounts", "list")
        assert status == OK and "acc1" in {a["appKey"] for a in accounts}, accounts
    r = lstest.run("admin", *bus.peer_args("client"), "account", "list")
    assert r.returncode == 1 and "forbidden" in r.stderr, r
    r = lstest.run("admin", *bus.peer_args("admin"), "account", "list")
    assert r.returncode == 0 and "acc1" in r.stdout, r
    bus.stop()


def test_plain_text_needs_the_insecure_flag():
    fe = "tcp://127.0.0.1:%d" % lstest.free_port()
    be = "tcp://127.0.0.1:%d" % lstest.free_port()
    front, back = ["--broker-frontend", fe], ["--broker-backend", be]
    # Each role with the endpoints it uses (the others are not its options).
    for argv, eps in ((["broker"], front + back), (["appserver"], back),
                      (["gateway", "--listen", "127.0.0.1:%d" % lstest.free_port()], front),
                      (["admin", "account", "list"], front), (["call", "echo", "echo"], front)):
        r = lstest.run(*argv, *eps, timeout=10)
        assert r.returncode == 2, (argv, r)
        assert "lightstream keygen" in r.stderr and "bus.insecure" in r.stderr, (argv, r)
    cfg = os.path.join(lstest.tmpdir(), "insecure.json")
    with open(cfg, "w") as f:
        json.dump({"bus": {"insecure": True, "frontend": fe, "backend": be,
                           "heartbeat_ms": HB}}, f)
    broker = lstest.lightstream("broker", "--config", cfg, name="broker-plain",
                                wait_tcp=int(fe.rsplit(":", 1)[1]))
    assert "bus.insecure" in broker.log_text() and "development only" in broker.log_text()
    w = lstest.Proc("worker", [WORKER, be, "--heartbeat-ms", str(HB)])
    r = None
    for _ in range(50):
        r = lstest.run("call", "--config", cfg, "-t", 500, "echo", "echo", "plain")
        if r.returncode == 0:
            break
    assert (r.returncode, r.stdout) == (0, '"plain"\n'), r
    assert "bus.insecure" in r.stderr  # the warning, on every role
    # No roles without keys: every client may call everything.
    with Client(fe, None) as c:
        assert c.raw("mmi.stats", b"")[0] == OK
    w.stop()
    broker.stop()


def test_ipc_endpoint_is_owner_only():
    d = os.path.join(lstest.tmpdir(), "ipc")
    os.makedirs(d)
    fe = "ipc://%s/front.sock" % d
    be = "ipc://%s/back.sock" % d
    old = os.umask(0)
    try:
        broker = lstest.lightstream("broker", "--broker-frontend", fe, "--broker-backend", be,
                                    "--heartbeat-ms", HB, *lstest.bus_broker_args(),
                                    name="broker-ipc")
    finally:
        os.umask(old)
    for path in (fe[6:], be[6:]):
        lstest.wait_for(lambda: os.path.exists(path), what=path)
        assert os.stat(path).st_mode & 0o777 == 0o600, oct(os.stat(path).st_mode)
    w = lstest.Proc("worker", [WORKER, be, "--heartbeat-ms", str(HB), *worker_curve("worker")])
    with Client(fe) as c:
        lstest.wait_for(lambda: c.raw("mmi.service", b"echo") == (OK, "200"), what="worker")
        assert c.call("echo", "echo", "over ipc") == (OK, "over ipc")
    w.stop()
    broker.stop()


def test_junk_service_names_do_not_grow_the_table():
    bus = Bus()
    bus.worker()
    with bus.client() as c:
        ids = [c.send("junk-%d" % i, b"{}") for i in range(3000)]
        got = 0
        while got < len(ids):
            rid, status, body = c.recv()
            assert status == NOSERVICE, (status, body)
            got += 1
    stats = bus.stats()
    assert set(stats["services"]) == {"echo"}, len(stats["services"])
    assert stats["limits"]["services"] == 1024 and stats["queued"] == 0, stats
    # READY with more services than a worker may serve is refused.
    raw = raw_socket(bus.be, "worker")
    names = [("many-%d" % i).encode() for i in stats["limits"]["servicesPerWorker"] + 1 and
             range(stats["limits"]["servicesPerWorker"] + 1)]
    raw.send_multipart([b"LSW1", b"\x01"] + names)
    assert raw.poll(5000) and raw.recv_multipart() == [b"LSW1", b"\x05"]
    assert set(bus.stats()["services"]) == {"echo"}
    raw.close()
    # Junk registered with a worker key fills the table up to its bound,
    # no further; once those workers are gone their entries make room.
    limit, per = stats["limits"]["services"], stats["limits"]["servicesPerWorker"]
    socks = []

    refused = set()

    def pump():
        for k, s in enumerate(socks):
            while s.poll(0):
                if s.recv_multipart() == [b"LSW1", b"\x05"]:
                    refused.add(k)
            s.send_multipart([b"LSW1", b"\x04"])
    for k in range(limit // per + 2):
        s = raw_socket(bus.be, "worker")
        s.send_multipart([b"LSW1", b"\x01"] +
                         [("junk-%d-%d" % (k, i)).encode() for i in range(per)])
        socks.append(s)
        pump()
    # A READY is taken whole or refused: "echo" and `fit` junk workers.
    fit = (limit - 1) // per
    lstest.wait_for(lambda: len(bus.stats()["services"]) == 1 + fit * per, what="table full")
    deadline = time.time() + 5
    while len(refused) < len(socks) - fit and time.time() < deadline:
        pump()
        time.sleep(0.05)
    # (connections complete their handshakes in any order)
    assert len(refused) == len(socks) - fit, refused
    assert len(bus.stats()["services"]) == 1 + fit * per <= limit
    # Single names fill it exactly; one more is refused.
    first = len(socks)
    for k in range(limit - 1 - fit * per + 1):
        s = raw_socket(bus.be, "worker")
        s.send_multipart([b"LSW1", b"\x01", ("one-%d" % k).encode()])
        socks.append(s)
        pump()
    lstest.wait_for(lambda: len(bus.stats()["services"]) == limit, what="table full")
    deadline = time.time() + 5
    while len(refused & set(range(first, len(socks)))) < 1 and time.time() < deadline:
        pump()
        time.sleep(0.05)
    assert len(refused & set(range(first, len(socks)))) == 1, refused
    assert len(bus.stats()["services"]) == limit
    with bus.client() as c:
        assert c.call("echo", "echo", "still") == (OK, "still")
    for s in socks:
        s.send_multipart([b"LSW1", b"\x05"])
        s.close()
    lstest.wait_for(lambda: bus.stats()["workers"] == 1, what="junk workers gone")
    fresh = bus.worker(wait=False, extra=("--service", "fresh"))
    with bus.client() as c:
        lstest.wait_for(lambda: c.raw("mmi.service", b"fresh") == (OK, "200"),
                        what="a new service registered in a table that was full")
        assert c.call("fresh", "pid") == (OK, fresh.pid)
    assert len(bus.stats()["services"]) <= limit
    bus.stop()


def test_workers_that_never_answer_do_not_starve_real_ones():
    # 20 registered workers (a listed key) that take requests and never
    # answer, beside one real worker: requests they hold are answered
    # `timeout` at their deadline, they are purged, and the real worker
    # serves everything else.
    bus = Bus("--timeout-ms", 800)
    good = bus.worker()
    with bus.client() as c:
        assert c.call("echo", "pid") == (OK, good.pid)  # it has answered
    rogues = [raw_socket(bus.be, "rogue") for _ in range(20)]
    for r in rogues:
        r.send_multipart([b"LSW1", b"\x01", b"echo"])

    def pump():
        # The rogues keep their heartbeat, take requests, never reply.
        got = 0
        for r in rogues:
            while r.poll(0):
                f = r.recv_multipart()
                got += f[1] == b"\x02"
            r.send_multipart([b"LSW1", b"\x04"])
        return got
    lstest.wait_for(lambda: pump() >= 0 and bus.nworkers() == 21, what="21 workers")
    with bus.client() as c:
        # One request at a time: always the real worker.
        for _ in range(20):
            rid = c.send_op("echo", "pid")
            pump()
            assert c.wait(rid) == (OK, str(good.pid))
        # A burst larger than the real worker takes: some go to the rogues.
        ids = [c.send_op("echo", "sleep", 300) for _ in range(12)]
        t0 = time.time()
        results = {}
        while len(results) < len(ids):
            assert time.time() - t0 < 10, "held requests never answered: %r" % results
            pump()
            if c.sock.poll(50):
                rid, status, body = c.recv()
                results[rid] = (status, time.time() - t0)
        timed_out = [s for s, _ in results.values() if s == TIMEOUT]
        assert all(s in (OK, TIMEOUT) for s, _ in results.values()), results
        assert timed_out, "no request reached a silent worker"
        assert max(dt for _, dt in results.values()) < 5, results
        # The silent ones were purged: the real worker serves again.
        lstest.wait_for(lambda: pump() >= 0 and bus.nworkers() < 21, what="purge")
        for _ in range(10):
            rid = c.send_op("echo", "pid")
            pump()
            assert c.wait(rid) == (OK, str(good.pid))
    assert "expire: purged" in bus.broker.log_text()
    assert bus.stats()["services"]["echo"]["timedOut"] == len(timed_out)
    for r in rogues:
        r.close()
    bus.stop()


def test_admin_and_call_with_data_manage_a_running_serve():
    data = os.path.join(lstest.tmpdir(), "serve-data")
    port = lstest.free_port()
    serve = lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                               "--fixture", lstest.FIXTURE, name="serve", wait_tcp=port)
    sock = os.path.join(data, "bus.sock")
    assert os.stat(sock).st_mode & 0o777 == 0o600, oct(os.stat(sock).st_mode)
    assert os.stat(os.path.join(data, "admin.key")).st_mode & 0o777 == 0o600
    # No extra step: the keys were made in the data directory.
    r = lstest.run("admin", "--data", data, "account", "list")
    assert r.returncode == 0 and "acc1" in r.stdout, r
    r = lstest.run("admin", "--data", data, "account", "add", "acc9", "--private-key",
                   "p" * 12, "--secret-key", "s" * 12)
    assert r.returncode == 0, r
    r = lstest.run("call", "--data", data, "accounts", "get", "acc9")
    assert r.returncode == 0 and "acc9" in r.stdout, r
    r = lstest.run("call", "--data", data, "mmi.service", "auth")
    assert (r.returncode, r.stdout) == (0, "200\n"), r
    # The socket is CURVE: a client without the keys is not answered.
    with Client("ipc://" + sock, None) as c:
        c.send("mmi.service", b"auth")
        assert not c.sock.poll(700), "answered without keys"
    # An explicit --broker-frontend takes precedence over --data.
    nothing = "tcp://127.0.0.1:%d" % lstest.free_port()
    r = lstest.run("call", "--data", data, "--broker-frontend", nothing, "--bus-insecure",
                   "-t", 300, "mmi.service", "auth")
    assert r.returncode == 1 and "timeout" in r.stderr, r
    # --data without a bus socket is an error, never the default tcp bus.
    empty = os.path.join(lstest.tmpdir(), "empty-data")
    os.makedirs(empty)
    for argv in (["admin", "--data", empty, "account", "list"],
                 ["call", "--data", empty, "mmi.service", "auth"]):
        r = lstest.run(*argv, timeout=10)
        assert r.returncode == 2 and "no bus socket" in r.stderr, (argv, r)
    assert serve.stop() == 0
    assert not os.path.exists(sock)
    # Restarted with its bus also on tcp: the same admin key still works,
    # over the socket and over tcp; the pieces inside serve need no key.
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    serve = lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                               "--broker-frontend", front, name="serve2", wait_tcp=port)
    r = lstest.run("admin", "--data", data, "account", "show", "acc9")
    assert r.returncode == 0 and "acc9" in r.stdout, r
    r = lstest.run("admin", "--broker-frontend", front,
                   "--bus-keys", os.path.join(data, "admin.key"),
                   "--bus-server-key", os.path.join(data, "bus.pub"), "account", "show", "acc9")
    assert r.returncode == 0 and "acc9" in r.stdout, r
    status, body = lstest.http_json(
        "GET", "http://127.0.0.1:%d/lightstream/services/auth/generatetoken"
        "?publicKey=acc1&privateKey=acc1_private&roles=public" % port)
    assert status == 200 and len(body["data"]["value"]) == 43, (status, body)
    r = lstest.run("admin", "--broker-frontend", front, "--bus-insecure", "-t", 500,
                   "account", "list")
    assert r.returncode == 1, r  # plain text is not answered
    assert serve.stop() == 0
    # With bus.insecure the socket is plain (still 0600) and --data follows.
    serve = lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                               "--bus-insecure", name="serve3", wait_tcp=port)
    assert "bus.insecure" in serve.log_text()
    assert not os.path.exists(os.path.join(data, "bus.pub"))
    assert os.stat(sock).st_mode & 0o777 == 0o600
    r = lstest.run("admin", "--data", data, "account", "show", "acc9")
    assert r.returncode == 0 and "acc9" in r.stdout and "bus.insecure" in r.stderr, r
    assert serve.stop() == 0


def test_broker_reads_config_file():
    front, back = lstest.free_port(), lstest.free_port()
    cfg = os.path.join(lstest.tmpdir(), "bus.json")
    with open(cfg, "w") as f:
        json.dump({"bus": {"frontend": "tcp://127.0.0.1:%d" % front,
                           "backend": "tcp://127.0.0.1:%d" % back,
                           "heartbeat_ms": HB, "timeout_ms": 400,
                           "keys": lstest.bus_key("broker").key_file,
                           "allow": ["worker:" + lstest.bus_key("worker").pub_file,
                                     "client:" + lstest.bus_key("client").public]}}, f)
    broker = lstest.lightstream("broker", "--config", cfg, name="broker", wait_tcp=front)
    fe = "tcp://127.0.0.1:%d" % front
    with Client(fe) as c:
        assert c.raw("mmi.service", b"echo") == (OK, "404")
    # bus.timeout_ms is the deadline of queued requests.
    w = lstest.Proc("worker", [WORKER, "tcp://127.0.0.1:%d" % back, "--heartbeat-ms", str(HB),
                               *worker_curve("worker")])
    with Client(fe) as c:
        lstest.wait_for(lambda: c.raw("mmi.service", b"echo") == (OK, "200"), what="worker")
        assert w.stop() == 0
        lstest.wait_for(lambda: c.raw("mmi.service", b"echo") == (OK, "404"), what="worker gone")
        assert c.call("echo", "echo", 1)[0] == TIMEOUT
    assert broker.stop() == 0
    # A typo in the configuration is an error naming the key.
    with open(cfg, "w") as f:
        json.dump({"bus": {"frontendd": "x"}}, f)
    r = lstest.run("broker", "--config", cfg)
    assert r.returncode == 2 and "frontendd" in r.stderr, r
    r = lstest.run("broker", "--heartbeat-ms", "soon")
    assert r.returncode == 2 and "heartbeat-ms" in r.stderr, r
    r = lstest.run("broker", "--broker-frontend", "bogus://x", "--bus-insecure")
    assert r.returncode == 1 and "bogus" in r.stderr, r


lstest.main(globals())
