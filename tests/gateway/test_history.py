"""History and recovery against `lightstream serve` (docs/protocol.md,
"History and recovery"): offsets, epochs, SubscribeRequest `since`, and the
HTTP history endpoint."""

import json
import os
import socket
import threading
import time
import urllib.parse

import lstest
from gwlib import acc1_token, connect, serve, url

# The fixture lets acc1 publish and subscribe on acc1/s2 (role "public"):
# every test gets a server of its own, so offsets start at 1.
_last = None


def server():
    global _last
    if _last is not None:
        _last.stop()
    _last, port = serve(config={"history": {"size": 5, "ttl": 300}})
    return port


def sub(ws, owner, stream, rid, since=None, query=None):
    m = {"owner": owner, "stream": stream, "requestId": rid}
    if since is not None:
        m["since"] = since
    if query is not None:
        m["query"] = query
    ws.send(6, m)
    r = ws.recv_type(7)
    assert r["requestId"] == rid and r["ok"] is True, r
    return r


def publish(ws, stream, data, rid=None):
    m = {"owner": "acc1", "stream": stream, "data": data}
    if rid is not None:
        m["requestId"] = rid
    ws.send(5, m)
    if rid is not None:
        r = ws.recv_type(13)
        assert r["ok"] is True and r["requestId"] == rid, r
        return r


def data_frames(ws, n, timeout=5.0):
    out = []
    while len(out) < n:
        out.append(ws.recv_type(5, timeout))
    return out


def quiet(ws, secs=0.3):
    """Nothing more arrives (no duplicate)."""
    try:
        env = ws.recv(secs)
    except socket.timeout:
        return
    raise AssertionError("unexpected frame %r" % env)


def test_offsets_in_data_publish_response_and_subscribe():
    port = server()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    pub, _ = connect(port, "acc1", tok)
    r = sub(ws, "acc1", "s2", "a")
    assert r["offset"] == 0 and isinstance(r["epoch"], str) and r["epoch"], r
    assert "recovered" not in r, r
    p = publish(pub, "s2", {"n": 1}, rid="p1")
    assert p["offset"] == 1, p
    d = ws.recv_type(5)
    assert d["offset"] == 1 and d["data"] == {"n": 1} and d["sub"] == r["subscriptionId"], d
    # Without requestId: no answer, but the next offset all the same.
    publish(pub, "s2", "text")
    assert ws.recv_type(5)["offset"] == 2
    # HTTP publish answers its offset too.
    status, body = lstest.http_json(
        "POST", url(port, "/lightstream/publish/acc1/s2"), body=b'{"n":3}',
        headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    assert status == 202 and body["data"]["offset"] == 3, (status, body)
    assert ws.recv_type(5)["offset"] == 3
    # A second subscriber starts at the latest offset, same epoch.
    r2 = sub(ws, "acc1", "s2", "b")
    assert r2["offset"] == 3 and r2["epoch"] == r["epoch"], r2
    ws.close()


def test_reconnect_recovers_exactly_the_missed_messages():
    port = server()
    tok = acc1_token(port)
    a, _ = connect(port, "acc1", tok)
    r = sub(a, "acc1", "s2", "a")
    epoch = r["epoch"]
    pub, _ = connect(port, "acc1", tok)
    publish(pub, "s2", {"n": 1}, rid="1")
    last = data_frames(a, 1)[0]["offset"]
    a.close()  # the connection is lost
    for n in (2, 3, 4):
        publish(pub, "s2", {"n": n}, rid=str(n))
    b, _ = connect(port, "acc1", tok)
    r = sub(b, "acc1", "s2", "again", since={"epoch": epoch, "offset": last})
    assert r["recovered"] is True and r["epoch"] == epoch and r["offset"] == 4, r
    got = data_frames(b, 3)
    assert [d["data"]["n"] for d in got] == [2, 3, 4], got
    assert [d["offset"] for d in got] == [2, 3, 4], got
    assert all(d["sub"] == r["subscriptionId"] for d in got)
    quiet(b)
    # Then live, continuing the sequence.
    publish(pub, "s2", {"n": 5}, rid="5")
    d = b.recv_type(5)
    assert d["offset"] == 5 and d["data"] == {"n": 5}, d
    quiet(b)
    # Nothing missed: recovered, nothing replayed.
    c, _ = connect(port, "acc1", tok)
    r = sub(c, "acc1", "s2", "c", since={"epoch": epoch, "offset": 5})
    assert r["recovered"] is True and r["offset"] == 5, r
    quiet(c)
    for ws in (b, c, pub):
        ws.close()


def test_recovered_messages_pass_the_query():
    port = server()
    tok = acc1_token(port)
    pub, _ = connect(port, "acc1", tok)
    a, _ = connect(port, "acc1", tok)
    r = sub(a, "acc1", "s2", "a")
    a.close()
    publish(pub, "s2", {"city": "Porto", "t": 20}, rid="1")
    publish(pub, "s2", {"city": "Lisboa", "t": 12}, rid="2")
    publish(pub, "s2", {"readings": [{"v": 1}, {"v": 9}, {"v": 3}]}, rid="3")
    b, _ = connect(port, "acc1", tok)
    q = {"mode": "any", "where": {"field": "city", "op": "equals", "value": "Lisboa"}}
    r = sub(b, "acc1", "s2", "q", since={"epoch": r["epoch"], "offset": 0}, query=q)
    assert r["recovered"] is True, r
    d = b.recv_type(5)
    assert d["data"] == {"city": "Lisboa", "t": 12} and d["offset"] == 2, d
    quiet(b)
    sel = {"mode": "select", "path": "readings",
           "where": {"field": "v", "op": "greater", "value": 2}}
    r2 = sub(b, "acc1", "s2", "s", since={"epoch": r["epoch"], "offset": 0}, query=sel)
    assert r2["recovered"] is True, r2
    d = b.recv_type(5)
    assert d["data"] == {"readings": [{"v": 9}, {"v": 3}]} and d["offset"] == 3, d
    quiet(b)
    for ws in (b, pub):
        ws.close()


def test_too_old_wrong_epoch_or_future_is_not_recovered():
    port = server()
    tok = acc1_token(port)
    pub, _ = connect(port, "acc1", tok)
    a, _ = connect(port, "acc1", tok)
    epoch = sub(a, "acc1", "s2", "a")["epoch"]
    a.close()
    for n in range(1, 9):  # history.size is 5: 1..3 are gone
        publish(pub, "s2", n, rid=str(n))
    b, _ = connect(port, "acc1", tok)
    r = sub(b, "acc1", "s2", "old", since={"epoch": epoch, "offset": 2})
    assert r["recovered"] is False and r["offset"] == 8, r
    quiet(b)  # live only: nothing replayed
    r = sub(b, "acc1", "s2", "ok", since={"epoch": epoch, "offset": 3})
    assert r["recovered"] is True, r
    assert [d["data"] for d in data_frames(b, 5)] == [4, 5, 6, 7, 8]
    r = sub(b, "acc1", "s2", "epoch", since={"epoch": "someother", "offset": 7})
    assert r["recovered"] is False, r
    r = sub(b, "acc1", "s2", "future", since={"epoch": epoch, "offset": 99})
    assert r["recovered"] is False, r
    quiet(b)
    # Live delivery still works on the not-recovered subscriptions.
    publish(pub, "s2", 9, rid="9")
    assert [d["data"] for d in data_frames(b, 4)] == [9, 9, 9, 9]
    for ws in (b, pub):
        ws.close()


def test_publishing_during_recovery_loses_and_repeats_nothing():
    """A publisher on another loop keeps publishing while the subscriber
    reconnects with since: every offset arrives exactly once, in order."""
    global _last
    if _last is not None:
        _last.stop()
    _last, port = serve(config={"history": {"size": 2000}}, args=("--gateways", "2"))
    tok = acc1_token(port)
    a, _ = connect(port, "acc1", tok)
    epoch = sub(a, "acc1", "s2", "a")["epoch"]
    pub, _ = connect(port, "acc1", tok)
    total = 600
    done = threading.Event()

    def publisher():
        for n in range(1, total + 1):
            pub.send(5, {"owner": "acc1", "stream": "s2", "data": n})
            if n % 50 == 0:
                time.sleep(0.005)
        done.set()

    t = threading.Thread(target=publisher)
    t.start()
    last = 0
    while last < 100:
        last = a.recv_type(5)["offset"]
    a.close()
    b, _ = connect(port, "acc1", tok)
    r = sub(b, "acc1", "s2", "b", since={"epoch": epoch, "offset": last})
    assert r["recovered"] is True, r
    got = []
    while not got or got[-1] < total:
        d = b.recv_type(5)
        assert d["data"] == d["offset"], d
        got.append(d["offset"])
    t.join()
    assert got == list(range(last + 1, total + 1)), (last, got[:5], len(got))
    quiet(b)
    for ws in (b, pub):
        ws.close()


def test_malformed_since_is_a_protocol_error():
    port = server()
    ws, _ = connect(port, "acc1", acc1_token(port))
    ws.send(6, {"owner": "acc1", "stream": "s2", "requestId": "x",
                "since": {"epoch": "a:b", "offset": 1}})
    err = ws.recv_type(10)
    assert err["code"] == "bad_request", err
    assert ws.expect_close() == 4004


def test_restart_changes_the_epoch():
    proc, port = serve()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    epoch = sub(ws, "acc1", "s2", "a")["epoch"]
    publish(ws, "s2", 1, rid="1")
    ws.close()
    proc.stop()
    proc2 = lstest.lightstream(*proc.argv[1:], name="serve-again", wait_tcp=port)
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    r = sub(ws, "acc1", "s2", "b", since={"epoch": epoch, "offset": 1})
    assert r["recovered"] is False and r["epoch"] != epoch and r["offset"] == 0, r
    ws.close()
    proc2.stop()


def test_history_disabled():
    proc, port = serve(config={"history": {"size": 0}}, name="serve-nohist")
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    pub, _ = connect(port, "acc1", tok)
    r = sub(ws, "acc1", "s2", "a")
    assert r["offset"] == 0, r
    p = publish(pub, "s2", 1, rid="1")
    assert "offset" not in p, p
    d = ws.recv_type(5)
    assert "offset" not in d and d["data"] == 1, d
    ws.close()
    proc.stop()


def history(port, tok, query="", owner="acc1", stream="s2"):
    headers = {"Authorization": "Bearer " + tok} if tok else {}
    return lstest.http_json("GET", url(port, "/lightstream/history/%s/%s%s" % (owner, stream, query)),
                            headers=headers)


def test_http_history_endpoint():
    port = server()
    tok = acc1_token(port)
    pub, _ = connect(port, "acc1", tok)
    status, body = history(port, tok)
    assert status == 200 and body["data"]["offset"] == 0 and body["data"]["messages"] == [], body
    epoch = body["data"]["epoch"]
    publish(pub, "s2", {"n": 1}, rid="1")
    publish(pub, "s2", "text", rid="2")
    publish(pub, "s2", [3], rid="3")
    status, body = history(port, tok)
    assert status == 200, body
    assert body["data"] == {"epoch": epoch, "offset": 3, "messages": [
        {"offset": 1, "data": {"n": 1}}, {"offset": 2, "data": "text"},
        {"offset": 3, "data": [3]}]}, body
    status, body = history(port, tok, "?since=1&limit=1")
    assert status == 200 and body["data"]["messages"] == [{"offset": 2, "data": "text"}], body
    status, body = history(port, tok, "?since=3")
    assert status == 200 and body["data"]["messages"] == [] and body["data"]["offset"] == 3, body
    # history.size is 5: older messages are gone, the oldest retained first
    for n in range(4, 10):
        publish(pub, "s2", n, rid=str(n))
    status, body = history(port, tok, "?limit=1000")
    assert [m["offset"] for m in body["data"]["messages"]] == [5, 6, 7, 8, 9], body
    # refusals
    for q in ("?limit=0", "?limit=1001", "?since=-1", "?since=x", "?limit=1e2"):
        status, body = history(port, tok, q)
        assert status == 400 and body["errors"][0]["code"] == "bad_request", (q, body)
    status, body = history(port, None)
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", body
    status, body = history(port, "B" * 43)
    assert status == 401, body
    reader = acc1_token(port, roles=["weather-reader"])
    status, body = history(port, reader)
    assert status == 403 and body["errors"][0]["code"] == "forbidden", body
    # another account's stream: the token alone names its account (no
    # appKey needed), as for the HTTP publish; an appKey must match it
    status, body = history(port, reader, owner="svc1", stream="weather")
    assert status == 200 and body["data"]["messages"] == [], body
    status, body = history(port, reader, "?appKey=acc1", owner="svc1", stream="weather")
    assert status == 200, body
    status, body = history(port, reader, "?appKey=svc1", owner="svc1", stream="weather")
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", body
    web = acc1_token(port, web=True)
    status, body = history(port, web)
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", body
    status, body = lstest.http_json("POST", url(port, "/lightstream/history/acc1/s2"), "{}",
                                    {"Authorization": "Bearer " + tok})
    assert status == 405, body
    pub.close()


def test_account_history_override():
    """An account document's "history" overrides the server's settings for
    its streams; other accounts keep the defaults."""
    global _last
    if _last is not None:
        _last.stop()
    with open(lstest.FIXTURE) as f:
        fixture = json.load(f)
    for acc in fixture["accounts"]:
        if acc["appKey"] == "acc1":
            acc["history"] = {"size": 2, "ttl": 60}
    path = os.path.join(lstest.tmpdir(), "fixture-history.json")
    with open(path, "w") as f:
        json.dump(fixture, f)
    _last, port = serve(config={"history": {"size": 5}}, args=("--fixture", path),
                        name="serve-override")
    tok = acc1_token(port)
    pub, _ = connect(port, "acc1", tok)
    for n in range(1, 5):
        publish(pub, "s2", n, rid=str(n))
    status, body = history(port, tok, "?limit=1000")
    assert status == 200 and [m["offset"] for m in body["data"]["messages"]] == [3, 4], body
    # svc1 has no override: the server's size 5
    stok = lstest.http_json("GET", url(port, "/lightstream/services/auth/generatetoken?"
                                       "publicKey=svc1&privateKey=svc1_private&roles=publisher"))[1]["data"]["value"]
    spub, _ = connect(port, "svc1", stok)
    for n in range(1, 8):
        spub.send(5, {"owner": "svc1", "stream": "weather", "data": n, "requestId": str(n)})
        assert spub.recv_type(13)["ok"] is True
    status, body = history(port, stok, "?limit=1000", owner="svc1", stream="weather")
    assert [m["offset"] for m in body["data"]["messages"]] == [3, 4, 5, 6, 7], body
    for ws in (pub, spub):
        ws.close()


if __name__ == "__main__":
    lstest.main(globals())
