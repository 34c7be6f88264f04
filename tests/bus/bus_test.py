#!/usr/bin/env python3
"""Service bus (docs/bus.md) against the real `lightstream broker` over TCP,
with real worker processes (tests/bus/bus_test_worker, built on
bus_worker_pool) and raw ZeroMQ clients (python3-zmq)."""

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


class Bus:
    """One broker on free ports, with helpers to start workers."""

    def __init__(self, *extra, front=None, back=None):
        self.front = front or lstest.free_port()
        self.back = back or lstest.free_port()
        self.fe = "tcp://127.0.0.1:%d" % self.front
        self.be = "tcp://127.0.0.1:%d" % self.back
        self.broker = lstest.lightstream(
            "broker", "--broker-frontend", self.fe, "--broker-backend", self.be,
            "--heartbeat-ms", HB, *extra, name="broker", wait_tcp=self.front)
        self.workers = []

    def worker(self, threads=1, wait=True):
        w = lstest.Proc("worker", [WORKER, self.be, "--threads", str(threads),
                                   "--heartbeat-ms", str(HB), "--reconnect-ms", "200"])
        self.workers.append(w)
        if wait:
            self.wait_workers(len([x for x in self.workers if x.poll() is None]) * 0 + threads,
                              at_least=True)
        return w

    def stats(self):
        with Client(self.fe) as c:
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


class Client:
    """A raw DEALER client speaking docs/bus.md frames."""

    def __init__(self, endpoint):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
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
    with Client(bus.fe) as c:
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
    with Client(bus.fe) as c:
        status, body = c.call("nosuch", "op")
        assert status == NOSERVICE, (status, body)
        assert c.raw("mmi.nosuch", b"")[0] == NOSERVICE
    bus.stop()


def test_unknown_op_and_bad_body_answer_2():
    bus = Bus()
    bus.worker()
    with Client(bus.fe) as c:
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
    with Client(bus.fe) as c:
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
    with Client(bus.fe) as c:
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
    with Client(bus.fe) as c:
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
        assert stats["failed"] == 4 and stats["served"] == 1, stats
    bus.stop()


def test_no_worker_answers_timeout():
    bus = Bus("--timeout-ms", 500)
    w = bus.worker()
    assert w.stop() == 0  # SIGTERM: the pool says DISCONNECT
    bus.wait_workers(0)
    with Client(bus.fe) as c:
        status, body = c.call("echo", "echo", 1)
        assert status == TIMEOUT, (status, body)
    assert bus.stats()["services"]["echo"]["timedOut"] == 1
    r = lstest.run("call", "--broker-frontend", bus.fe, "echo", "echo", "1")
    assert r.returncode == 1 and "timeout" in r.stderr, r
    bus.stop()


def test_queue_limit_rejects_with_error():
    bus = Bus("--queue-limit", 1)
    bus.worker()
    with Client(bus.fe) as c:
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
    c = Client(bus.fe)
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
    w = lstest.Proc("worker", [WORKER, bus.be, "--heartbeat-ms", str(HB)])
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
    front = ctx.socket(zmq.DEALER)
    front.linger = 0
    front.connect(bus.fe)
    for frames in ([b"x"], [b""], [b"short", b"echo", b"{}"],
                   [struct.pack("<Q", 1), b"", b"{}"],
                   [struct.pack("<Q", 2), b"echo"],
                   [struct.pack("<Q", 3), b"e" * 300, b"{}"],
                   [b"x"] * 40):
        front.send_multipart(frames)
    back = ctx.socket(zmq.DEALER)
    back.linger = 0
    back.connect(bus.be)
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
    with Client(bus.fe) as c:
        assert c.call("echo", "echo", "still here") == (OK, "still here")
    assert bus.broker.poll() is None
    assert "malformed" in bus.broker.log_text()
    bus.stop()


def test_mmi_service_and_stats():
    bus = Bus()
    bus.worker()
    with Client(bus.fe) as c:
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
    fe = ["--broker-frontend", bus.fe]
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
                   "-t", "300", "echo", "echo")
    assert r.returncode == 1 and "timeout" in r.stderr, r


def test_broker_refuses_busy_address():
    bus = Bus()
    other = lstest.run("broker", "--broker-frontend", bus.fe, "--broker-backend",
                       "tcp://127.0.0.1:%d" % lstest.free_port(), timeout=10)
    assert other.returncode == 1 and "in use" in other.stderr, other
    bus.stop()


def test_wire_protocol_with_a_raw_worker():
    """A worker written from docs/bus.md alone: READY, REQUEST, REPLY frames."""
    bus = Bus()
    w = ctx.socket(zmq.DEALER)
    w.linger = 0
    w.connect(bus.be)
    w.send_multipart([b"LSW1", b"\x01", b"raw", b"raw2"])
    with Client(bus.fe) as c:
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
    for ep in (bus.fe, bus.be):
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(ep)
        socks.append(s)
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
    with Client(bus.fe) as c:
        assert c.call("echo", "echo", "alive", timeout=10) == (OK, "alive")
    for s in socks:
        s.close()
    assert bus.broker.poll() is None
    assert bus.stop() == 0


def test_curve_encryption_and_allow_list():
    if not zmq.has("curve"):
        raise lstest.Skip("libzmq without CURVE")
    tmp = lstest.tmpdir()
    paths = {}
    pubs = {}
    for who in ("broker", "worker", "client", "stranger"):
        paths[who] = os.path.join(tmp, "%s.key" % who)
        r = lstest.run("broker", "--curve-keygen", paths[who])
        assert r.returncode == 0, r
        pubs[who] = r.stdout.strip()
        assert len(pubs[who]) == 40
        assert os.stat(paths[who]).st_mode & 0o077 == 0  # private file
    # Never overwrites a key file.
    assert lstest.run("broker", "--curve-keygen", paths["broker"]).returncode == 1
    allow = os.path.join(tmp, "allow")
    with open(allow, "w") as f:
        f.write("# clients and workers\n%s\n\n%s\n" % (pubs["worker"], pubs["client"]))
    bus = Bus("--curve-keys", paths["broker"], "--curve-allow", allow)
    curve = ["--curve-server-key", pubs["broker"]]
    w = lstest.Proc("worker", [WORKER, bus.be, "--heartbeat-ms", str(HB),
                               *curve, "--curve-keys", paths["worker"]])
    bus.workers.append(w)

    def call(keys, *args, timeout=5000):
        extra = curve + ["--curve-keys", paths[keys]] if keys else []
        return lstest.run("call", "--broker-frontend", bus.fe, "-t", timeout, *extra, *args)
    lstest.wait_for(lambda: call("client", "mmi.service", "echo", timeout=500).stdout == "200\n",
                    timeout=15, what="CURVE worker registered")
    r = call("client", "echo", "echo", "secret")
    assert (r.returncode, r.stdout) == (0, '"secret"\n'), r
    # A key not on the list, and a plain client, are not served.
    r = call("stranger", "echo", "echo", "x", timeout=700)
    assert r.returncode == 1 and "timeout" in r.stderr, r
    r = call(None, "echo", "echo", "x", timeout=700)
    assert r.returncode == 1 and "timeout" in r.stderr, r
    assert "refused" in bus.broker.log_text()
    # Bad key material is refused up front.
    r = call(None, "--curve-server-key", "short", "--curve-keys", paths["client"], "echo", "echo")
    assert r.returncode == 2, r
    bus.stop()


def test_broker_reads_config_file():
    front, back = lstest.free_port(), lstest.free_port()
    cfg = os.path.join(lstest.tmpdir(), "bus.json")
    with open(cfg, "w") as f:
        json.dump({"bus": {"frontend": "tcp://127.0.0.1:%d" % front,
                           "backend": "tcp://127.0.0.1:%d" % back,
                           "heartbeat_ms": HB, "timeout_ms": 400}}, f)
    broker = lstest.lightstream("broker", "--config", cfg, name="broker", wait_tcp=front)
    fe = "tcp://127.0.0.1:%d" % front
    with Client(fe) as c:
        assert c.raw("mmi.service", b"echo") == (OK, "404")
    # bus.timeout_ms is the deadline of queued requests.
    w = lstest.Proc("worker", [WORKER, "tcp://127.0.0.1:%d" % back, "--heartbeat-ms", str(HB)])
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
    r = lstest.run("broker", "--broker-frontend", "bogus://x")
    assert r.returncode == 1 and "bogus" in r.stderr, r


lstest.main(globals())
