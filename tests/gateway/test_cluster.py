"""docs/pubsub.md end to end: gateways scaled out over Redis, with an external
broker and app server — `lightstream broker`, `lightstream appserver`,
several `lightstream gateway --redis`, and any Redis client publishing."""

import json
import os
import signal
import subprocess
import time

import lstest
from gwlib import acc1_token, connect, subscribe, token, url, ws_url

_cluster = None


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                          capture_output=True, text=True, timeout=10).stdout.strip()


def gateway(front, redis_port, port=None, name="gateway", args=()):
    port = port or lstest.free_port()
    proc = lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % port,
                              "--broker-frontend", front,
                              "--redis", "redis://127.0.0.1:%d" % redis_port,
                              *lstest.bus_peer_args("client"), *args, name=name,
                              wait_tcp=port)
    return proc, port


def ready(port):
    return lstest.http_json("GET", url(port, "/readyz"))[0] == 200


def cluster():
    """Redis, one broker, one app server, two gateways."""
    global _cluster
    if _cluster is None:
        redis, rport = lstest.redis_server()
        front = "tcp://127.0.0.1:%d" % lstest.free_port()
        back = "tcp://127.0.0.1:%d" % lstest.free_port()
        lstest.lightstream("broker", "--broker-frontend", front, "--broker-backend", back,
                           *lstest.bus_broker_args(), name="broker")
        data = os.path.join(lstest.tmpdir(), "appdata")
        os.makedirs(data, exist_ok=True)
        # --redis: the app server announces revocations and permission
        # changes on the control channel every gateway listens to.
        lstest.lightstream("appserver", "--broker-backend", back, "--data", data,
                           "--fixture", lstest.FIXTURE, *lstest.bus_peer_args("worker"),
                           "--redis", "redis://127.0.0.1:%d" % rport, name="appserver")
        a, aport = gateway(front, rport, name="gateway-a")
        b, bport = gateway(front, rport, name="gateway-b")
        for p in (aport, bport):
            lstest.wait_for(lambda: ready(p), timeout=15, what="gateway ready")
        _cluster = {"redis": redis, "rport": rport, "front": front, "back": back,
                    "a": a, "aport": aport, "b": b, "bport": bport}
    return _cluster


def test_two_gateways_share_messages():
    c = cluster()
    tok = acc1_token(c["aport"])
    sub_a, _ = connect(c["aport"], "acc1", tok)
    sa = subscribe(sub_a, "acc1", "s1")
    sub_b, _ = connect(c["bport"], "acc1", tok)  # same token on the other gateway
    sb = subscribe(sub_b, "acc1", "s1")
    pub, _ = connect(c["bport"], "acc1", tok)
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": {"from": "b"}, "requestId": "1"})
    ack = pub.recv_type(13)
    assert ack["ok"] is True and ack["offset"] == sa["offset"] + 1, ack
    assert sub_a.recv_type(5) == {"owner": "acc1", "stream": "s1", "sub": sa["subscriptionId"],
                                  "data": {"from": "b"}, "offset": ack["offset"]}
    assert sub_b.recv_type(5)["sub"] == sb["subscriptionId"]
    # one SUBSCRIBE per stream per gateway: two subscribers on Redis
    assert redis_cli(c["rport"], "PUBSUB", "NUMSUB", "acc1:s1").splitlines()[-1] == "2"
    for ws in (sub_a, sub_b, pub):
        ws.close()


def test_redis_cli_publish_reaches_subscribers():
    c = cluster()
    tok = acc1_token(c["aport"])
    subs = []
    for port in (c["aport"], c["bport"]):
        ws, _ = connect(port, "acc1", tok)
        s = subscribe(ws, "svc1", "weather", query={
            "where": {"field": "temperature", "op": "less", "value": 15}})
        subs.append((ws, s))
    lstest.wait_for(lambda: redis_cli(c["rport"], "PUBSUB", "NUMSUB", "svc1:weather")
                    .splitlines()[-1] == "2", what="both gateways subscribed")
    redis_cli(c["rport"], "PUBLISH", "svc1:weather", '{"city":"Porto","temperature":20}')
    redis_cli(c["rport"], "PUBLISH", "svc1:weather", '{"city":"Lisboa","temperature":12}')
    for ws, s in subs:
        d = ws.recv_type(5)
        assert d["data"] == {"city": "Lisboa", "temperature": 12} and d["sub"] == s["subscriptionId"], d
    # a payload that is not JSON arrives as a JSON string
    ws, _ = connect(c["aport"], "acc1", tok)
    s = subscribe(ws, "acc1", "s2")
    lstest.wait_for(lambda: redis_cli(c["rport"], "PUBSUB", "NUMSUB", "acc1:s2")
                    .splitlines()[-1] == "1", what="subscribed")
    redis_cli(c["rport"], "PUBLISH", "acc1:s2", "hello <world>")
    assert ws.recv_type(5)["data"] == "hello <world>"
    for w, _ in subs:
        w.close()
    ws.close()


def admin(c, *args):
    r = lstest.run("admin", "--broker-frontend", c["front"], *lstest.bus_peer_args("admin"), *args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)


def expect_revoked(ws, within):
    err = ws.recv_type(10, timeout=within + 1)
    assert err["code"] == "token_revoked", err
    assert ws.expect_close(within + 1) == 4011


def test_revoke_closes_connections_on_every_gateway():
    c = cluster()
    admin(c, "import", lstest.FIXTURE)
    tok = acc1_token(c["aport"])
    conns = [connect(port, "acc1", tok)[0] for port in (c["aport"], c["bport"], c["bport"])]
    subscribe(conns[0], "acc1", "s1")
    t0 = time.time()
    admin(c, "token", "revoke", "acc1", "--private-key", "acc1_private", "--", tok)
    for ws in conns:
        expect_revoked(ws, 1.0)
        took = time.time() - t0
        assert took <= 1.0 + 0.3, "closed %.2fs after the revocation" % took


def test_role_change_reaches_every_gateway():
    c = cluster()
    admin(c, "import", lstest.FIXTURE)
    tok = acc1_token(c["aport"], roles=("public", "weather-reader"))
    subs = []
    for port in (c["aport"], c["bport"]):
        ws, _ = connect(port, "acc1", tok)
        w = subscribe(ws, "svc1", "weather", rid="w")["subscriptionId"]
        s2 = subscribe(ws, "acc1", "s2", rid="s")["subscriptionId"]
        subs.append((ws, w, s2))
    lstest.wait_for(lambda: redis_cli(c["rport"], "PUBSUB", "NUMSUB", "acc1:s2")
                    .splitlines()[-1] == "2", what="both gateways subscribed")
    admin(c, "role", "delete", "acc1", "weather-reader")
    for ws, w, s2 in subs:
        pc = ws.recv_type(15, timeout=1)
        assert {p["owner"] for p in pc["permissions"]} == {"acc1"}, pc
        ended = ws.recv_type(14, timeout=1)
        assert ended["subscriptionId"] == w and ended["error"]["code"] == "forbidden", ended
    redis_cli(c["rport"], "PUBLISH", "acc1:s2", '"still"')
    for ws, w, s2 in subs:
        d = ws.recv_type(5)
        assert d["sub"] == s2 and d["data"] == "still", d
        ws.close()


def test_account_delete_reaches_every_gateway():
    c = cluster()
    admin(c, "import", lstest.FIXTURE)
    tok = acc1_token(c["aport"])
    conns = [connect(port, "acc1", tok)[0] for port in (c["aport"], c["bport"])]
    admin(c, "account", "delete", "acc1")
    for ws in conns:
        expect_revoked(ws, 1.0)
    admin(c, "import", lstest.FIXTURE)


_quiet = None


def quiet_setup():
    """A broker, an app server WITHOUT --redis (it announces nothing) and a
    gateway on the cluster's Redis: what reaches this gateway's
    connections after a Redis outage is its own re-validation."""
    global _quiet
    c = cluster()
    if _quiet is None:
        front = "tcp://127.0.0.1:%d" % lstest.free_port()
        back = "tcp://127.0.0.1:%d" % lstest.free_port()
        lstest.lightstream("broker", "--broker-frontend", front, "--broker-backend", back,
                           *lstest.bus_broker_args(), name="broker-quiet")
        data = os.path.join(lstest.tmpdir(), "appdata-quiet")
        os.makedirs(data, exist_ok=True)
        lstest.lightstream("appserver", "--broker-backend", back, "--data", data,
                           "--fixture", lstest.FIXTURE, *lstest.bus_peer_args("worker"),
                           name="appserver-quiet")
        g, gport = gateway(front, c["rport"], name="gateway-quiet")
        lstest.wait_for(lambda: ready(gport), timeout=15, what="gateway ready")
        _quiet = {"front": front, "port": gport}
    return c, _quiet


def redis_outage(c, during):
    """Kill Redis, run during(), start Redis again on the same port."""
    c["redis"].kill9()
    lstest.wait_for(lambda: not ready(c["aport"]), what="not ready without Redis")
    during()
    redis, _ = lstest.redis_server(c["rport"])
    c["redis"] = redis


def test_change_missed_during_redis_outage_applies_after_reconnect():
    c, q = quiet_setup()
    admin(q, "import", lstest.FIXTURE)
    tok = acc1_token(q["port"], roles=("public", "weather-reader"))
    ws, _ = connect(q["port"], "acc1", tok)
    w = subscribe(ws, "svc1", "weather")["subscriptionId"]
    redis_outage(c, lambda: admin(q, "role", "delete", "acc1", "weather-reader"))
    # nobody announced it: the gateway re-validates every connection once
    # it listens to the control channel again
    pc = ws.recv_type(15, timeout=20)
    assert {p["owner"] for p in pc["permissions"]} == {"acc1"}, pc
    ended = ws.recv_type(14, timeout=2)
    assert ended["subscriptionId"] == w and ended["error"]["code"] == "forbidden", ended
    lstest.wait_for(lambda: ready(c["aport"]) and ready(c["bport"]) and ready(q["port"]),
                    timeout=20, what="ready again")
    ws.close()


def test_revocation_missed_during_redis_outage_closes_after_reconnect():
    c, q = quiet_setup()
    admin(q, "import", lstest.FIXTURE)
    tok = acc1_token(q["port"])
    keep_tok = acc1_token(q["port"])
    ws, _ = connect(q["port"], "acc1", tok)
    keep, _ = connect(q["port"], "acc1", keep_tok)
    subscribe(keep, "acc1", "s1")
    redis_outage(c, lambda: admin(q, "token", "revoke", "acc1", "--private-key",
                                  "acc1_private", "--", tok))
    # the re-validation after the reconnect finds the token gone
    expect_revoked(ws, 20)
    lstest.wait_for(lambda: ready(c["aport"]) and ready(c["bport"]) and ready(q["port"]),
                    timeout=20, what="ready again")
    # the connection whose token is still valid stays, and receives
    redis_cli(c["rport"], "PUBLISH", "acc1:s1", '"kept"')
    d = keep.recv_type(5)
    assert d["data"] == "kept", d
    keep.close()


def test_appserver_started_with_a_fixture_revokes_every_connection():
    """An app server started with --fixture replaces every token: gateways
    already running close their connections with 4011."""
    c = cluster()
    admin(c, "import", lstest.FIXTURE)
    ws, _ = connect(c["aport"], "acc1", acc1_token(c["aport"]))
    data = os.path.join(lstest.tmpdir(), "appdata")  # the cluster's store
    extra = lstest.lightstream("appserver", "--broker-backend", c["back"], "--data", data,
                               "--fixture", lstest.FIXTURE, *lstest.bus_peer_args("worker"),
                               "--redis", "redis://127.0.0.1:%d" % c["rport"],
                               name="appserver-fixture")
    expect_revoked(ws, 10)
    assert extra.stop() == 0


def test_serve_on_redis_announces_to_joined_gateways():
    """serve with Redis: its in-process app server announces on Redis, so a
    gateway that joined its broker and Redis follows too."""
    c = cluster()
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    back = "tcp://127.0.0.1:%d" % lstest.free_port()
    sport = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "serve-redis")
    os.makedirs(data, exist_ok=True)
    srv = lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % sport, "--data", data,
                             "--fixture", lstest.FIXTURE, "--broker-frontend", front,
                             "--broker-backend", back,
                             "--redis", "redis://127.0.0.1:%d" % c["rport"],
                             *lstest.bus_broker_args(),  # the same keys as the cluster's
                             name="serve-redis", wait_tcp=sport)
    g, gport = gateway(front, c["rport"], name="gateway-of-serve")
    for p in (sport, gport):
        lstest.wait_for(lambda: ready(p), timeout=15, what="ready")
    tok = acc1_token(sport)
    conns = [connect(p, "acc1", tok)[0] for p in (sport, gport)]
    r = lstest.run("admin", "--broker-frontend", front, *lstest.bus_peer_args("admin"),
                   "token", "revoke", "acc1",
                   "--private-key", "acc1_private", "--", tok)
    assert r.returncode == 0, r.stderr
    for ws in conns:
        expect_revoked(ws, 1.0)
    assert g.stop() == 0
    assert srv.stop() == 0
def test_reconnect_to_the_other_gateway_recovers():
    c = cluster()
    tok = acc1_token(c["aport"])
    a, _ = connect(c["aport"], "acc1", tok)
    s = subscribe(a, "acc1", "s2", rid="hist")
    pub, _ = connect(c["bport"], "acc1", tok)
    pub.send(5, {"owner": "acc1", "stream": "s2", "data": {"n": 0}, "requestId": "0"})
    first = pub.recv_type(13)["offset"]
    d = a.recv_type(5)
    assert d["offset"] == first and d["data"] == {"n": 0}, d
    a.close()  # lost; the client reconnects through the other gateway
    for n in (1, 2, 3):
        pub.send(5, {"owner": "acc1", "stream": "s2", "data": {"n": n}, "requestId": str(n)})
        assert pub.recv_type(13)["offset"] == first + n
    b, _ = connect(c["bport"], "acc1", tok)
    b.send(6, {"owner": "acc1", "stream": "s2", "requestId": "again",
               "since": {"epoch": s["epoch"], "offset": d["offset"]}})
    r = b.recv_type(7)
    assert r["ok"] and r["recovered"] is True and r["epoch"] == s["epoch"], r
    assert r["offset"] == first + 3, r
    got = [b.recv_type(5) for _ in range(3)]
    assert [(g["offset"], g["data"]["n"]) for g in got] == \
        [(first + 1, 1), (first + 2, 2), (first + 3, 3)], got
    # A Redis client publishes with history through the documented function.
    out = redis_cli(c["rport"], "FCALL", "ls_publish", "2", "ls:{acc1:s2}", "ls:{acc1:s2}:h",
                    '{"n":4}')
    assert out.splitlines()[-1] == str(first + 4), out
    d = b.recv_type(5)
    assert d["offset"] == first + 4 and d["data"] == {"n": 4}, d
    for ws in (b, pub):
        ws.close()


def test_gateways_share_one_port():
    """Sharing a port between gateway processes is opt-in: --reuse-port."""
    c = cluster()
    port = lstest.free_port()
    g1, _ = gateway(c["front"], c["rport"], port, name="gateway-shared-1",
                    args=("--reuse-port",))
    g2, _ = gateway(c["front"], c["rport"], port, name="gateway-shared-2",
                    args=("--reuse-port",))
    time.sleep(0.3)
    assert g1.poll() is None and g2.poll() is None, "a gateway failed to share the port"
    tok = acc1_token(port)
    clients = [connect(port, "acc1", tok)[0] for _ in range(8)]
    for ws in clients:
        ws.close()
    g1.stop()
    # the other keeps serving the port
    ws, _ = connect(port, "acc1", tok)
    ws.close()
    assert g2.stop() == 0


def test_gateway_with_two_loops_on_redis():
    """`gateway --gateways 2 --redis`: each loop subscribes on Redis for its
    own subscribers (one SUBSCRIBE per loop with subscribers), so a Redis
    PUBLISH reaches subscribers on both loops exactly once."""
    c = cluster()
    g, port = gateway(c["front"], c["rport"], name="gateway-two-loops",
                      args=("--gateways", "2"))
    lstest.wait_for(lambda: ready(port), timeout=15, what="gateway ready")
    tok = acc1_token(port)
    subs = []
    for i in range(4):
        ws, _ = connect(port, "acc1", tok)
        subs.append((ws, subscribe(ws, "acc1", "s2", rid="l%d" % i)["subscriptionId"]))
    text = lstest.http("GET", url(port, "/metrics"))[2].decode()
    per_loop = [float(l.split()[1]) for l in text.splitlines()
                if l.startswith("lightstream_loop_connections{")]
    assert len(per_loop) == 2 and all(n > 0 for n in per_loop), per_loop
    lstest.wait_for(lambda: int(redis_cli(c["rport"], "PUBSUB", "NUMSUB", "acc1:s2")
                                .splitlines()[-1]) >= 2, what="both loops subscribed on Redis")
    redis_cli(c["rport"], "PUBLISH", "acc1:s2", '{"n":1}')
    redis_cli(c["rport"], "PUBLISH", "acc1:s2", '{"n":2}')
    for ws, sid in subs:
        got = [ws.recv_type(5) for _ in range(2)]
        assert [d["data"] for d in got] == [{"n": 1}, {"n": 2}], got
        assert all(d["sub"] == sid for d in got), got
    # nothing more: each message once per subscriber
    for ws, _ in subs:
        try:
            extra = ws.recv(timeout=0.3)
            raise AssertionError("unexpected frame %r" % (extra,))
        except TimeoutError:
            pass
        ws.close()
    assert g.stop() == 0


def test_gateway_without_reuse_port_refuses_a_taken_port():
    """A gateway started on a port another gateway holds fails with
    "address in use" and a non-zero status, whether the holder opted into
    sharing or not (the newcomer did not)."""
    c = cluster()
    port = lstest.free_port()
    holder, _ = gateway(c["front"], c["rport"], port, name="gateway-holder",
                        args=("--reuse-port",))
    for i, args in enumerate(((), ("--gateways", "2"))):
        r = lstest.run("gateway", "--listen", "127.0.0.1:%d" % port,
                       "--broker-frontend", c["front"],
                       "--redis", "redis://127.0.0.1:%d" % c["rport"],
                       *lstest.bus_peer_args("client"), *args, timeout=15)
        assert r.returncode != 0, (args, r.returncode)
        assert "address in use" in r.stderr, r.stderr
    assert holder.poll() is None
    # the holder still serves
    ws, _ = connect(port, "acc1", acc1_token(port))
    ws.close()
    assert holder.stop() == 0


def test_redis_outage_clients_stay_connected():
    c = cluster()
    tok = acc1_token(c["aport"])
    ws, _ = connect(c["aport"], "acc1", tok)
    s = subscribe(ws, "acc1", "s1", rid="out")
    c["redis"].kill9()
    lstest.wait_for(lambda: not ready(c["aport"]), what="not ready without Redis")
    status, body = lstest.http_json("GET", url(c["aport"], "/readyz"))
    assert status == 503 and "fabric" in body["errors"][0]["message"], body
    redis, _ = lstest.redis_server(c["rport"])
    c["redis"] = redis
    lstest.wait_for(lambda: ready(c["aport"]) and ready(c["bport"]), timeout=20, what="ready again")
    pub, _ = connect(c["bport"], "acc1", tok)
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": "after", "requestId": "2"})
    assert pub.recv_type(13)["ok"] is True
    d = ws.recv_type(5)
    assert d["data"] == "after" and d["sub"] == s["subscriptionId"]
    text = lstest.http("GET", url(c["aport"], "/metrics"))[2].decode()
    line = [l for l in text.splitlines() if l.startswith("lightstream_pubsub_reconnects_total")][0]
    assert float(line.split()[1]) >= 1, line
    ws.close()
    pub.close()


def test_gateway_sigterm():
    c = cluster()
    tok = acc1_token(c["aport"])
    ws, _ = connect(c["bport"], "acc1", tok)
    c["b"].signal(signal.SIGTERM)
    assert ws.expect_close(10) == 1001
    assert c["b"].wait(15) == 0


lstest.main(globals())
