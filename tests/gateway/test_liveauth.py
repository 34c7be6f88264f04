"""docs/protocol.md "Live authorization" end to end against `lightstream
serve`: revocation, account deletion, role and account changes and refresh
act on open connections, through the real admin command and token endpoint."""

import json
import os
import time

import lstest
from gwlib import ACC1, acc1_token, connect, serve, subscribe, token

_main = None


def main_server():
    """serve on a free port; `lightstream admin --data DIR` reaches its bus
    (the ipc:// socket in its data directory); returns (port, DIR)."""
    global _main
    if _main is None:
        proc, port = serve()
        _main = (port, os.path.join(lstest.tmpdir(), "data-%d" % port))
    return _main


def admin(data, *args):
    r = lstest.run("admin", "--data", data, *args)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def expect_revoked(ws, within=1.0):
    """Error token_revoked then close 4011, within `within` seconds."""
    start = time.time()
    err = ws.recv_type(10, timeout=within + 1)
    assert err["code"] == "token_revoked", err
    assert ws.expect_close(within + 1) == 4011
    took = time.time() - start
    assert took <= within, "closed after %.2fs" % took


def send_publish(ws, owner, stream, data, rid):
    ws.send(5, {"owner": owner, "stream": stream, "data": data, "requestId": rid})
    return ws.recv_type(13)


def reset_fixture(data):
    admin(data, "import", lstest.FIXTURE)


def test_revoke_closes_connections_4011_within_1s():
    port, data = main_server()
    reset_fixture(data)
    tok = acc1_token(port)
    other = acc1_token(port)
    a, _ = connect(port, "acc1", tok)
    b, _ = connect(port, "acc1", tok)
    keep, _ = connect(port, "acc1", other)
    subscribe(a, "acc1", "s1")
    t0 = time.time()
    admin(data, "token", "revoke", "acc1", "--private-key", ACC1[1], "--", tok)
    for ws in (a, b):
        expect_revoked(ws, within=1.0 - (time.time() - t0) + 0.2)
    # another token of the same account is untouched
    r = send_publish(keep, "acc1", "s1", "still here", "k1")
    assert r["ok"] is True, r
    keep.close()
    # and the revoked token no longer authenticates
    ws = lstest.WS("ws://127.0.0.1:%d/lightstream/websocket" % port)
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is False


def test_revoke_through_the_bus_operation():
    port, data = main_server()
    reset_fixture(data)
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    r = lstest.run("call", "--data", data, "--", "auth", "revokeToken", "acc1", ACC1[1], tok)
    assert r.returncode == 0, (r.stdout, r.stderr)
    expect_revoked(ws)


def test_account_delete_closes_its_connections():
    port, data = main_server()
    reset_fixture(data)
    acc = acc1_token(port)
    svc = token(port, "svc1", "svc1_private", ["publisher"])["value"]
    a, _ = connect(port, "acc1", acc)
    s, _ = connect(port, "svc1", svc)
    admin(data, "account", "delete", "acc1")
    expect_revoked(a)
    r = send_publish(s, "svc1", "weather", {"t": 1}, "p1")
    assert r["ok"] is True, r
    s.close()


def test_role_change_ends_unreadable_subscription_connection_stays():
    port, data = main_server()
    reset_fixture(data)
    tok = acc1_token(port, roles=("public", "weather-reader"))
    ws, auth = connect(port, "acc1", tok)
    s1 = subscribe(ws, "acc1", "s1", rid="a")["subscriptionId"]
    s2 = subscribe(ws, "acc1", "s2", rid="b")["subscriptionId"]
    pub, _ = connect(port, "acc1", acc1_token(port, roles=("publisher", "public")))
    # role "public" loses s1 (read) and keeps s2
    admin(data, "role", "set", "acc1", "public",
          json.dumps([{"owner": "acc1", "stream": "s2", "permission": 3}]))
    t0 = time.time()
    pc = ws.recv_type(15, timeout=2)
    ended = ws.recv_type(14, timeout=2)
    assert time.time() - t0 <= 1.0
    perms = {(p["owner"], p["stream"], p["permission"]) for p in pc["permissions"]}
    assert perms == {("acc1", "s2", 3), ("svc1", "weather", 2)}, perms
    assert ended == {"subscriptionId": s1, "error": {
        "code": "forbidden", "message": ended["error"]["message"]}}, ended
    assert "acc1:s1" in ended["error"]["message"]
    # the other subscription keeps receiving, the ended one does not
    assert send_publish(pub, "acc1", "s1", "one", "1")["ok"] is True
    assert send_publish(pub, "acc1", "s2", "two", "2")["ok"] is True
    d = ws.recv_type(5)
    assert d["sub"] == s2 and d["data"] == "two", d
    # subscribing to s1 again is now forbidden (a misbehaving client)
    ws.send(6, {"owner": "acc1", "stream": "s1", "requestId": "c"})
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003
    pub.close()


def test_write_permission_removed_refuses_publish_at_once():
    port, data = main_server()
    reset_fixture(data)
    tok = acc1_token(port, roles=("public",))
    ws, _ = connect(port, "acc1", tok)
    assert send_publish(ws, "acc1", "s2", "before", "1")["ok"] is True
    admin(data, "role", "set", "acc1", "public",
          json.dumps([{"owner": "acc1", "stream": "s2", "permission": 2}]))
    pc = ws.recv_type(15, timeout=1)
    assert pc["permissions"] == [{"owner": "acc1", "stream": "s2", "permission": 2}], pc
    ws.send(5, {"owner": "acc1", "stream": "s2", "data": "after", "requestId": "2"})
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003


def test_role_delete_and_grant_widening():
    port, data = main_server()
    reset_fixture(data)
    tok = acc1_token(port, roles=("public", "weather-reader"))
    ws, _ = connect(port, "acc1", tok)
    w = subscribe(ws, "svc1", "weather", rid="w")["subscriptionId"]
    s2 = subscribe(ws, "acc1", "s2", rid="s")["subscriptionId"]
    admin(data, "role", "delete", "acc1", "weather-reader")
    pc = ws.recv_type(15, timeout=1)
    assert all(p["owner"] == "acc1" for p in pc["permissions"]), pc
    assert ws.recv_type(14, timeout=1)["subscriptionId"] == w
    # a wider grant is announced too, and ends nothing
    admin(data, "role", "set", "acc1", "public",
          json.dumps([{"owner": "acc1", "stream": "s*", "permission": 3}]))
    pc = ws.recv_type(15, timeout=1)
    assert pc["permissions"] == [{"owner": "acc1", "stream": "s*", "permission": 3}], pc
    pub, _ = connect(port, "acc1", acc1_token(port, roles=("publisher", "public")))
    assert send_publish(pub, "acc1", "s2", "x", "1")["ok"] is True
    d = ws.recv_type(5)
    assert d["sub"] == s2, d
    ws.close()
    pub.close()


def test_account_update_public_flag_changes_other_accounts():
    port, data = main_server()
    reset_fixture(data)
    ws, _ = connect(port, "acc1", acc1_token(port, roles=("public", "weather-reader")))
    w = subscribe(ws, "svc1", "weather")["subscriptionId"]
    admin(data, "account", "update", "svc1", "--no-public")
    pc = ws.recv_type(15, timeout=1)
    assert not any(p["owner"] == "svc1" for p in pc["permissions"]), pc
    ended = ws.recv_type(14, timeout=1)
    assert ended["subscriptionId"] == w and ended["error"]["code"] == "forbidden"
    ws.close()


def test_unchanged_permissions_send_nothing():
    port, data = main_server()
    reset_fixture(data)
    ws, _ = connect(port, "acc1", acc1_token(port, roles=("public",)))
    # a role this token does not hold changes: no PermissionsChanged
    admin(data, "role", "set", "acc1", "publisher",
          json.dumps([{"owner": "acc1", "stream": "s9", "permission": 3}]))
    pub, _ = connect(port, "acc1", acc1_token(port, roles=("publisher",)))
    sub = subscribe(ws, "acc1", "s1")["subscriptionId"]
    time.sleep(0.5)
    ws.send(5, {"owner": "acc1", "stream": "s2", "data": 1, "requestId": "x"})
    env = ws.recv()
    assert env["t"] in (7, 13), env  # nothing of type 14 or 15 came first
    ws.close()
    pub.close()


def test_refresh_with_narrower_token_applies_its_permissions():
    port, data = main_server()
    reset_fixture(data)
    ws, _ = connect(port, "acc1", acc1_token(port, roles=("public", "weather-reader")))
    w = subscribe(ws, "svc1", "weather", rid="w")["subscriptionId"]
    s1 = subscribe(ws, "acc1", "s1", rid="s")["subscriptionId"]
    narrow = acc1_token(port, roles=("public",), ttl=600)
    ws.send(11, {"token": narrow})
    r = ws.recv_type(12)
    assert r["ok"] is True, r
    pc = ws.recv_type(15)
    assert {p["owner"] for p in pc["permissions"]} == {"acc1"}, pc
    ended = ws.recv_type(14)
    assert ended["subscriptionId"] == w and ended["error"]["code"] == "forbidden", ended
    # the connection now follows the new token: revoking it closes
    admin(data, "token", "revoke", "acc1", "--private-key", ACC1[1], "--", narrow)
    expect_revoked(ws)


def test_refresh_with_same_permissions_sends_no_change():
    port, data = main_server()
    reset_fixture(data)
    ws, _ = connect(port, "acc1", acc1_token(port, roles=("public",)))
    subscribe(ws, "acc1", "s1")
    old = None
    ws.send(11, {"token": acc1_token(port, roles=("public",), ttl=900)})
    assert ws.recv_type(12)["ok"] is True
    ws.send(6, {"owner": "acc1", "stream": "s2", "requestId": "z"})
    env = ws.recv()
    assert env["t"] == 7, env
    ws.close()


def test_database_import_revokes_everything():
    port, data = main_server()
    reset_fixture(data)
    ws, _ = connect(port, "acc1", acc1_token(port))
    reset_fixture(data)
    expect_revoked(ws)


def test_metrics_count_live_authorization():
    port, front = main_server()
    text = lstest.http("GET", "http://127.0.0.1:%d/metrics" % port)[2].decode()
    values = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
              if l.startswith("lightstream_") and " " in l}
    # the tests above revoked, deleted and changed roles on this server
    assert values["lightstream_tokens_revoked_total"] >= 5, values
    assert values["lightstream_permissions_changed_total"] >= 5, values
    assert values["lightstream_revalidations_total"] >= 5, values


lstest.main(globals())
