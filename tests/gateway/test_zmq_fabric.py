"""docs/pubsub.md, "ZeroMQ": gateways fanning out through `lightstream
proxy` (XSUB/XPUB) instead of Redis — filtered delivery across gateways,
subscription forwarding (a gateway receives only the streams it has
subscribers for), and a proxy restart the gateways survive."""

import json
import os
import time

import lstest
from gwlib import acc1_token, connect, metric, ready, subscribe, url

state = {}




def proxy():
    xsub, xpub = state.setdefault("xsub", lstest.free_port()), state.setdefault(
        "xpub", lstest.free_port())
    # CURVE: the proxy's own pair; the gateways' (client) and app
    # servers' (worker) keys allowed.
    p = lstest.lightstream("proxy", "--xsub", "tcp://127.0.0.1:%d" % xsub,
                           "--xpub", "tcp://127.0.0.1:%d" % xpub,
                           "--bus-keys", lstest.bus_key("proxy").key_file,
                           "--bus-allow", "client:" + lstest.bus_key("client").public,
                           "--bus-allow", "worker:" + lstest.bus_key("worker").public,
                           name="proxy", wait_tcp=xpub)
    state["proxy"] = p
    return p


def fabric_args():
    """The proxy's public key; a peer's own pair is its bus key (bus.keys)."""
    return ["--fabric-server-key", lstest.bus_key("proxy").pub_file]


def setup():
    if "a" in state:
        return state
    port = lstest.free_port()
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    back = "tcp://127.0.0.1:%d" % lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "serve")
    os.makedirs(data)
    # The app server of a `serve` whose bus other gateways may join.
    lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                       "--fixture", lstest.FIXTURE, "--broker-frontend", front,
                       "--broker-backend", back, *lstest.bus_broker_args(), name="serve",
                       wait_tcp=port)
    state["serve"] = port
    proxy()
    fabric = "zmq://127.0.0.1:%d,%d" % (state["xsub"], state["xpub"])
    for name in ("a", "b", "c"):
        gport = lstest.free_port()
        lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % gport,
                           "--broker-frontend", front, "--fabric", fabric,
                           *lstest.bus_peer_args("client"), *fabric_args(),
                           name="gateway-" + name, wait_tcp=gport)
        lstest.wait_for(lambda: ready(gport), timeout=15, what="gateway %s ready" % name)
        state[name] = gport
    return state


def publish(ws, stream, data, rid):
    ws.send(5, {"owner": "acc1", "stream": stream, "data": data, "requestId": rid})
    m = ws.recv_type(13)
    assert m["ok"] is True, m


def test_appserver_announces_revocations_on_the_zmq_fabric():
    """docs/architecture.md, "Live authorization": a split app server with
    --fabric zmq:// announces a revocation through the proxy; a gateway on
    the same fabric closes the token's connections with 4011."""
    st = setup()
    fabric = "zmq://127.0.0.1:%d,%d" % (st["xsub"], st["xpub"])
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    back = "tcp://127.0.0.1:%d" % lstest.free_port()
    lstest.lightstream("broker", "--broker-frontend", front, "--broker-backend", back,
                       *lstest.bus_broker_args(), name="broker-zmq")
    data = os.path.join(lstest.tmpdir(), "appdata-zmq")
    os.makedirs(data)
    lstest.lightstream("appserver", "--broker-backend", back, "--data", data,
                       "--fixture", lstest.FIXTURE, "--fabric", fabric,
                       *lstest.bus_peer_args("worker"), *fabric_args(),
                       name="appserver-zmq")
    gport = lstest.free_port()
    lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % gport,
                       "--broker-frontend", front, "--fabric", fabric,
                       *lstest.bus_peer_args("client"), *fabric_args(),
                       name="gateway-zmq-auth", wait_tcp=gport)
    lstest.wait_for(lambda: ready(gport), timeout=15, what="gateway ready")
    tok = acc1_token(gport)
    ws, _ = connect(gport, "acc1", tok)
    r = lstest.run("admin", "--broker-frontend", front, *lstest.bus_peer_args("admin"),
                   "token", "revoke",
                   "acc1", "--private-key", "acc1_private", "--", tok)
    assert r.returncode == 0, r.stderr
    err = ws.recv_type(10, timeout=5)
    assert err["code"] == "token_revoked", err
    assert ws.expect_close(5) == 4011


def test_the_proxy_refuses_unlisted_keys_and_plain_text():
    """CURVE like the bus: a gateway whose key the proxy does not list never
    gets through (never ready, receives nothing); without keys a gateway
    on a zmq:// fabric refuses to start unless bus.insecure."""
    st = setup()
    fabric = "zmq://127.0.0.1:%d,%d" % (st["xsub"], st["xpub"])
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    rogue = lstest.free_port()
    lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % rogue,
                       "--broker-frontend", front, "--fabric", fabric,
                       "--bus-keys", lstest.bus_key("stranger").key_file,
                       "--bus-server-key", lstest.bus_key("broker").pub_file,
                       *fabric_args(), name="gateway-rogue", wait_tcp=rogue)
    time.sleep(4)  # more than the 3 pings a ready fabric needs
    status, body = lstest.http_json("GET", url(rogue, "/readyz"))
    assert status == 503, (status, body)
    assert metric(rogue, "pubsub_received_total") == 0
    r = lstest.run("gateway", "--listen", "127.0.0.1:%d" % lstest.free_port(),
                   "--broker-frontend", front, "--fabric", fabric,
                   *lstest.bus_peer_args("client"), timeout=15)
    assert r.returncode == 2 and "pubsub.server_key" in r.stderr, r.stderr


def test_filtered_delivery_across_gateways():
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    r = subscribe(sub, "acc1", "s1", {"where": {"field": "t", "op": "less", "value": 15}})
    assert r["ok"], r
    pub, _ = connect(st["a"], "acc1", tok)

    def delivered():
        publish(pub, "s1", {"t": 1, "probe": True}, "probe")
        try:
            m = sub.recv_type(5, timeout=0.5)
            return m["data"].get("probe")
        except Exception:
            return False
    # ZeroMQ forwards the subscription asynchronously: wait until it did.
    lstest.wait_for(delivered, timeout=10, what="subscription forwarded")
    for t in (30, 10, 20, 5):
        publish(pub, "s1", {"t": t}, "r%d" % t)
    got = []
    while len(got) < 2:
        m = sub.recv_type(5, timeout=5)
        if not m["data"].get("probe"):
            got.append(m["data"]["t"])
    assert got == [10, 5], got
    sub.close()
    pub.close()


def test_only_subscribed_streams_reach_a_gateway():
    st = setup()
    tok = acc1_token(st["serve"])
    pub, _ = connect(st["a"], "acc1", tok)
    before = metric(st["c"], "pubsub_received_total")
    for i in range(20):
        publish(pub, "s2", {"i": i}, "x%d" % i)
    sub, _ = connect(st["b"], "acc1", tok)
    assert subscribe(sub, "acc1", "s2")["ok"]
    lstest.wait_for(lambda: (publish(pub, "s2", {"late": 1}, "late") or True) and
                    metric(st["b"], "pubsub_received_total") > 0, timeout=10,
                    what="gateway b receives s2")
    # Gateway c has no subscriber: nothing was sent to it.
    assert metric(st["c"], "pubsub_received_total") == before
    sub.close()
    pub.close()


def test_proxy_restart_is_survived():
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    assert subscribe(sub, "acc1", "s1")["ok"]
    assert st["proxy"].stop() == 0
    lstest.wait_for(lambda: not ready(st["a"]), timeout=10, what="gateway a not ready")
    proxy()  # same ports
    for g in ("a", "b"):
        lstest.wait_for(lambda: ready(st[g]), timeout=15, what="gateway %s ready again" % g)
    pub, _ = connect(st["a"], "acc1", tok)

    def delivered():
        publish(pub, "s1", {"after": "restart"}, "after")
        try:
            return sub.recv_type(5, timeout=0.5)["data"] == {"after": "restart"}
        except Exception:
            return False
    # The subscriber's connection stayed open; its subscription came back.
    lstest.wait_for(delivered, timeout=15, what="delivery after the proxy restart")
    assert metric(st["a"], "pubsub_reconnects_total") >= 1
    sub.close()
    pub.close()


lstest.main(globals())
