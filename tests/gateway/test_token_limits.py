"""docs/security.md, the token endpoint: failure rate limits per client IP
and per app key (429 rate_limited with Retry-After), a bound on token
calls in flight, and token issuing on workers of its own so that a brute
force never starves WebSocket logins."""

import http.client
import json
import threading
import time
import urllib.parse

import lstest
from gwlib import acc1_token, serve, url, ws_url

GEN = "/lightstream/services/auth/generatetoken"


def get_token(port, app, private, ip, roles="public"):
    """(status, headers, body) of a GET token request forwarded for ip."""
    q = urllib.parse.urlencode({"publicKey": app, "privateKey": private, "roles": roles})
    status, hdrs, raw = lstest.http("GET", url(port, GEN + "?" + q),
                                    headers={"X-Forwarded-For": ip})
    return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(raw or b"null")


def login_seconds(port, tok):
    """Seconds a WebSocket login takes (AuthRequest → AuthResponse ok)."""
    start = time.time()
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": tok})
    m = ws.recv_type(2, timeout=10)
    took = time.time() - start
    ws.close()
    assert m["ok"] is True, m
    return took


def brute_force(port, stop, results, ip_of, app_of, threads=12):
    """Wrong private keys on keep-alive connections until stop is set."""
    def run(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        i = 0
        while not stop.is_set():
            i += 1
            q = urllib.parse.urlencode({"publicKey": app_of(n, i), "privateKey": "guess%d" % i,
                                        "roles": "public"})
            try:
                c.request("GET", GEN + "?" + q, headers={"X-Forwarded-For": ip_of(n, i)})
                r = c.getresponse()
                body = r.read()
                results.append((r.status, r.getheader("Retry-After"), body))
            except (OSError, http.client.HTTPException):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.close()
    ts = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    return ts


def remote_server(name, extra=None):
    gw = {"trusted_proxies": ["127.0.0.1"], "token_http_remote": True}
    gw.update(extra or {})
    return serve({"gateway": gw}, name=name)


def test_failures_per_ip_are_rate_limited():
    proc, port = remote_server("serve-ip-limit")
    attacker = "198.51.100.7"
    statuses = []
    for i in range(45):
        status, hdrs, body = get_token(port, "acc1", "wrong%d" % i, attacker)
        statuses.append(status)
        if status == 429:
            assert body["errors"][0]["code"] == "rate_limited", body
            assert int(hdrs["retry-after"]) >= 1, hdrs
    assert statuses.count(401) == 30 and statuses[30:] == [429] * 15, statuses
    # even the right key waits now, from that address ...
    assert get_token(port, "acc1", "acc1_private", attacker)[0] == 429
    # ... but another address is not affected
    status, _, body = get_token(port, "acc1", "acc1_private", "198.51.100.8")
    assert status == 200, body
    # successes never count
    for _ in range(40):
        assert get_token(port, "svc1", "svc1_private", "198.51.100.9")[0] == 200
    assert proc.stop() == 0


def test_failures_per_app_key_are_rate_limited():
    proc, port = remote_server("serve-key-limit",
                               {"token": {"ip_failures_per_minute": 1000,
                                          "key_failures_per_minute": 20}})
    for i in range(20):
        assert get_token(port, "acc1", "wrong", "203.0.113.%d" % (i + 1))[0] == 401
    status, hdrs, body = get_token(port, "acc1", "wrong", "203.0.113.200")
    assert status == 429 and body["errors"][0]["code"] == "rate_limited", body
    assert "app key" in body["errors"][0]["message"] and "retry-after" in hdrs
    # other accounts are not affected
    assert get_token(port, "svc1", "svc1_private", "203.0.113.201")[0] == 200
    assert proc.stop() == 0


def test_brute_force_gets_429_while_logins_succeed():
    """Default limits: wrong keys from one address, as fast as eight
    clients can send them, while real users log in."""
    proc, port = remote_server("serve-brute-one")
    tokens = [acc1_token(port) for _ in range(5)]
    stop, results = threading.Event(), []
    ts = brute_force(port, stop, results, lambda n, i: "198.51.100.66",
                     lambda n, i: "acc1", threads=8)
    try:
        lstest.wait_for(lambda: any(r[0] == 429 for r in results), what="429")
        took = [login_seconds(port, t) for t in tokens]
    finally:
        stop.set()
        for t in ts:
            t.join()
    statuses = [r[0] for r in results]
    limited = [r for r in results if r[0] == 429]
    assert all(int(r[1]) >= 1 and json.loads(r[2])["errors"][0]["code"] == "rate_limited"
               for r in limited), limited[:3]
    # 30 guesses a minute, plus at most the calls already in flight
    assert statuses.count(401) <= 30 + 16, statuses.count(401)
    assert 504 not in statuses
    assert max(took) < 1.0, took
    assert proc.stop() == 0


def test_brute_force_does_not_starve_websocket_logins():
    """Wrong keys from many addresses (so that the per-IP limit does not
    stop them) for app keys that do not exist (nor the per-key one): the
    token endpoint is saturated, logins must not notice."""
    proc, port = remote_server("serve-brute",
                               {"token": {"ip_failures_per_minute": 100000,
                                          "key_failures_per_minute": 100000,
                                          "max_inflight": 4}})
    tokens = [acc1_token(port) for _ in range(8)]
    base = [login_seconds(port, t) for t in tokens[:2]]
    stop, results = threading.Event(), []
    ts = brute_force(port, stop, results, lambda n, i: "192.0.2.%d" % (n + 1),
                     lambda n, i: "nosuch%d_%d" % (n, i))
    try:
        time.sleep(1.0)  # the flood is on
        took = [login_seconds(port, t) for t in tokens[2:]]
    finally:
        stop.set()
        for t in ts:
            t.join()
    statuses = [r[0] for r in results]
    assert statuses.count(401) > 20, statuses[:50]
    # over the bound of calls in flight: refused at once, told to retry
    busy = [r for r in results if r[0] == 503]
    assert busy and all(r[1] == "1" for r in busy), statuses[:50]
    assert 504 not in statuses, statuses.count(504)
    assert max(took) < 1.0, (base, took)
    log = proc.log_text()
    # one summary line per interval, not one line per guess
    assert log.count("generateToken refused") <= 10, log.count("generateToken refused")
    assert proc.stop() == 0


def test_token_issuing_has_workers_of_its_own():
    proc, port = serve(name="serve-issue")
    log = proc.log_text()
    assert "service 'auth.issue' registered" in log, log
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey="
                                                "acc1_private&roles=public"))
    assert status == 200, body
    assert proc.stop() == 0



def test_token_endpoint_never_uses_the_validation_workers():
    """Split roles: the broker's own statistics show that the token
    endpoint's key checks ran on auth.issue's workers, not on auth's."""
    import os
    front = "tcp://127.0.0.1:%d" % lstest.free_port()
    back = "tcp://127.0.0.1:%d" % lstest.free_port()
    lstest.lightstream("broker", "--broker-frontend", front, "--broker-backend", back,
                       *lstest.bus_broker_args(), name="broker-issue")
    data = os.path.join(lstest.tmpdir(), "issue-data")
    os.makedirs(data, exist_ok=True)
    lstest.lightstream("appserver", "--broker-backend", back, "--data", data,
                       "--fixture", lstest.FIXTURE, *lstest.bus_peer_args("worker"),
                       name="appserver-issue")
    port = lstest.free_port()
    lstest.lightstream("gateway", "--listen", "127.0.0.1:%d" % port, "--broker-frontend", front,
                       *lstest.bus_peer_args("client"), name="gateway-issue", wait_tcp=port)
    lstest.wait_for(lambda: lstest.http_json("GET", url(port, "/readyz"))[0] == 200,
                    timeout=15, what="gateway ready")

    def stats():
        r = lstest.run("call", "--broker-frontend", front, *lstest.bus_peer_args("client"),
                       "mmi.stats")
        assert r.returncode == 0, r.stderr
        svc = json.loads(r.stdout)["services"]
        return {name: svc.get(name, {}).get("served", 0) + svc.get(name, {}).get("failed", 0)
                for name in ("auth", "auth.issue")}
    lstest.wait_for(lambda: stats()["auth.issue"] == 0 and "auth.issue" in json.loads(
        lstest.run("call", "--broker-frontend", front, *lstest.bus_peer_args("client"),
                   "mmi.stats").stdout)["services"],
        timeout=15, what="auth.issue registered")
    before = stats()
    for private, want in [("acc1_private", 200), ("wrong", 401), ("acc1_private", 200),
                          ("wrong", 401)]:
        status, _, body = get_token(port, "acc1", private, "127.0.0.1")
        assert status == want, body
    after = stats()
    assert after["auth.issue"] - before["auth.issue"] == 4, (before, after)
    # the readiness probe uses mmi only: auth handled nothing meanwhile
    assert after["auth"] == before["auth"], (before, after)

lstest.main(globals())
