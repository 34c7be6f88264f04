"""docs/protocol.md end to end against `lightstream serve`: every rule of the
WebSocket protocol, with a real gateway, broker, app server and SQLite."""

import json
import os
import signal
import time

import lstest
from gwlib import (ACC1, acc1_token, connect, send_masked_fast, serve,
                   signature, subscribe, token, ws_url)

_main = None


def main_server():
    global _main
    if _main is None:
        _main = serve()
    return _main[1]


def test_auth_ok_lists_permissions():
    port = main_server()
    ws, m = connect(port, "acc1", acc1_token(port))
    assert len(m["connectionId"]) >= 22
    assert m["expiresAt"].endswith("Z")
    perms = {(p["owner"], p["stream"], p["permission"]) for p in m["permissions"]}
    assert ("acc1", "s1", 3) in perms and ("svc1", "weather", 2) in perms, perms
    ws.close()


def test_connection_ids_differ():
    port = main_server()
    tok = acc1_token(port)
    ids = set()
    for _ in range(3):
        ws, m = connect(port, "acc1", tok)
        ids.add(m["connectionId"])
        ws.close()
    assert len(ids) == 3


def test_bad_token_closes_4001():
    port = main_server()
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": "x" * 43})
    m = ws.recv_type(2)
    assert m["ok"] is False and m["error"]["code"] == "auth_failed", m
    assert ws.expect_close() == 4001


def test_token_of_other_account_refused():
    port = main_server()
    tok = acc1_token(port)
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "svc1", "token": tok})
    assert ws.recv_type(2)["ok"] is False
    assert ws.expect_close() == 4001


def test_ip_bound_token():
    port = main_server()
    tok = acc1_token(port, ip="10.9.8.7")
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is False
    assert ws.expect_close() == 4001
    # X-Forwarded-For is ignored from an untrusted peer
    ws = lstest.WS(ws_url(port), headers={"X-Forwarded-For": "10.9.8.7"})
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is False
    tok = acc1_token(port, ip="127.0.0.1")
    ws, _ = connect(port, "acc1", tok)
    ws.close()


def test_ip_bound_token_behind_trusted_proxy():
    proc, port = serve({"gateway": {"trusted_proxies": ["127.0.0.0/8"]}},
                       name="serve-proxy")
    tok = acc1_token(port, ip="10.9.8.7")
    ws, _ = connect(port, "acc1", tok, headers={"X-Forwarded-For": "10.9.8.7, 127.0.0.1"})
    ws.close()
    ws = lstest.WS(ws_url(port), headers={"X-Forwarded-For": "10.9.8.6"})
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is False
    assert ws.expect_close() == 4001
    assert proc.stop() == 0


def test_nothing_before_auth_4001():
    port = main_server()
    ws = lstest.WS(ws_url(port))
    ws.send(6, {"owner": "acc1", "stream": "s1", "requestId": "a"})
    err = ws.recv_type(10)
    assert err["code"] == "auth_failed", err
    assert ws.expect_close() == 4001


def test_malformed_before_and_after_auth_4004():
    port = main_server()
    for payload in ["{not json", json.dumps({"t": 99, "m": {}}), json.dumps({"t": 1}),
                    json.dumps([1, 2]), json.dumps({"t": 1, "m": {"appKey": 5, "token": "x"}})]:
        ws = lstest.WS(ws_url(port))
        ws.send_text(payload)
        assert ws.recv_type(10)["code"] == "bad_request"
        assert ws.expect_close() == 4004, payload
    tok = acc1_token(port)
    for payload in ["[]", json.dumps({"t": 6, "m": {"owner": "acc1"}}),
                    json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s1"}}),
                    json.dumps({"t": 2, "m": {"ok": True}}),
                    json.dumps({"t": 6, "m": {"owner": "acc1", "stream": "bad name",
                                              "requestId": "x"}})]:
        ws, _ = connect(port, "acc1", tok)
        ws.send_text(payload)
        assert ws.recv_type(10)["code"] == "bad_request"
        assert ws.expect_close() == 4004, payload


def test_binary_frame_is_protocol_error():
    port = main_server()
    ws, _ = connect(port, "acc1", acc1_token(port))
    ws.send_frame(0x2, b"\x00\x01")
    assert ws.expect_close() == 4004


def test_oversized_frame_1009_others_unaffected():
    port = main_server()
    tok = acc1_token(port)
    other, _ = connect(port, "acc1", tok)
    subscribe(other, "acc1", "s2")
    ws, _ = connect(port, "acc1", tok)
    big = json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                    "data": "x" * 70000}}).encode()
    send_masked_fast(ws, big)
    assert ws.expect_close() == 1009
    # a fragmented message counts as a whole
    ws, _ = connect(port, "acc1", tok)
    part = json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                     "data": "y" * 40000}}).encode()
    ws.send_frame(0x1, part[:40000], fin=False)
    ws.send_frame(0x0, part[40000:] + b" " * 30000, fin=True)
    assert ws.expect_close() == 1009
    other.send(5, {"owner": "acc1", "stream": "s2", "data": {"still": "here"}})
    assert other.recv_type(5)["data"] == {"still": "here"}
    other.close()


def test_fragmented_message_reassembled():
    port = main_server()
    ws, _ = connect(port, "acc1", acc1_token(port))
    sub = subscribe(ws, "acc1", "s2")
    text = json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                     "data": {"text": "z" * 3000}}}).encode()
    ws.send_frame(0x1, text[:100], fin=False)
    ws.send_frame(0x0, text[100:2000], fin=False)
    ws.send_frame(0x0, text[2000:], fin=True)
    d = ws.recv_type(5)
    assert d["sub"] == sub["subscriptionId"] and d["data"]["text"] == "z" * 3000
    ws.close()


def test_forbidden_publish_and_subscribe_4003():
    port = main_server()
    tok = acc1_token(port, roles=["public"])
    ws, _ = connect(port, "acc1", tok)
    ws.send(5, {"owner": "acc1", "stream": "s1", "data": 1})  # read-only
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003
    ws, _ = connect(port, "acc1", tok)
    ws.send(6, {"owner": "svc1", "stream": "weather", "requestId": "w"})
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003


def test_prefix_permissions():
    fixture = os.path.join(lstest.tmpdir(), "prefix.json")
    with open(fixture, "w") as f:
        json.dump({"accounts": [{"appKey": "pfx", "privateKey": "pfx_private",
                                 "secretKey": "pfx_secret", "isPublic": False,
                                 "roles": {"news": [{"owner": "pfx", "stream": "news.*",
                                                     "permission": 3}]}}]}, f)
    proc, port = serve(args=["--fixture", fixture], name="serve-prefix")
    tok = token(port, "pfx", "pfx_private", ["news"])["value"]
    ws, m = connect(port, "pfx", tok)
    assert {"owner": "pfx", "stream": "news.*", "permission": 3} in m["permissions"], m
    assert subscribe(ws, "pfx", "news.sport")["ok"]
    ws.send(5, {"owner": "pfx", "stream": "news.local", "data": 1, "requestId": "p"})
    assert ws.recv_type(13)["ok"] is True
    ws.send(6, {"owner": "pfx", "stream": "weather", "requestId": "w"})
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003
    ws, _ = connect(port, "pfx", tok)
    ws.send(5, {"owner": "pfx", "stream": "newsroom", "data": 1})  # not "news." + ...
    assert ws.expect_close() == 4003
    assert proc.stop() == 0


def test_publish_subscribe_ack_unsubscribe():
    port = main_server()
    tok = acc1_token(port)
    sub_ws, _ = connect(port, "acc1", tok)
    a = subscribe(sub_ws, "acc1", "s1", rid="a")
    b = subscribe(sub_ws, "acc1", "s1", rid="b")
    assert a["ok"] and b["ok"] and a["subscriptionId"] != b["subscriptionId"]
    pub, _ = connect(port, "acc1", tok)
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": {"n": 1}, "requestId": "p1"})
    ack = pub.recv_type(13)
    # The stream keeps history (the default): the ack carries the offset.
    assert ack == {"requestId": "p1", "ok": True, "offset": a["offset"] + 1}, ack
    got = [sub_ws.recv_type(5), sub_ws.recv_type(5)]
    assert {g["sub"] for g in got} == {a["subscriptionId"], b["subscriptionId"]}
    for g in got:
        assert g["owner"] == "acc1" and g["stream"] == "s1" and g["data"] == {"n": 1}
        assert g["offset"] == ack["offset"], g
    sub_ws.send(8, {"subscriptionId": a["subscriptionId"]})
    assert sub_ws.recv_type(9) == {"subscriptionId": a["subscriptionId"], "ok": True}
    sub_ws.send(8, {"subscriptionId": "nope"})
    assert sub_ws.recv_type(9)["ok"] is False
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": "two"})  # no requestId: no ack
    d = sub_ws.recv_type(5)
    assert d["sub"] == b["subscriptionId"] and d["data"] == "two"
    pub.send(5, {"owner": "acc1", "stream": "s1", "data": [3], "requestId": 7})
    assert pub.recv_type(13) == {"requestId": 7, "ok": True, "offset": ack["offset"] + 2}
    assert sub_ws.recv_type(5)["data"] == [3]
    pub.close()
    sub_ws.close()


def test_query_filters_and_select_mode():
    port = main_server()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    cold = subscribe(ws, "acc1", "s2", rid="cold", query={
        "mode": "any", "where": {"and": [{"field": "city", "op": "equals", "value": "Lisboa"},
                                         {"field": "temperature", "op": "less", "value": 15}]}})
    sel = subscribe(ws, "acc1", "s2", rid="sel", query={
        "mode": "select", "path": "readings",
        "where": {"field": "v", "op": "greater", "value": 10}})
    bad = subscribe(ws, "acc1", "s2", rid="bad", query={"mode": "any", "where": {"field": "x", "op": "lt", "value": 1}})
    assert cold["ok"] and sel["ok"]
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_query", bad
    # an error quoting long non-ASCII input still arrives as valid JSON
    long_bad = subscribe(ws, "acc1", "s2", rid="long", query={
        "where": {"field": "x", "op": "\u00e9" * 300, "value": 1}})
    assert long_bad["ok"] is False and long_bad["error"]["code"] == "invalid_query"
    pub, _ = connect(port, "acc1", tok)
    msgs = [{"city": "Porto", "temperature": 10, "readings": [{"v": 1}]},
            {"city": "Lisboa", "temperature": 12, "readings": [{"v": 11}, {"v": 2}, {"v": 30}]},
            {"city": "Lisboa", "temperature": 20, "readings": [{"v": 5}]}]
    for m in msgs:
        pub.send(5, {"owner": "acc1", "stream": "s2", "data": m, "requestId": "x"})
        pub.recv_type(13)
    got = []
    for _ in range(2):
        got.append(ws.recv_type(5))
    by = {g["sub"]: g["data"] for g in got}
    assert by[cold["subscriptionId"]] == msgs[1]
    assert by[sel["subscriptionId"]]["readings"] == [{"v": 11}, {"v": 30}]
    assert by[sel["subscriptionId"]]["city"] == "Lisboa"
    # nothing else arrives; the connection is still usable
    ws.send(8, {"subscriptionId": cold["subscriptionId"]})
    assert ws.recv(2)["t"] == 9
    ws.close()


def test_published_numbers_arrive_as_written():
    """A client publishing 7.9 must not see 7.9000000000000004 on the wire,
    neither in plain delivery nor in select mode's rebuilt message."""
    port = main_server()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    plain = subscribe(ws, "acc1", "s2", rid="plain")
    sel = subscribe(ws, "acc1", "s2", rid="sel", query={
        "mode": "select", "path": "r", "where": {"field": "v", "op": "greater", "value": 0.5}})
    assert plain["ok"] and sel["ok"]
    ws.send_text('{"t":5,"m":{"owner":"acc1","stream":"s2","data":'
                 '{"t":7.9,"big":1e300,"r":[{"v":0.1},{"v":2.5}],"n":3.0}}}')
    raw = {}
    for _ in range(2):
        opcode, payload = ws.recv_frame(5)
        text = payload.decode()
        raw[json.loads(text)["m"]["sub"]] = text
    for text in raw.values():
        assert '"t":7.9,' in text and "7.900" not in text, text
        assert "1e+300" in text and '"n":3.0' in text, text
    assert '"r":[{"v":2.5}]' in raw[sel["subscriptionId"]], raw
    ws.close()


def test_non_object_messages_and_text_query():
    port = main_server()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    s = subscribe(ws, "acc1", "s2", rid="t", query={
        "where": {"field": "", "op": "startsWith", "value": "hello"}})
    assert s["ok"], s
    ws.send(5, {"owner": "acc1", "stream": "s2", "data": "nope"})
    ws.send(5, {"owner": "acc1", "stream": "s2", "data": "hello world"})
    assert ws.recv_type(5)["data"] == "hello world"
    ws.close()


def test_web_token_signature():
    port = main_server()
    data = token(port, "acc1", "acc1_private", ["public"], web=True)
    tok = data["value"]
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": tok})
    req = ws.recv_type(3)
    assert req["appKey"] == "acc1" and req["token"] == tok
    assert len(req["connectionId"]) >= 22  # >= 128 random bits, base64url
    ws.send(4, {"signature": signature("acc1_secret", "acc1", tok, req["connectionId"])})
    m = ws.recv_type(2)
    assert m["ok"] is True and m["connectionId"] == req["connectionId"]
    assert subscribe(ws, "acc1", "s1")["ok"]
    ws.close()
    # forged: signed with a wrong secret, or for another connection id
    for secret, conn in (("wrong", None), ("acc1_secret", "other-connection-id")):
        ws = lstest.WS(ws_url(port))
        ws.send(1, {"appKey": "acc1", "token": tok})
        req = ws.recv_type(3)
        ws.send(4, {"signature": signature(secret, "acc1", tok, conn or req["connectionId"])})
        m = ws.recv_type(2)
        assert m["ok"] is False and m["error"]["code"] == "auth_failed"
        assert ws.expect_close() == 4001
    # not authenticated before the signature
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": tok})
    ws.recv_type(3)
    ws.send(6, {"owner": "acc1", "stream": "s1", "requestId": "q"})
    assert ws.expect_close() == 4001


def test_subscription_limit():
    proc, port = serve({"gateway": {"max_subscriptions": 2}}, name="serve-limit")
    ws, _ = connect(port, "acc1", acc1_token(port))
    assert subscribe(ws, "acc1", "s1", rid="1")["ok"]
    assert subscribe(ws, "acc1", "s1", rid="2")["ok"]
    r = subscribe(ws, "acc1", "s1", rid="3")
    assert r["ok"] is False and r["error"]["code"] == "too_large", r
    # the connection stays
    ws.send(5, {"owner": "acc1", "stream": "s1", "data": 1, "requestId": "k"})
    assert ws.recv_type(13)["ok"] is True
    ws.close()
    assert proc.stop() == 0


def test_auth_timeout_4002_and_expiry_4010_and_refresh():
    proc, port = serve({"gateway": {"auth_timeout_ms": 300}}, name="serve-timeouts")
    ws = lstest.WS(ws_url(port))
    err = ws.recv_type(10, timeout=5)
    assert err["code"] == "auth_failed"
    assert ws.expect_close() == 4002
    # a token of 2 s expires on an open connection
    ws, m = connect(port, "acc1", acc1_token(port, ttl=2))
    err = ws.recv_type(10, timeout=10)
    assert err["code"] == "token_expired", err
    assert ws.expect_close() == 4010
    # refresh with a new token of the same account keeps it open
    ws, m = connect(port, "acc1", acc1_token(port, ttl=2))
    ws.send(11, {"token": acc1_token(port, ttl=600)})
    r = ws.recv_type(12)
    assert r["ok"] is True and r["expiresAt"] > m["expiresAt"], (r, m)
    time.sleep(3)
    assert subscribe(ws, "acc1", "s1")["ok"]
    # a token of another account does not refresh
    other = token(port, "svc1", "svc1_private", ["public"])["value"]
    ws.send(11, {"token": other})
    r = ws.recv_type(12)
    assert r["ok"] is False and r["error"]["code"] == "auth_failed"
    ws.send(11, {"token": "garbage"})
    assert ws.recv_type(12)["ok"] is False
    ws.close()
    assert proc.stop() == 0


def test_slow_consumer_4008_others_unaffected():
    proc, port = serve({"gateway": {"queue_limit_bytes": 262144}}, name="serve-slow")
    tok = acc1_token(port)
    slow, _ = connect(port, "acc1", tok)
    subscribe(slow, "acc1", "s2")
    fast, _ = connect(port, "acc1", tok)
    subscribe(fast, "acc1", "s2")
    pub, _ = connect(port, "acc1", tok)
    n = 400
    blob = "b" * 50000
    received = 0
    for i in range(n):
        send_masked_fast(pub, json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                                        "data": {"i": i, "blob": blob}}}).encode())
        # the fast reader keeps up
        while received <= i:
            d = fast.recv_type(5)
            assert d["data"]["i"] == received
            received += 1
        # once the server gave up on the slow one, it must read its close
        # within the close grace (docs/protocol.md: the socket goes 3 s
        # after the decision, read or not)
        if i % 10 == 9 and b"lightstream_slow_consumers_total 1" in lstest.http(
                "GET", "http://127.0.0.1:%d/metrics" % port)[2]:
            break
    assert received == i + 1 and i < n - 1, (received, i)
    # the slow one was cut off: Error slow_consumer, then 4008
    saw_error = False
    try:
        while True:
            env = slow.recv(10)
            if env["t"] == 10:
                assert env["m"]["code"] == "slow_consumer"
                saw_error = True
    except lstest.WSClosed as e:
        assert e.code == 4008, e.code
    assert saw_error
    pub.close()
    fast.close()
    status, text = lstest.http("GET", "http://127.0.0.1:%d/metrics" % port)[0::2]
    assert b"lightstream_slow_consumers_total 1" in text
    assert proc.stop() == 0


def test_dead_peer_dropped_after_missing_pongs():
    proc, port = serve({"gateway": {"ping_interval_s": 1}}, name="serve-ping")
    ws, _ = connect(port, "acc1", acc1_token(port))
    # an answering client stays connected across several intervals
    deadline = time.time() + 3.5
    while time.time() < deadline:
        try:
            op, _ = ws.recv_frame(0.2)
        except OSError:
            continue
    assert subscribe(ws, "acc1", "s1")["ok"]
    # a silent one (reads nothing, answers no ping) is dropped
    mute, _ = connect(port, "acc1", acc1_token(port))
    time.sleep(5)
    mute.sock.settimeout(5)
    hung_up = False
    data = mute.buf
    try:
        while True:
            chunk = mute.sock.recv(65536)
            if not chunk:
                hung_up = True
                break
            data += chunk
    except ConnectionResetError:
        hung_up = True
    assert hung_up
    assert b"\x89\x02ls" in data  # it was pinged before being dropped
    ws.close()
    assert proc.stop() == 0


def test_demo_publisher():
    proc, port = serve(args=["--demo"], name="serve-demo")
    ws, _ = connect(port, "acc1", acc1_token(port, roles=["weather-reader"]))
    plain = subscribe(ws, "svc1", "weather", rid="all")
    lisboa = subscribe(ws, "svc1", "weather", rid="lisboa", query={
        "mode": "select", "path": "readings",
        "where": {"field": "sensor", "op": "equals", "value": "north"}})
    cities, selected = set(), []
    while len(cities) < 3 or not selected:
        d = ws.recv_type(5, timeout=10)
        if d["sub"] == plain["subscriptionId"]:
            m = d["data"]
            assert {"city", "temperature", "humidity", "readings"} <= set(m), m
            assert len(m["readings"]) == 3
            cities.add(m["city"])
        else:
            assert d["sub"] == lisboa["subscriptionId"]
            selected.append(d["data"])
    assert [r["sensor"] for r in selected[0]["readings"]] == ["north"]
    ws.close()
    assert proc.stop() == 0


def test_sigterm_closes_1001_and_exits_0():
    proc, port = serve(name="serve-term")
    tok = acc1_token(port)
    clients = [connect(port, "acc1", tok)[0] for _ in range(3)]
    proc.signal(signal.SIGTERM)
    for ws in clients:
        assert ws.expect_close(10) == 1001
    assert proc.wait(15) == 0


def test_sigterm_drain_timeout_with_stuck_client():
    # A subscriber that reads nothing, with megabytes queued for it: its
    # close frame cannot be written, so the drain timeout ends the wait.
    proc, port = serve({"gateway": {"drain_timeout_ms": 500,
                                    "queue_limit_bytes": 67108864}}, name="serve-drain")
    tok = acc1_token(port)
    stuck, _ = connect(port, "acc1", tok)
    subscribe(stuck, "acc1", "s2")
    pub, _ = connect(port, "acc1", tok)
    blob = "d" * 50000
    for i in range(300):
        send_masked_fast(pub, json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                                        "data": blob, "requestId": i}}).encode())
        pub.recv_type(13)
    proc.signal(signal.SIGTERM)
    assert pub.expect_close(10) == 1001
    assert proc.wait(15) == 0
    assert "drain timeout: 1 connection(s) still open" in proc.log_text()
    stuck.sock.close()


lstest.main(globals())
