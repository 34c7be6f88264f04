"""Fault tests against the loopback cluster of deploy/cluster: Redis,
broker, two app servers, three gateways and HAProxy (TLS). Subscribers
connect through HAProxy over TLS (wss); messages carry a sequence number.

Each fault test publishes a steady sequence (through Redis, as any backend
may), injects one fault, and then accounts for every message of every
subscriber: a connection ("session") must receive every message it wants
without a gap; messages published while a subscriber had no connection are
counted and reported as lost (TAP comments) — and nothing else may be. The
gateway faults publish with history (the Redis function ls_publish) and
the subscribers resume with `since`, as the clients do: there nothing may
be lost at all.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lstest  # noqa: E402
import lsdeploy  # noqa: E402
from lsdeploy import pump  # noqa: E402

try:
    import redis
except ImportError:  # python3-redis is installed by scripts/setup
    redis = None

TOPIC = "svc1:weather"
LISBOA = {"mode": "any", "where": {"field": "city", "op": "equals", "value": "Lisboa"}}

_cluster = None


def cluster():
    global _cluster
    if _cluster is None:
        _cluster = lsdeploy.Cluster()
    return _cluster


def note(msg):
    print("# " + msg)
    sys.stdout.flush()


def city(seq):
    return "Lisboa" if seq % 2 else "Porto"


class Subscriber:
    """A client that stays subscribed: reconnects through HAProxy whenever
    its connection is lost, and records what each connection received."""

    def __init__(self, cl, name, token, query=None):
        self.cl, self.name, self.token, self.query = cl, name, token, query
        self.sessions = []   # one list of received seqs per connection
        self.closes = []     # close codes of the connections that ended
        self.extra = []      # data frames that were not sequence messages
        self.since = None    # history position {epoch, offset}, as a client keeps it
        self.recovered = []  # "recovered" of every resubscription
        self.c = None
        self.connect()

    def wants(self, seq):
        return self.query is None or city(seq) == "Lisboa"

    def connect(self, guard=30.0):
        deadline = time.time() + guard
        while True:
            try:
                self.c = self.cl.connect(self.token)
                self.sub = self.c.subscribe("svc1", "weather", self.query, since=self.since)
                r = self.c.subscribed
                if self.since is not None:
                    self.recovered.append(r.get("recovered"))
                if "epoch" in r and r.get("recovered") is not True:
                    self.since = {"epoch": r["epoch"], "offset": r["offset"]}
                break
            except Exception as e:
                if time.time() > deadline:
                    raise AssertionError("%s could not reconnect: %s" % (self.name, e))
                time.sleep(0.1)
        self.sessions.append([])

    def poll(self):
        for m in self.c.take(5):
            assert m.get("owner") == "svc1" and m.get("stream") == "weather", m
            assert m.get("sub") == self.sub, (m, self.sub)
            d = m.get("data")
            if "offset" in m and self.since is not None:
                self.since["offset"] = m["offset"]
            if isinstance(d, dict) and "seq" in d:
                self.sessions[-1].append(d["seq"])
            else:
                self.extra.append(d)
        if self.c.closed is not None:
            self.closes.append(self.c.closed)
            self.c.close()
            self.connect()

    def received(self):
        return [s for sess in self.sessions for s in sess]

    def close(self):
        if self.c:
            self.c.close()


def subscribers(cl, plain=4, filtered=2):
    tok = cl.token()
    subs = [Subscriber(cl, "sub%d" % i, tok) for i in range(plain)]
    subs += [Subscriber(cl, "lisboa%d" % i, tok, LISBOA) for i in range(filtered)]
    return subs


def redis_client(cl):
    return redis.Redis(host="127.0.0.1", port=cl.ports["redis"], socket_timeout=2,
                       socket_connect_timeout=1)


def wait_gateways_subscribed(cl, n, subs=()):
    def numsub():
        try:
            return dict(redis_client(cl).pubsub_numsub(TOPIC)).get(TOPIC.encode(), 0) == n
        except redis.exceptions.RedisError:
            return False
    deadline = time.time() + 30
    while not numsub():
        assert time.time() < deadline, "gateways did not subscribe %s on Redis" % TOPIC
        pump([s.c for s in subs], 0.05)


def traffic(cl, subs, fault, live_gateways, settle=20, guard=90.0, interval=0.02,
            history=False):
    """Publish seq 1, 2, ... through Redis every `interval` seconds while
    pumping subscribers; call
    fault() after a while; stop once every subscriber's current connection
    has received `settle` wanted messages published after the fault, then
    drain. Returns (published {seq: (receivers, expected, time)},
    fault_seq, final). history: publish with the documented Redis function
    (docs/pubsub.md), so messages have offsets and reconnecting subscribers
    recover; its answer is the offset, not the receivers, which are then
    taken to be every live gateway (any miss while connected fails)."""
    r = redis_client(cl)
    published = {}
    seq = 0
    fault_seq = None
    times = {}
    start = time.time()
    expected = live_gateways()

    def settled():
        return all(sum(1 for x in s.sessions[-1] if x > fault_seq) >= settle for s in subs)

    next_pub = time.time()
    while True:
        assert time.time() - start < guard, "traffic did not settle within %.0fs" % guard
        now = time.time()
        if now >= next_pub:
            # A steady rate (not as fast as deliveries come back), so
            # counts of lost messages translate into time.
            next_pub = max(next_pub + interval, now)
            try:
                data = json.dumps({"seq": seq + 1, "city": city(seq + 1)})
                if history:
                    r.execute_command("FCALL", "ls_publish", 2, "ls:{%s}" % TOPIC,
                                      "ls:{%s}:h" % TOPIC, data)
                    n = expected
                else:
                    n = r.publish(TOPIC, data)
                seq += 1
                published[seq] = (n, expected, time.time())
            except redis.exceptions.RedisError:
                r = redis_client(cl)
        pump([s.c for s in subs], max(0.0, next_pub - time.time()))
        for s in subs:
            s.poll()
        if fault_seq is None and seq >= 30:
            fault_seq = seq
            times["fault"] = time.time()
            fault(times)
            expected = live_gateways()
            times["fault_done"] = time.time()
        if fault_seq is not None and "resumed" not in times and all(
                any(x > fault_seq for x in s.sessions[-1]) for s in subs):
            times["resumed"] = time.time()
        if fault_seq is not None and settled():
            break
    final = seq
    # Drain: the last message must reach everyone who wants it.
    last = {s.name: max([x for x in range(1, final + 1) if s.wants(x)]) for s in subs}
    deadline = time.time() + 15
    while not all(last[s.name] in s.sessions[-1] for s in subs):
        assert time.time() < deadline, "last messages not delivered"
        pump([s.c for s in subs], 0.05)
        for s in subs:
            s.poll()
    return published, fault_seq, final


def account(test, subs, published, final):
    """Check every subscriber's sessions; report losses. Returns
    {name: lost while disconnected}."""
    lost_total = 0
    losses = {}
    for s in subs:
        got = s.received()
        assert len(got) == len(set(got)), "%s got duplicates" % s.name
        assert all(s.wants(x) for x in got), "%s: filter not applied: %r" % (
            s.name, [x for x in got if not s.wants(x)][:5])
        lost_gap = []
        partial = []
        for sess in s.sessions:
            if not sess:
                continue
            assert sess == sorted(sess), "%s: out of order" % s.name
            for x in range(sess[0], sess[-1] + 1):
                if s.wants(x) and x not in sess:
                    n, expected, _ = published[x]
                    # Redis did not hand it to every live gateway (they were
                    # re-subscribing): not a loss of this connection.
                    assert n < expected, "%s lost seq %d while connected (receivers %d/%d)" % (
                        s.name, x, n, expected)
                    partial.append(x)
        # Between connections: lost while it had none.
        for prev, nxt in zip(s.sessions, s.sessions[1:]):
            if prev and nxt:
                lost_gap += [x for x in range(prev[-1] + 1, nxt[0]) if s.wants(x)]
        # Before the first message of the first connection: nothing may miss.
        first = s.sessions[0][0] if s.sessions[0] else None
        assert first is not None and all(not s.wants(x) for x in range(1, first)), \
            "%s missed the first messages (first received %s)" % (s.name, first)
        losses[s.name] = lost_gap
        lost_total += len(lost_gap)
        note("%s %s: connections %d (closed with %s), received %d, lost while "
             "disconnected %d%s, not fanned out by Redis %d" % (
                 test, s.name, len(s.sessions), s.closes or "-", len(got), len(lost_gap),
                 (" (seq %d..%d)" % (lost_gap[0], lost_gap[-1])) if lost_gap else "",
                 len(partial)))
    note("%s: %d messages published, %d lost in total while subscribers were disconnected"
         % (test, final, lost_total))
    return losses


def close_all(*groups):
    for g in groups:
        for c in g:
            c.close()


def restore(cl, name):
    if not any(p["name"] == name and p["running"] for p in cl.status()["processes"]):
        cl.start_one(name)
    cl.wait_all_up()


# ------------------------------------------------------------------ tests

def test_cluster_starts_and_serves_tls():
    if redis is None:
        raise AssertionError("python3-redis is missing (scripts/setup)")
    cl = cluster()
    assert cl.haproxy_up() == cl.gateways
    status, body = cl.https("GET", "/readyz")
    assert status == 200, (status, body)
    tok = cl.token()
    assert len(tok) == 43
    # Plain HTTP on the other port: loopback may ask for tokens there, and
    # WebSockets (ws://) work as over TLS.
    status, body = lstest.http_json(
        "GET", "http://127.0.0.1:%d/lightstream/services/auth/generatetoken?"
        "publicKey=svc1&privateKey=svc1_private&roles=public" % cl.ports["http"])
    assert status == 200 and len(body["data"]["value"]) == 43, (status, body)
    c = cl.connect(body["data"]["value"], tls=False)
    assert c.subscribe("svc1", "weather")
    c.close()


def test_client_address_comes_from_haproxy_only():
    """IP-bound tokens through HAProxy: the gateway takes the client
    address from HAProxy's X-Forwarded-For (it trusts only HAProxy), and
    HAProxy overwrites whatever the client claimed."""
    cl = cluster()
    src = "127.0.0.2"   # a client address that differs from HAProxy's
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    c = cl.connect(cl.token(ip=src), source=src, headers=spoof)
    c.close()
    for ip in ("127.0.0.1", "203.0.113.9"):
        try:
            c = cl.connect(cl.token(ip=ip), source=src, headers=spoof)
        except lsdeploy.AuthRefused as e:
            assert e.m["error"]["code"] == "auth_failed", e.m
        else:
            c.close()
            raise AssertionError("a token bound to %s authenticated a client at %s" % (ip, src))


def test_publish_anywhere_reaches_every_subscriber_filtered():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)
    ptok = cl.token(roles="publisher")
    pubs = [cl.connect(ptok, gateway=g) for g in cl.gateways]   # one straight to each
    sent = []
    for i, p in enumerate(pubs):
        d = {"seq": i + 1, "city": city(i + 1), "via": cl.gateways[i]}
        p.publish("svc1", "weather", d)
        sent.append(d)
    d = {"seq": 10, "city": "Lisboa", "via": "redis-cli"}
    r = subprocess.run(["redis-cli", "-p", str(cl.ports["redis"]), "PUBLISH", TOPIC,
                        json.dumps(d)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == str(len(cl.gateways)), r.stdout
    sent.append(d)
    r = subprocess.run(["redis-cli", "-p", str(cl.ports["redis"]), "PUBLISH", TOPIC,
                        "not json, a plain text"], capture_output=True, text=True)
    assert r.returncode == 0
    d = {"seq": 11, "city": "Porto", "via": "http"}
    status, body = cl.https("POST", "/lightstream/publish/svc1/weather", json.dumps(d),
                            {"Authorization": "Bearer " + ptok,
                             "Content-Type": "application/json"})
    assert status == 202, (status, body)
    sent.append(d)
    want_all = sorted(x["seq"] for x in sent)
    want_lisboa = sorted(x["seq"] for x in sent if x["city"] == "Lisboa")

    def done():
        for s in subs:
            s.poll()
        return all(sorted(s.received()) == (want_lisboa if s.query else want_all)
                   and (s.query or s.extra == ["not json, a plain text"]) for s in subs)
    deadline = time.time() + 10
    while not done():
        if time.time() > deadline:
            raise AssertionError("not delivered: %r" % [(s.name, sorted(s.received()), s.extra)
                                                        for s in subs])
        pump([s.c for s in subs], 0.05)
    # Filtered subscribers got neither Porto nor the text message.
    for s in subs:
        if s.query:
            assert s.extra == [], s.extra
    note("fanout: %d subscribers over %d gateways each received %d messages (filtered: %d)"
         % (len(subs), len(cl.gateways), len(want_all) + 1, len(want_lisboa)))
    close_all(subs, pubs)


def test_sse_through_haproxy_over_tls():
    """docs/protocol.md, "Server-Sent Events", behind HAProxy over TLS:
    `lightstream sub --sse` gets its filtered stream unbuffered, from
    publishes on any gateway."""
    cl = cluster()
    tok = cl.token(roles="public")
    p = subprocess.Popen(
        [lstest.LIGHTSTREAM, "sub", "--sse", "-u", "https://127.0.0.1:%d" % cl.ports["https"],
         "--ca-file", cl.state["cert"], "-a", "svc1", "-t", tok, "-n", "2",
         "-q", json.dumps(LISBOA), "svc1/weather"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert "subscribed to" in line, line
    ptok = cl.token(roles="publisher")
    for seq in (1, 2, 3):
        status, body = cl.https("POST", "/lightstream/publish/svc1/weather",
                                json.dumps({"seq": seq, "city": city(seq), "sse": True}),
                                {"Authorization": "Bearer " + ptok})
        assert status == 202, (status, body)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, (out, err)
    got = [json.loads(x) for x in out.splitlines()]
    assert [g["seq"] for g in got] == [1, 3] and all(g["city"] == "Lisboa" for g in got), got


def test_revoked_token_closes_on_every_gateway():
    """docs/protocol.md, "Live authorization": `lightstream admin token
    revoke` against the cluster's broker; a connection of that token on
    each gateway gets Error token_revoked and close 4011 within a second,
    whichever app server handled the revocation."""
    cl = cluster()
    tok = cl.token()
    other = cl.token()
    conns = [cl.connect(tok, gateway=g) for g in cl.gateways]
    keep = cl.connect(other)
    start = time.time()
    # The admin key the cluster made (deploy/cluster writes DIR/admin.json).
    r = lstest.run("admin", "--config", os.path.join(cl.state["dir"], "admin.json"), "token",
                   "revoke", "svc1", "--private-key", "svc1_private", "--", tok)
    assert r.returncode == 0, r.stderr
    for c in conns:
        err = c.wait(10, timeout=2)
        assert err["code"] == "token_revoked", err
        deadline = time.time() + 2
        while c.closed is None and time.time() < deadline:
            pump([c], 0.1)
        assert c.closed == 4011, c.closed
    took = time.time() - start
    note("revocation: %d gateways closed the token's connections within %.2fs of the "
         "admin command starting" % (len(conns), took))
    assert took < 1.5, took
    # another token of the same account is untouched
    keep.subscribe("svc1", "weather")
    keep.close()


def test_redis_restart_keeps_clients_and_resumes():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)

    def fault(times):
        cl.kill("redis")
        # Every gateway is now not ready; once HAProxy has noticed, it
        # fails open (backup servers) rather than refusing new clients.
        lstest.wait_for(cl.haproxy_all_down, timeout=15, interval=0.1,
                        what="HAProxy to see every gateway not ready")
        c = cl.connect(cl.token())
        c.subscribe("svc1", "weather")
        fail_open.append(c)
        cl.start_one("redis")
        times["redis_back"] = time.time()

    fault_times = {}
    fail_open = []

    def fault_rec(times):
        fault(times)
        fault_times.update(times)
    published, fault_seq, final = traffic(cl, subs, fault_rec, lambda: len(cl.gateways))
    losses = account("redis-restart", subs, published, final)
    for s in subs:
        assert len(s.sessions) == 1, "%s was disconnected (%s)" % (s.name, s.closes)
        assert not losses[s.name]
    # Delivery resumed: the first message after the restart that Redis
    # handed to every gateway (and that account() proved every subscriber
    # received), measured from the moment Redis accepted connections again.
    resumed = next(x for x in range(fault_seq + 1, final + 1)
                   if published[x][0] == published[x][1])
    resume_s = published[resumed][2] - fault_times["redis_back"]
    dropped = sum(1 for x in range(fault_seq + 1, final + 1) if published[x][0] < published[x][1])
    note("redis-restart: a client connected, authenticated and subscribed through HAProxy "
         "while no gateway was ready (fail-open backups)")
    close_all(fail_open)
    note("redis-restart: delivery to every subscriber resumed %.2fs after Redis was back; "
         "%d messages published before every gateway had re-subscribed (Redis delivered "
         "them to fewer gateways)" % (resume_s, dropped))
    assert resume_s <= 5.0, "delivery resumed only after %.1fs" % resume_s
    close_all(subs)
    cl.wait_all_up()


def test_gateway_kill9_clients_reconnect_elsewhere():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)
    alive = list(cl.gateways)

    def fault(times):
        cl.kill("gateway2", "KILL")
        alive.remove("gateway2")

    published, fault_seq, final = traffic(cl, subs, fault, lambda: len(alive), history=True)
    losses = account("gateway-kill9", subs, published, final)
    moved = [s for s in subs if len(s.sessions) > 1]
    assert moved, "no subscriber was on the killed gateway (HAProxy leastconn should spread)"
    for s in subs:
        if s not in moved:
            assert not losses[s.name], "%s lost messages without losing its connection" % s.name
    for s in moved:
        assert len(s.sessions) == 2 and s.closes == [1006], (s.name, s.closes)
        # It reconnected through another gateway within the history window:
        # the history in Redis gave it everything it missed.
        assert s.recovered == [True], (s.name, s.recovered)
        assert not losses[s.name], "%s lost %d messages" % (s.name, len(losses[s.name]))
    note("gateway-kill9: %d of %d subscribers moved to another gateway" % (len(moved), len(subs)))
    close_all(subs)
    restore(cl, "gateway2")


def test_gateway_sigterm_drains_with_1001():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)
    alive = list(cl.gateways)
    drain = {}

    def fault(times):
        t0 = time.time()
        cl.kill("gateway3", "TERM")   # waits until it exited
        times["drain"] = time.time() - t0
        alive.remove("gateway3")
        drain.update(times)

    published, fault_seq, final = traffic(cl, subs, fault, lambda: len(alive), history=True)
    losses = account("gateway-sigterm", subs, published, final)
    moved = [s for s in subs if len(s.sessions) > 1]
    assert moved, "no subscriber was on the drained gateway"
    for s in moved:
        assert s.closes == [1001], "%s: closed with %s, want 1001" % (s.name, s.closes)
        assert s.recovered == [True], (s.name, s.recovered)
        assert not losses[s.name], "%s lost %d messages" % (s.name, len(losses[s.name]))
    for s in subs:
        if s not in moved:
            assert len(s.sessions) == 1 and not losses[s.name], s.name
    note("gateway-sigterm: %d of %d subscribers closed with 1001 and reconnected; the "
         "gateway exited %.2fs after SIGTERM (drain timeout 3 s)"
         % (len(moved), len(subs), drain["drain"]))
    close_all(subs)
    restore(cl, "gateway3")


def auth_round(cl, n=5):
    """n fresh tokens and n fresh authenticated connections through
    HAProxy; returns how many failed. An `unavailable` answer (503, close
    1013: "try again later") is retried once after a moment, as clients
    do: a request held by a worker that dies is answered so, never
    retried by the broker (it may have had effects)."""
    failed = 0
    for _ in range(n):
        for attempt in (1, 2):
            try:
                c = cl.connect(cl.token())
                c.close()
                break
            except Exception as e:
                if attempt == 1 and ("unavailable" in str(e) or "1013" in str(e)):
                    note("auth answered unavailable, retried: %s" % e)
                    time.sleep(0.5)
                    continue
                note("auth failed: %s" % e)
                failed += 1
    return failed


def test_appserver_kill9_auth_keeps_working():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)
    result = {}

    def fault(times):
        cl.kill("appserver1", "KILL")
        result["failed"] = auth_round(cl, 10)

    published, fault_seq, final = traffic(cl, subs, fault, lambda: len(cl.gateways))
    losses = account("appserver-kill9", subs, published, final)
    for s in subs:
        assert len(s.sessions) == 1 and not losses[s.name], s.name
    assert result["failed"] == 0, "%d of 10 authentications failed with one app server left" \
        % result["failed"]
    close_all(subs)
    cl.start_one("appserver1")
    assert auth_round(cl, 3) == 0


def test_broker_restart_gateways_and_workers_rejoin():
    cl = cluster()
    subs = subscribers(cl)
    wait_gateways_subscribed(cl, len(cl.gateways), subs)
    result = {}

    def fault(times):
        cl.run("restart", "broker")
        t0 = time.time()
        # Gateways and workers reconnect on their own: tokens work again.
        deadline = t0 + 45
        while True:
            try:
                cl.token()
                break
            except Exception:
                assert time.time() < deadline, "auth did not come back after a broker restart"
                time.sleep(0.2)
        result["rejoin"] = time.time() - t0
        # While the broker was away the gateways' /readyz said 503 and
        # HAProxy may have taken them out of rotation (new clients get 503
        # for that moment). Once it sees them ready again, every new client
        # must authenticate — with no gateway or worker restarted.
        cl.wait_all_up()
        result["ready"] = time.time() - t0
        result["failed"] = auth_round(cl, 5)

    published, fault_seq, final = traffic(cl, subs, fault, lambda: len(cl.gateways))
    losses = account("broker-restart", subs, published, final)
    for s in subs:
        assert len(s.sessions) == 1 and not losses[s.name], s.name
    assert result["failed"] == 0
    note("broker-restart: tokens issued again %.1fs after the restart, every gateway back "
         "in HAProxy after %.1fs; no gateway or app server was restarted"
         % (result["rejoin"], result["ready"]))
    running = {p["name"]: p["pid"] for p in cl.status()["processes"]}
    assert all(running.values()), running
    close_all(subs)
    cl.wait_all_up()


def test_cluster_stops_cleanly():
    cl = cluster()
    pids = [p["pid"] for p in cl.status()["processes"] if p["pid"]]
    r = cl.run("stop")
    assert r.returncode == 0, r.stderr
    cl.started = False
    for pid in pids:
        assert not lsdeploy_alive(pid), "pid %d still running after stop" % pid
    # Status of a stopped cluster: no addresses that answer nothing.
    r = cl.run("status")
    assert r.returncode == 1, r.stdout
    assert "everything is stopped" in r.stdout and "https://" not in r.stdout, r.stdout
    # Under a sanitizer build, every process reported at exit (leaks
    # included) into its log: after all those faults, nothing.
    logs = os.path.join(cl.dir, "logs")
    for name in sorted(os.listdir(logs)):
        text = open(os.path.join(logs, name), "rb").read().decode("utf-8", "replace")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in text, "%s: %s\n%s" % (name, marker, text[text.index(marker):][:2000])


def lsdeploy_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    lstest.main(globals())
