"""docs/architecture.md ("Several loops") end to end: `lightstream serve
--gateways N` runs N gateway event loops on one port that fan out to each
other without Redis; /metrics reports the whole server; SIGTERM drains every
loop; a second server on the same port fails with "address in use"."""

import json
import os
import signal
import socket
import ssl
import subprocess
import time

import lstest
from gwlib import acc1_token, connect, serve, subscribe, tls_ws, url

LOOPS = 2
CLIENTS = 8


def metrics(port):
    """/metrics as {name or name{labels}: value}."""
    text = lstest.http("GET", url(port, "/metrics"))[2].decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def loop_connections(m):
    return [m.get('lightstream_loop_connections{loop="%d"}' % i, -1)
            for i in range(LOOPS)]


def test_messages_reach_subscribers_on_every_loop():
    proc, port = serve(args=("--gateways", str(LOOPS)), name="serve-loops")
    tok = acc1_token(port)
    clients = [connect(port, "acc1", tok)[0] for _ in range(CLIENTS)]
    subs = [subscribe(ws, "acc1", "s1", rid="r%d" % i)["subscriptionId"]
            for i, ws in enumerate(clients)]
    m = metrics(port)
    assert m["lightstream_gateway_loops"] == LOOPS, m
    per_loop = loop_connections(m)
    # the connections are spread: every loop has some
    assert all(n > 0 for n in per_loop), per_loop
    assert sum(per_loop) == CLIENTS and m["lightstream_connections"] == CLIENTS, m
    assert m["lightstream_subscriptions"] == CLIENTS, m
    # one stream, subscribed on every loop, counted once
    assert m["lightstream_streams"] == 1 and m["lightstream_pubsub_topics"] == 1, m
    # every client publishes once: messages start on every loop
    for i, ws in enumerate(clients):
        ws.send(5, {"owner": "acc1", "stream": "s1", "data": {"from": i},
                    "requestId": "p%d" % i})
    offsets = set()
    for i, ws in enumerate(clients):
        got, acked = set(), False
        while len(got) < CLIENTS or not acked:
            msg = ws.recv()
            if msg["t"] == 13:
                assert msg["m"]["requestId"] == "p%d" % i and msg["m"]["ok"] is True, msg
                offsets.add(msg["m"]["offset"])
                acked = True
                continue
            assert msg["t"] == 5, msg
            assert msg["m"]["sub"] == subs[i], msg
            assert msg["m"]["data"]["from"] not in got, msg  # each once
            got.add(msg["m"]["data"]["from"])
        assert got == set(range(CLIENTS)), (i, got)
    # one history for every loop: each publish its own offset, no gap
    assert offsets == set(range(1, CLIENTS + 1)), offsets
    # HTTP publishes are spread over the loops too; each reaches everyone
    ptok = acc1_token(port, roles=["publisher"])
    for k in range(4):
        status, body = lstest.http_json(
            "POST", url(port, "/lightstream/publish/acc1/s1"),
            json.dumps({"http": k}),
            {"Authorization": "Bearer " + ptok, "Content-Type": "application/json"})
        assert status == 202, body
    for ws in clients:
        assert [ws.recv_type(5)["data"]["http"] for _ in range(4)] == [0, 1, 2, 3]
    # totals over the loops: CLIENTS + 4 publishes, each delivered CLIENTS times
    m = metrics(port)
    assert m["lightstream_messages_in_total"] == CLIENTS + 4, m
    assert m["lightstream_messages_out_total"] == (CLIENTS + 4) * CLIENTS, m
    assert m["lightstream_pubsub_published_total"] == CLIENTS + 4, m
    assert m["lightstream_connections_total"] == CLIENTS, m
    # every loop answers /metrics with the same totals (HTTP requests go to
    # every loop): connections are stable, so every answer agrees
    seen = {metrics(port)["lightstream_connections"] for _ in range(6)}
    assert seen == {CLIENTS}, seen
    for ws in clients:
        ws.close()
    lstest.wait_for(lambda: metrics(port)["lightstream_connections"] == 0,
                    what="connections closed on every loop")
    assert metrics(port)["lightstream_subscriptions"] == 0
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_revocation_reaches_every_loop():
    """Live authorization's announcements travel the hub: a revoked token's
    connections close 4011 on every loop, not only on the one that got the
    announcement."""
    proc, port = serve(args=("--gateways", str(LOOPS)), name="serve-loops-revoke")
    data = os.path.join(lstest.tmpdir(), "data-%d" % port)  # gwlib.serve's
    tok = acc1_token(port)
    clients = [connect(port, "acc1", tok)[0] for _ in range(CLIENTS)]
    assert all(n > 0 for n in loop_connections(metrics(port)))
    r = lstest.run("call", "--data", data, "--", "auth", "revokeToken",
                   "acc1", "acc1_private", tok)
    assert r.returncode == 0, (r.stdout, r.stderr)
    for ws in clients:
        assert ws.recv_type(10, timeout=3)["code"] == "token_revoked"
        assert ws.expect_close(3) == 4011
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_sigterm_drains_every_loop():
    proc, port = serve(args=("--gateways", str(LOOPS)), name="serve-loops-term")
    tok = acc1_token(port)
    clients = [connect(port, "acc1", tok)[0] for _ in range(CLIENTS)]
    assert all(n > 0 for n in loop_connections(metrics(port)))
    start = time.monotonic()
    proc.signal(signal.SIGTERM)
    for ws in clients:
        assert ws.expect_close(10) == 1001
    assert proc.wait(15) == 0
    # far below the 5 s drain timeout: every loop drained, none timed out
    assert time.monotonic() - start < 4, time.monotonic() - start
    assert "drain timeout" not in proc.log_text()


def test_default_is_one_loop_per_core():
    proc, port = serve(name="serve-loops-default")
    assert metrics(port)["lightstream_gateway_loops"] == min(os.cpu_count(), 64)
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_tls_connections_on_every_loop():
    """wss:// connections are handed to every loop too (each loop has its own
    TLS vhost) and receive what a plain connection on another loop publishes."""
    certdir = os.path.join(lstest.tmpdir(), "tls")
    script = os.path.join(lstest.SOURCE_ROOT, "deploy", "tls", "make-dev-cert.sh")
    out = subprocess.run([script, certdir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    tls_port = lstest.free_port()
    proc, port = serve(args=("--gateways", str(LOOPS), "--tls-listen", "127.0.0.1:%d" % tls_port,
                             "--tls-cert", cert, "--tls-key", key), name="serve-loops-tls")
    lstest.wait_port(tls_port)
    ctx = ssl.create_default_context(cafile=cert)
    tok = acc1_token(port)
    secure = []
    for i in range(4):
        ws = tls_ws(tls_port, ctx)
        ws.send(1, {"appKey": "acc1", "token": tok})
        assert ws.recv_type(2)["ok"] is True
        secure.append((ws, subscribe(ws, "acc1", "s1", rid="t%d" % i)["subscriptionId"]))
    assert all(n > 0 for n in loop_connections(metrics(port))), loop_connections(metrics(port))
    pub, _ = connect(port, "acc1", tok)
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": {"tls": True}, "requestId": "p"})
    ack = pub.recv_type(13)
    assert ack["ok"] is True
    for ws, sid in secure:
        assert ws.recv_type(5) == {"owner": "acc1", "stream": "s1", "sub": sid,
                                   "data": {"tls": True}, "offset": ack["offset"]}
        ws.close()
    pub.close()
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_second_serve_on_the_same_port_fails():
    proc, port = serve(args=("--gateways", str(LOOPS)), name="serve-loops-port")
    data = lstest.tmpdir()
    for args in ((), ("--gateways", "1"), ("--reuse-port",)):
        r = lstest.run("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                       *args, timeout=30)
        assert r.returncode != 0, (args, r.returncode)
        assert "address in use" in r.stderr, r.stderr
    # the first one is untouched and still serves all of its loops
    assert proc.poll() is None
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    ws.close()
    proc.signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_a_loop_that_cannot_start_fails_the_start():
    """The worker loops start first, one after another; one that cannot
    (here: its TLS vhost, with a missing certificate) stops the others and
    the command exits non-zero at once with the reason."""
    port = lstest.free_port()
    start = time.monotonic()
    r = lstest.run("serve", "--gateways", "3", "--listen", "127.0.0.1:%d" % port,
                   "--data", lstest.tmpdir(), "--tls-listen", "127.0.0.1:%d" % lstest.free_port(),
                   "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem",
                   timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "cannot create the TLS vhost" in r.stderr, r.stderr
    assert time.monotonic() - start < 10
    # nothing was left listening
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_bad_gateways_value():
    r = lstest.run("serve", "--gateways", "0")
    assert r.returncode == 2 and "--gateways" in r.stderr, (r.returncode, r.stderr)
    r = lstest.run("serve", "--gateways", "65")
    assert r.returncode == 2 and "--gateways" in r.stderr, (r.returncode, r.stderr)


lstest.main(globals())
