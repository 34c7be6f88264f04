"""The gateway's writer on the wire (docs/architecture.md "The fan-out hot
path"): batches written with send() on the socket when lws holds nothing for
the connection, through lws otherwise. Every byte is checked by a raw-socket
reader: frames whole, in order, with the pongs lws writes itself, our pings
and the close handshake between them, never inside them."""

import ctypes
import json
import os
import socket
import struct
import time

import lstest
from gwlib import RawReader, acc1_token, connect, masked_frame, send_masked_fast, serve, subscribe


def _metric(port, name):
    text = lstest.http("GET", "http://127.0.0.1:%d/metrics" % port)[2].decode()
    for line in text.splitlines():
        if line.startswith("lightstream_" + name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric %s" % name)


def _raw_subscribers(port, tok, n):
    """n connections subscribed to acc1:s2, read raw."""
    subs = []
    for k in range(n):
        ws, _ = connect(port, "acc1", tok)
        subscribe(ws, "acc1", "s2", rid="r%d" % k)
        subs.append(RawReader(ws))
    return subs


def _publish(pub, i, blob):
    send_masked_fast(pub, json.dumps({"t": 5, "m": {
        "owner": "acc1", "stream": "s2", "data": {"i": i, "blob": blob}}}).encode())


def test_frames_intact_and_in_order_with_pongs_pings_and_close():
    # 64 MiB of queue: the subscriber that stops reading is not cut off
    proc, port = serve({"gateway": {"queue_limit_bytes": 64 << 20, "ping_interval_s": 3}},
                       name="serve-writer")
    tok = acc1_token(port)
    sub, _ = connect(port, "acc1", tok)
    subscribe(sub, "acc1", "s2")
    pub, _ = connect(port, "acc1", tok)
    direct_before = _metric(port, "writes_direct_total")
    pings = []
    n = 0
    # 1. small frames, read as they come: one direct send() each
    for i in range(150):
        _publish(pub, n, "x" * (i % 300))
        n += 1
        if i % 10 == 0:
            pings.append(b"p%d" % len(pings))
            sub.send_frame(0x9, pings[-1])
    # 2. the subscriber stops reading while 6 MB arrive for it: the kernel
    # takes part of a batch, lws holds the rest, the pongs lws owes and the
    # gateway's own pings must queue behind it, never inside a frame
    for i in range(120):
        _publish(pub, n, chr(ord("a") + i % 26) * (50000 + i * 7))
        n += 1
        if i % 12 == 0:
            pings.append(b"q%d" % len(pings))
            sub.send_frame(0x9, pings[-1])
    # a server ping falls due meanwhile (a peer is dropped only after 2.5
    # intervals of silence: ours sends pings)
    time.sleep(3.5)
    rd = RawReader(sub)
    want, pongs, server_pings = 0, [], 0

    def take():
        nonlocal want, server_pings
        op, data = rd.frame()
        if op == 0xA:
            pongs.append(data)
        elif op == 0x9:
            assert data == b"ls", data
            server_pings += 1
        elif op == 0x1:
            env = json.loads(data.decode())
            if env["t"] != 5:
                return  # a publish acknowledgement, not ours to check
            m = env["m"]
            assert (m["owner"], m["stream"]) == ("acc1", "s2"), m
            assert m["data"]["i"] == want, (m["data"]["i"], want)
            blob = m["data"]["blob"]
            assert blob == blob[:1] * len(blob), "bytes mixed inside a frame"
            want += 1
        else:
            raise AssertionError("unexpected opcode %d: %r" % (op, data))

    # 3. small ones while the reader drains the big ones: the kernel has
    # room again while lws may still hold the tail of a batch
    for i in range(100):
        _publish(pub, n, "y" * i)
        n += 1
        for _ in range(2):
            if want < n - 1:
                take()
    deadline = time.time() + 60
    while want < n:
        assert time.time() < deadline, ("stalled", want, n)
        take()
    # Each pong intact and in order, answering a ping that was sent; lws
    # drops a ping that arrives while its pong for an earlier one is still
    # pending (RFC 6455 5.5.3 allows answering only some).
    it = iter(pings)
    assert pongs and all(p in it for p in pongs), (pongs, pings)
    assert server_pings >= 1
    assert _metric(port, "writes_direct_total") > direct_before + 100
    # 4. the close handshake: the server's close frame comes whole
    sub.send_frame(0x8, struct.pack(">H", 1000))
    while True:
        op, data = rd.frame()
        if op == 0x8:
            assert struct.unpack(">H", data[:2])[0] == 1000, data
            break
        if op == 0xA:
            assert data in pings, data
            continue
        assert op == 0x9 and data == b"ls", (op, data[:40])
    pub.close()
    sub.sock.close()
    assert proc.stop() == 0


def test_many_subscribers_each_get_every_frame():
    # Many connections fed by one fan-out per message: the batch of each
    # one goes out whole whether the socket or lws takes it.
    proc, port = serve(name="serve-writer-many")
    tok = acc1_token(port)
    subs = _raw_subscribers(port, tok, 40)
    pub, _ = connect(port, "acc1", tok)
    total = 120
    for i in range(total):
        _publish(pub, i, "z" * (i * 97 % 5000))
    for rd in subs:
        want = 0
        while want < total:
            op, data = rd.frame()
            assert op == 0x1, (op, data[:40])
            m = json.loads(data.decode())["m"]
            assert m["data"]["i"] == want
            want += 1
        rd.sock.close()
    pub.close()
    assert proc.stop() == 0


def test_a_burst_of_publishes_goes_out_in_few_writes():
    # lws reads a connection in 128-byte chunks, about one publish per
    # loop iteration. A burst already waiting in the publisher's socket is
    # read ahead before the fan-out is written, so the subscribers get it
    # in a few large writes instead of one write per message (which is
    # what made throughput collapse past saturation). Nothing is lost or
    # reordered on the way.
    proc, port = serve({"gateway": {"publish_rate": 0}}, args=("--gateways", "1"),
                       name="serve-read-ahead")
    tok = acc1_token(port)
    subs = _raw_subscribers(port, tok, 50)
    pub, _ = connect(port, "acc1", tok)
    total = 300
    burst = b"".join(masked_frame(json.dumps({"t": 5, "m": {
        "owner": "acc1", "stream": "s2", "data": {"i": i}}}).encode())
        for i in range(total))
    writes_before = _metric(port, "writes_direct_total")
    pub.sock.sendall(burst)  # one write: all of it waits in the socket
    for rd in subs:
        for want in range(total):
            op, data = rd.frame()
            assert op == 0x1, (op, data[:40])
            assert json.loads(data.decode())["m"]["data"]["i"] == want
    writes = _metric(port, "writes_direct_total") - writes_before
    # One write per subscriber and message would be 15,000.
    assert writes < total * len(subs) / 4, writes
    assert _metric(port, "fanout_reads_ahead_total") > 0
    for rd in subs:
        rd.sock.close()
    pub.close()
    assert proc.stop() == 0


def _server_end(pid, client):
    """The server process's own socket for our connection client,
    duplicated into this process (pidfd_getfd: root, or ptrace rights)."""
    port = client.getsockname()[1]
    inode = None
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port:
                inode = fields[9]
    assert inode is not None, "no server socket for port %d" % port
    target = None
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                target = int(fd)
        except OSError:
            pass
    assert target is not None, "the server holds no descriptor for it"
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = libc.syscall(438, pidfd, target, 0)  # SYS_pidfd_getfd
    finally:
        os.close(pidfd)
    assert dup >= 0, os.strerror(ctypes.get_errno())
    return socket.socket(fileno=dup)


def test_accepted_sockets_send_small_frames_at_once():
    # Nagle's algorithm on the gateway's sockets held a small frame back
    # while an earlier one waited for its ACK, which the subscriber's
    # kernel delays up to 40 ms: p99 latency of 50 ms at a few hundred
    # messages per second. Every accepted socket must have TCP_NODELAY,
    # whichever loop adopted it.
    proc, port = serve(args=("--gateways", "2"), name="serve-nodelay")
    tok = acc1_token(port)
    conns = [connect(port, "acc1", tok)[0] for _ in range(4)]
    for ws in conns:
        srv = _server_end(proc.pid, ws.sock)
        try:
            assert srv.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            srv.close()  # our duplicate only: the connection stays
    for ws in conns:  # still open and answering
        subscribe(ws, "acc1", "s2", rid="after")
        ws.close()
    assert proc.stop() == 0


def test_publishers_paused_while_a_fan_out_is_written():
    # Several publishers flood one stream with 100 subscribers: an
    # iteration that fans out more than gateway.fanout_pause_bytes
    # stops reading its publishers until that is written. Every subscriber
    # still receives every message, in order, nobody is cut off.
    import threading
    # One loop: every publisher's frames meet in the same iterations.
    # A 1 MiB threshold: every 6 MB fan-out of one message passes it.
    proc, port = serve({"gateway": {"queue_limit_bytes": 64 << 20,
                                    "fanout_pause_bytes": 1 << 20,
                                    "publish_rate": 0}}, args=("--gateways", "1"),
                       name="serve-pause")
    tok = acc1_token(port)
    readers = _raw_subscribers(port, tok, 100)
    pubs = [connect(port, "acc1", tok)[0] for _ in range(6)]
    per = 20
    blob = "w" * 60000

    def flood(k, pub):
        for i in range(per):
            send_masked_fast(pub, json.dumps({"t": 5, "m": {
                "owner": "acc1", "stream": "s2",
                "data": {"p": k, "i": i, "blob": blob}}}).encode())

    threads = [threading.Thread(target=flood, args=(k, p)) for k, p in enumerate(pubs)]
    for t in threads:
        t.start()
    errors = []

    def drain(rd):
        try:
            nxt = [0] * len(pubs)
            got = 0
            while got < per * len(pubs):
                op, data = rd.frame(60)
                if op != 0x1:
                    continue
                m = json.loads(data.decode())["m"]["data"]
                assert m["i"] == nxt[m["p"]], (m["p"], m["i"], nxt)
                assert m["blob"] == blob
                nxt[m["p"]] += 1
                got += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    drains = [threading.Thread(target=drain, args=(rd,)) for rd in readers]
    for t in drains:
        t.start()
    for t in threads + drains:
        t.join(120)
    assert not errors, errors[:3]
    assert _metric(port, "publishers_paused_total") > 0
    assert _metric(port, "slow_consumers_total") == 0
    for rd in readers:
        rd.sock.close()
    for p in pubs:
        p.close()
    assert proc.stop() == 0


if __name__ == "__main__":
    lstest.main(globals())
