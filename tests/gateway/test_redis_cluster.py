"""docs/pubsub.md, "Redis Cluster": gateways with
--fabric redis+cluster://... on a real 3-master Redis Cluster started here
(redis-server --cluster-enabled yes ×3 + redis-cli --cluster create):
sharded pub/sub across gateways and from any Redis client, a live topic's
slot migrated to another master, and a master restarted — with the
subscriber's WebSocket never closed."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import lstest
from gwlib import RawReader, acc1_token, connect, masked_frame, metric, ready, subscribe, url

state = {}


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def slot(key):
    return crc16(key.encode()) % 16384


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=20)
    return r.stdout.strip()


def free_cluster_port():
    """A port whose cluster bus port (+10000) is free too."""
    while True:
        p = lstest.free_port()
        if p + 10000 < 65536:
            try:
                import socket
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + 10000))
                return p
            except OSError:
                pass


def start_node(port):
    d = os.path.join(lstest.tmpdir(), "cluster-%d" % port)
    os.makedirs(d, exist_ok=True)
    p = lstest.Proc("redis-%d" % port, [shutil.which("redis-server"), "--port", str(port),
                                       "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                       "--cluster-config-file", "nodes.conf",
                                       "--cluster-node-timeout", "2000",
                                       "--save", "", "--appendonly", "no", "--dir", d])
    lstest.wait_port(port, proc=p)
    return p




def setup():
    if "a" in state:
        return state
    ports = [free_cluster_port() for _ in range(3)]
    state["ports"] = ports
    state["nodes"] = {p: start_node(p) for p in ports}
    r = subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % p for p in ports] +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lstest.wait_for(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO")
                                for p in ports), timeout=30, what="cluster ok")
    serve_port = lstest.free_port()
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    back = "tcp://127.0.0.1:%d" % lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "serve")
    os.makedirs(data)
    lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % serve_port, "--data", data,
                       "--fixture", lstest.FIXTURE, "--broker-frontend", front,
                       "--broker-backend", back, *lstest.bus_broker_args(), name="serve",
                       wait_tcp=serve_port)
    state["serve"] = serve_port
    fabric = "redis+cluster://127.0.0.1:%d,127.0.0.1:%d" % (ports[0], ports[1])
    state["front"], state["fabric"] = front, fabric
    for name in ("a", "b"):
        gport = lstest.free_port()
        lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % gport,
                           "--broker-frontend", front, "--fabric", fabric, *lstest.bus_peer_args("client"),
                           name="gateway-" + name, wait_tcp=gport)
        lstest.wait_for(lambda: ready(gport), timeout=20, what="gateway %s ready" % name)
        state[name] = gport
    return state


def owner_port(channel):
    """The port of the master owning channel's slot."""
    s = slot(channel)
    for entry in parse_slots(cli(state["ports"][0], "CLUSTER", "SLOTS")):
        lo, hi, port = entry
        if lo <= s <= hi:
            return port
    raise AssertionError("no owner for slot %d" % s)


def parse_slots(text):
    # redis-cli prints the nested array flat: lo, hi, ip, port, id, [ip, port, id]...
    lines = text.split("\n")
    out, i = [], 0
    while i + 4 < len(lines):
        try:
            lo, hi, port = int(lines[i]), int(lines[i + 1]), int(lines[i + 3])
        except ValueError:
            i += 1
            continue
        out.append((lo, hi, port))
        i += 5
    return out


def publish(ws, stream, data, rid):
    ws.send(5, {"owner": "acc1", "stream": stream, "data": data, "requestId": rid})
    m = ws.recv_type(13)
    return m


def expect(sub, want, timeout=10):
    m = sub.recv_type(5, timeout=timeout)
    assert m["data"] == want, m
    return m


def test_sharded_pubsub_across_gateways_and_redis_clients():
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    # s1 and s2 live in different slots, probably on different masters.
    assert subscribe(sub, "acc1", "s1", rid="s1")["ok"]
    assert subscribe(sub, "acc1", "s2", rid="s2")["ok"]
    lstest.wait_for(lambda: ready(st["b"]), timeout=10, what="subscriptions confirmed")
    pub, _ = connect(st["a"], "acc1", tok)
    assert publish(pub, "s1", {"n": 1}, "p1")["ok"]
    expect(sub, {"n": 1})
    assert publish(pub, "s2", {"n": 2}, "p2")["ok"]
    expect(sub, {"n": 2})
    # Any Redis client: SPUBLISH on the owning master (redis-cli -c follows MOVED).
    out = cli(st["ports"][0], "-c", "SPUBLISH", "acc1:s1", '{"from":"redis-cli"}')
    assert out.endswith("1"), out
    expect(sub, {"from": "redis-cli"})
    sub.close()
    pub.close()


def test_resharding_a_live_topic_keeps_the_subscriber():
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    assert subscribe(sub, "acc1", "s1", rid="r")["ok"]
    lstest.wait_for(lambda: ready(st["b"]), timeout=10, what="subscribed")
    pub, _ = connect(st["a"], "acc1", tok)
    assert publish(pub, "s1", "before", "b")["ok"]
    expect(sub, "before")
    moves = metric(st["b"], "pubsub_reconnects_total")
    s = slot("acc1:s1")
    src = owner_port("acc1:s1")
    dst = [p for p in st["ports"] if p != src][0]
    src_id = cli(src, "CLUSTER", "MYID")
    dst_id = cli(dst, "CLUSTER", "MYID")
    # Move the slot the standard way: importing, migrating, its keys (the
    # topic's history lives there, under the topic's hash tag), owner.
    assert cli(dst, "CLUSTER", "SETSLOT", s, "IMPORTING", src_id) == "OK"
    assert cli(src, "CLUSTER", "SETSLOT", s, "MIGRATING", dst_id) == "OK"
    keys = [k for k in cli(src, "CLUSTER", "GETKEYSINSLOT", s, 100).split("\n") if k]
    assert "ls:{acc1:s1}:h" in keys, keys
    out = cli(src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
    assert out == "OK", out
    for p in (src, dst):
        assert cli(p, "CLUSTER", "SETSLOT", s, "NODE", dst_id) == "OK"
    for p in st["ports"]:
        cli(p, "CLUSTER", "SETSLOT", s, "NODE", dst_id)
    lstest.wait_for(lambda: owner_port("acc1:s1") == dst, timeout=10, what="slot moved")

    def delivered():
        m = publish(pub, "s1", "after", "a")
        if not m["ok"]:
            return False
        try:
            return sub.recv_type(5, timeout=0.5)["data"] == "after"
        except lstest.WSClosed:
            raise  # the subscriber's connection must stay
        except (AssertionError, OSError):
            return False
    lstest.wait_for(delivered, timeout=20, what="delivery from the new owner")
    # Redis told the gateway (sunsubscribe); it re-subscribed on the new owner.
    assert metric(st["b"], "pubsub_reconnects_total") > moves
    # The history moved with its slot: "before" is still there, with its
    # offset, read from the new owner.
    status, body = lstest.http_json(
        "GET", url(st["a"], "/lightstream/history/acc1/s1?since=0&limit=1000"),
        headers={"Authorization": "Bearer " + tok})
    assert status == 200, body
    assert "before" in [m["data"] for m in body["data"]["messages"]], body
    sub.close()
    pub.close()


def test_recovery_from_history_on_the_cluster():
    """History lives in the slot of its topic: a client that reconnects to
    the other gateway recovers exactly what it missed."""
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    r = subscribe(sub, "acc1", "s2", rid="first")
    assert r["ok"], r
    lstest.wait_for(lambda: ready(st["b"]), timeout=10, what="subscribed")
    pub, _ = connect(st["a"], "acc1", tok)
    m = publish(pub, "s2", {"n": 1}, "one")
    assert m["ok"] and m["offset"] >= 1, m
    got = expect(sub, {"n": 1})
    assert "epoch" in r, (r, got)
    epoch, last = r["epoch"], got["offset"]
    sub.close()
    for n in (2, 3, 4):
        assert publish(pub, "s2", {"n": n}, "m%d" % n)["ok"]
    sub2, _ = connect(st["a"], "acc1", tok)
    sub2.send(6, {"owner": "acc1", "stream": "s2", "requestId": "again",
                  "since": {"epoch": epoch, "offset": last}})
    r2 = sub2.recv_type(7)
    assert r2["ok"] and r2["recovered"] is True, r2
    assert [sub2.recv_type(5)["data"]["n"] for _ in range(3)] == [2, 3, 4]
    sub2.close()
    pub.close()


def test_master_restart_keeps_the_subscriber():
    st = setup()
    tok = acc1_token(st["serve"])
    sub, _ = connect(st["b"], "acc1", tok)
    assert subscribe(sub, "acc1", "s2", rid="r")["ok"]
    lstest.wait_for(lambda: ready(st["b"]), timeout=10, what="subscribed")
    port = owner_port("acc1:s2")
    st["nodes"][port].kill9()
    lstest.wait_for(lambda: not ready(st["b"]), timeout=10, what="gateway notices")
    st["nodes"][port] = start_node(port)  # same port and nodes.conf
    lstest.wait_for(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO")
                                for p in st["ports"]), timeout=30, what="cluster ok again")
    lstest.wait_for(lambda: ready(st["b"]), timeout=30, what="gateway ready again")
    pub, _ = connect(st["a"], "acc1", tok)

    def delivered():
        if not publish(pub, "s2", "back", "x")["ok"]:
            return False
        try:
            return sub.recv_type(5, timeout=0.5)["data"] == "back"
        except lstest.WSClosed:
            raise  # the subscriber's connection must stay
        except (AssertionError, OSError):
            return False
    lstest.wait_for(delivered, timeout=20, what="delivery after the master restart")
    sub.close()
    pub.close()


def test_a_hung_master_fails_publishes_instead_of_holding_them():
    # A master that stops answering but keeps its socket open (SIGSTOP)
    # must not hold publishes for ever: within the fabric's connect
    # timeout (2 s) they are answered ok:false "unavailable", and once the
    # master answers again publishing works on the same connection.
    st = setup()
    tok = acc1_token(st["serve"])
    pub, _ = connect(st["a"], "acc1", tok)
    assert publish(pub, "s2", "before", "b")["ok"]
    master = st["nodes"][owner_port("acc1:s2")]
    master.signal(signal.SIGSTOP)
    try:
        pub.send(5, {"owner": "acc1", "stream": "s2", "data": "hung", "requestId": "h"})
        m = pub.recv_type(13, timeout=15)
        assert m["requestId"] == "h" and not m["ok"], m
        assert m["error"]["code"] == "unavailable", m
    finally:
        master.signal(signal.SIGCONT)
    lstest.wait_for(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO")
                                for p in st["ports"]), timeout=30, what="cluster ok again")
    lstest.wait_for(lambda: publish(pub, "s2", "after", "a")["ok"], timeout=30,
                    what="publishing again")
    pub.close()


def _answers(ws, want, timeout):
    """Read PublishResponses (type 13) until `want` of them: {requestId:
    message}. Pings are left unanswered: another thread is writing."""
    rd, got = RawReader(ws, answer_pings=False), {}
    deadline = time.time() + timeout
    while len(got) < want:
        left = deadline - time.time()
        assert left > 0, "%d of %d answers within %ds" % (len(got), want, timeout)
        opcode, data = rd.frame(left)
        assert opcode != 0x8, data  # the gateway closed the connection
        env = json.loads(data) if opcode == 0x1 else {}
        if env.get("t") == 13:
            got[env["m"]["requestId"]] = env["m"]
    return got


def test_publishes_waiting_for_a_hung_master_are_bounded():
    # While a master is silent, publishes for its slots wait for it — up
    # to PS_PENDING_MAX (65,536): past that the gateway answers at once
    # ok:false "unavailable" instead of queueing without end. When the
    # master answers again every one that waited is answered ok. A long
    # pubsub.timeout_ms keeps the hung master from being dropped meanwhile.
    st = setup()
    tok = acc1_token(st["serve"])
    cfg = os.path.join(lstest.tmpdir(), "cluster-bound.json")
    with open(cfg, "w") as f:
        json.dump({"gateway": {"publish_rate": 0}, "pubsub": {"timeout_ms": 120000}}, f)
    gport = lstest.free_port()
    lstest.lightstream("gateway", "--config", cfg, "--listen", "127.0.0.1:%d" % gport,
                       "--broker-frontend", st["front"], "--fabric", st["fabric"],
                       *lstest.bus_peer_args("client"), name="gateway-bound", wait_tcp=gport)
    lstest.wait_for(lambda: ready(gport), timeout=20, what="gateway ready")
    pub, _ = connect(gport, "acc1", tok)
    assert publish(pub, "s2", "first", "f")["ok"]  # the library is loaded
    bound, extra = 65536, 300
    total = bound + extra
    frames = b"".join(masked_frame(json.dumps({"t": 5, "m": {
        "owner": "acc1", "stream": "s2", "data": i, "requestId": i}}).encode())
        for i in range(total))
    master = st["nodes"][owner_port("acc1:s2")]
    before = metric(gport, "messages_in_total")
    master.signal(signal.SIGSTOP)
    try:
        sender = threading.Thread(target=pub.sock.sendall, args=(frames,))
        sender.start()
        # Every publish read while the master is still stopped: nothing
        # can complete meanwhile, so what is refused is the bound's doing.
        lstest.wait_for(lambda: metric(gport, "messages_in_total") >= before + total,
                        timeout=60, what="every publish read")
        sender.join(60)
    finally:
        master.signal(signal.SIGCONT)
    answered = _answers(pub, total, 120)
    refused = sorted(i for i, m in answered.items() if not m["ok"])
    assert refused == list(range(bound, total)), (len(refused), refused[:3])
    assert all(answered[i]["error"]["code"] == "unavailable" for i in refused)
    pub.close()
    lstest.wait_for(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO")
                                for p in st["ports"]), timeout=30, what="cluster ok again")


lstest.main(globals())
