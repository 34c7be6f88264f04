"""End to end: `lightstream broker` + two `lightstream appserver` processes
over tcp on one SQLite file, driven by `lightstream admin` and
`lightstream call` exactly as an operator would: with CURVE keys made by
`lightstream keygen` (app servers: worker key; admin and call: admin key)."""

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import time

import lstest

HEARTBEAT_MS = 300  # fast dead-worker detection for the kill -9 test

state = {}


def frontend():
    return "tcp://127.0.0.1:%d" % state["front"]


def admin(*args, input=None):
    return lstest.run("admin", "--broker-frontend", frontend(),
                      *lstest.bus_peer_args("admin"), *args, input=input)


def call(*args):
    # "--": a token may start with '-' (base64url).
    return lstest.run("call", "--broker-frontend", frontend(),
                      *lstest.bus_peer_args("admin"), "--", *args)


def call_json(*args):
    r = call(*args)
    assert r.returncode == 0, "call %s failed (%d): %s" % (args, r.returncode, r.stderr)
    return json.loads(r.stdout)


def stats():
    return call_json("mmi.stats")


def start_appserver(name):
    proc = lstest.lightstream(
        "appserver", "--broker-backend", "tcp://127.0.0.1:%d" % state["back"],
        "--store", "sqlite:" + state["db"], "--workers", "2",
        "--heartbeat-ms", HEARTBEAT_MS, *lstest.bus_peer_args("worker"), name=name)
    return proc


def workers():
    return stats()["services"].get("auth", {}).get("workers", 0)


def setup_cluster():
    state["front"] = lstest.free_port()
    state["back"] = lstest.free_port()
    state["db"] = os.path.join(lstest.tmpdir(), "accounts.db")
    state["broker"] = lstest.lightstream(
        "broker", "--broker-frontend", frontend(),
        "--broker-backend", "tcp://127.0.0.1:%d" % state["back"],
        "--heartbeat-ms", HEARTBEAT_MS, *lstest.bus_broker_args(),
        name="broker", wait_tcp=state["front"])
    state["as1"] = start_appserver("appserver1")
    state["as2"] = start_appserver("appserver2")
    lstest.wait_for(lambda: workers() == 4, what="4 workers registered")


def test_admin_import_fixture():
    setup_cluster()
    r = admin("import", lstest.FIXTURE)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == 2
    r = admin("account", "list")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [a["appKey"] for a in listed] == ["acc1", "svc1"]
    assert "secret" not in r.stdout and "private" not in r.stdout


def test_call_generate_and_validate_token():
    tok = call_json("auth", "generateToken", "acc1", "acc1_private",
                    '["public","weather-reader"]', "120")
    assert len(tok["value"]) == 43
    assert tok["expiresAt"].endswith("Z")
    assert tok["roles"] == ["public", "weather-reader"]
    v = call_json("auth", "validateToken", "acc1", tok["value"], "127.0.0.1")
    perms = {(p["owner"], p["stream"]): p["permission"] for p in v["permissions"]}
    # svc1 is a public (service) account: its weather stream is readable.
    assert perms == {("acc1", "s1"): 2, ("acc1", "s2"): 3, ("svc1", "weather"): 2}
    assert v["webToken"] is False and v["ipAddress"] is None


def test_tokens_work_across_appservers():
    # Requests are spread over both processes; every token issued by one
    # validates on whichever answers next.
    for _ in range(8):
        tok = call_json("auth", "generateToken", "svc1", "svc1_private", '["publisher"]')
        v = call_json("auth", "validateToken", "svc1", tok["value"], "10.0.0.9")
        assert v["permissions"] == [{"owner": "svc1", "stream": "weather", "permission": 3}]
    served = stats()["services"]["auth"]["served"]
    assert served >= 16


def test_auth_failures_are_uniform():
    r = call("auth", "generateToken", "acc1", "wrong", '["public"]')
    assert r.returncode == 1
    assert "authentication failed" in r.stderr
    r2 = call("auth", "generateToken", "nobody", "wrong", '["public"]')
    assert r2.returncode == 1

    def answer(stderr):
        # The error the user is shown; log lines (timestamped, e.g. a bus
        # reconnect on a loaded machine) may come and go around it.
        return [ln for ln in stderr.splitlines() if ln.startswith("lightstream call:")]
    assert answer(r2.stderr.replace("nobody", "acc1")) == answer(r.stderr), (r.stderr, r2.stderr)
    assert len(answer(r.stderr)) == 1, r.stderr
    tok = call_json("auth", "generateToken", "acc1", "acc1_private", '["public"]')
    r = call("auth", "validateToken", "svc1", tok["value"], "127.0.0.1")
    assert r.returncode == 1 and "authentication failed" in r.stderr


def test_admin_account_lifecycle():
    r = admin("account", "add", "shop", "--private-key", "shop_private",
              "--secret-key", "shop_secret", "--shared-write")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sharedWrite"] is True
    r = admin("account", "add", "shop", "--private-key", "x", "--secret-key", "y")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = admin("role", "set", "shop", "orders",
              '[{"owner": "shop", "stream": "orders.*", "permission": 3},'
              ' {"owner": "svc1", "stream": "weather", "permission": 2}]')
    assert r.returncode == 0, r.stderr
    # Private key from standard input; IPv6-bound web token.
    r = admin("token", "issue", "shop", "--private-key", "-", "--roles", "orders",
              "--ttl", "300", "--ip", "::1", "--web", input="shop_private\n")
    assert r.returncode == 0, r.stderr
    tok = json.loads(r.stdout)
    assert tok["webToken"] is True and tok["ipAddress"] == "::1"
    v = call_json("auth", "validateToken", "shop", tok["value"], "::1")
    assert {"owner": "svc1", "stream": "weather", "permission": 2} in v["permissions"]
    r = call("auth", "validateToken", "shop", tok["value"], "127.0.0.1")
    assert r.returncode == 1
    # The web-token signature of docs/protocol.md.
    conn = "conn-42"
    sig = hmac.new(b"shop_secret", ("shop:%s:%s" % (tok["value"], conn)).encode(),
                   hashlib.sha256).hexdigest()
    assert call_json("auth", "validateWebToken", "shop", tok["value"], conn, sig) is True
    forged = hmac.new(b"guess", ("shop:%s:%s" % (tok["value"], conn)).encode(),
                      hashlib.sha256).hexdigest()
    assert call_json("auth", "validateWebToken", "shop", tok["value"], conn, forged) is False
    r = admin("account", "show", "shop")
    assert r.returncode == 0 and "shop_secret" not in r.stdout
    r = admin("account", "show", "shop", "--show-secret")
    assert json.loads(r.stdout)["secretKey"] == "shop_secret"
    r = admin("token", "revoke", "shop", "--private-key", "shop_private", "--",
              tok["value"])
    assert r.returncode == 0, r.stderr
    assert call("auth", "validateToken", "shop", tok["value"], "::1").returncode == 1
    r = admin("role", "delete", "shop", "orders")
    assert r.returncode == 0, r.stderr
    r = admin("account", "delete", "shop")
    assert r.returncode == 0, r.stderr
    r = admin("account", "show", "shop")
    assert r.returncode == 1 and "no such account" in r.stderr


def test_admin_usage_errors_exit_2():
    cases = [
        ("account", "add", "bad key!", "--private-key", "p", "--secret-key", "s"),
        ("account", "add", "x"),
        ("role", "set", "acc1", "r", "not json"),
        ("role", "set", "acc1", "r", '[{"owner": "acc1", "stream": "s", "permission": 9}]'),
        ("token", "issue", "acc1", "--private-key", "k", "--roles", "public", "--ttl", "0"),
        ("token", "issue", "acc1", "--private-key", "k", "--roles", "public", "--ip", "1.2.3"),
        ("import", "/nonexistent/fixture.json"),
        ("frobnicate",),
    ]
    for args in cases:
        r = admin(*args)
        assert r.returncode == 2, "%s: %d %s" % (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
    assert admin("--help").returncode == 0
    assert lstest.run("appserver", "--help").returncode == 0
    assert lstest.run("appserver", "--workers", "0").returncode == 2
    assert lstest.run("appserver", "--store", "nosuch:thing",
                      "--broker-backend", "tcp://127.0.0.1:1").returncode == 2


def test_tokens_stored_hashed_on_disk():
    tok = call_json("auth", "generateToken", "svc1", "svc1_private", '["public"]')
    db = sqlite3.connect(state["db"])
    try:
        rows = db.execute("SELECT hash FROM tokens").fetchall()
        priv = db.execute("SELECT private_hash FROM accounts").fetchall()
    finally:
        db.close()
    hashes = {h for (h,) in rows}
    assert hashlib.sha256(tok["value"].encode()).hexdigest() in hashes
    assert tok["value"] not in hashes
    assert all(p.startswith("pbkdf2-sha256$") for (p,) in priv)
    raw = b""
    for suffix in ("", "-wal"):
        path = state["db"] + suffix
        if os.path.exists(path):
            with open(path, "rb") as f:
                raw += f.read()
    assert tok["value"].encode() not in raw
    assert b"svc1_private" not in raw and b"acc1_private" not in raw


def test_kill9_one_appserver_auth_keeps_working():
    state["as1"].kill9()
    # The broker purges the dead workers after 3 silent heartbeats.
    lstest.wait_for(lambda: workers() == 2, what="dead workers purged")
    for _ in range(10):
        tok = call_json("auth", "generateToken", "acc1", "acc1_private", '["publisher"]')
        v = call_json("auth", "validateToken", "acc1", tok["value"], "127.0.0.1")
        assert v["permissions"] == [{"owner": "acc1", "stream": "s1", "permission": 3}]
    # A restarted app server joins again.
    state["as1"] = start_appserver("appserver1b")
    lstest.wait_for(lambda: workers() == 4, what="restarted workers registered")


def test_sigterm_stops_cleanly():
    proc = state["as2"]
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert "stopping" in proc.log_text()
    lstest.wait_for(lambda: workers() == 2, what="stopped workers gone")
    # The remaining app server still answers.
    tok = call_json("auth", "generateToken", "svc1", "svc1_private", '["public"]')
    assert len(tok["value"]) == 43


def test_appserver_creates_its_data_directory():
    # `appserver --data DIR` keeps its default store in DIR, creating it
    # (nested too) as `serve` does, instead of failing at start.
    data = os.path.join(lstest.tmpdir(), "fresh", "data")
    assert not os.path.exists(os.path.dirname(data))
    before = workers()
    proc = lstest.lightstream(
        "appserver", "--broker-backend", "tcp://127.0.0.1:%d" % state["back"],
        "--data", data, "--workers", "1", "--heartbeat-ms", HEARTBEAT_MS,
        *lstest.bus_peer_args("worker"), name="appserver-data")
    lstest.wait_for(lambda: workers() == before + 1 or proc.poll() is not None,
                    what="the app server with --data registered")
    assert proc.poll() is None, proc.log_tail()
    assert os.path.isdir(data)
    assert os.path.isfile(os.path.join(data, "lightstream.db"))
    assert oct(os.stat(data).st_mode & 0o777) == oct(0o750)
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    lstest.wait_for(lambda: workers() == before, what="its worker gone")


def test_curve_bus_with_allow_list():
    # A second broker: only listed keys may connect, each with its role.
    front, back = lstest.free_port(), lstest.free_port()
    fe = "tcp://127.0.0.1:%d" % front
    b2 = dict(broker="broker2")
    lstest.lightstream("broker", "--broker-frontend", fe,
                       "--broker-backend", "tcp://127.0.0.1:%d" % back,
                       *lstest.bus_broker_args(worker=["appserver2"], client=["gateway2"],
                                               admin=["admin2"], broker="broker2"),
                       name="curve-broker", wait_tcp=front)
    lstest.lightstream("appserver", "--broker-backend", "tcp://127.0.0.1:%d" % back,
                       "--store", "sqlite:" + state["db"],
                       *lstest.bus_peer_args("appserver2", **b2), name="curve-appserver")
    secure = ["--broker-frontend", fe, *lstest.bus_peer_args("admin2", **b2)]

    def listed():
        r = lstest.run("admin", "-t", "1000", *secure, "account", "list")
        return r.returncode == 0 and json.loads(r.stdout)
    accounts = lstest.wait_for(listed, what="admin over CURVE")
    assert "acc1" in [a["appKey"] for a in accounts]
    r = lstest.run("admin", "-t", "1000", *secure, "token", "issue", "svc1",
                   "--private-key", "svc1_private", "--roles", "public")
    assert r.returncode == 0, r.stderr
    # A client key may issue tokens but not manage accounts.
    client = ["--broker-frontend", fe, *lstest.bus_peer_args("gateway2", **b2)]
    r = lstest.run("call", "-t", "1000", *client, "auth", "generateToken", "svc1",
                   "svc1_private", '["public"]', "60")
    assert r.returncode == 0, r.stderr
    r = lstest.run("admin", "-t", "1000", *client, "account", "list")
    assert r.returncode == 1 and "forbidden" in r.stderr, r
    # Without CURVE, or with a key not on the list: no answer.
    r = lstest.run("admin", "-t", "500", "--broker-frontend", fe, "--bus-insecure",
                   "account", "list")
    assert r.returncode == 1
    r = lstest.run("admin", "-t", "500", "--broker-frontend", fe,
                   *lstest.bus_peer_args("stranger", **b2), "account", "list")
    assert r.returncode == 1
    # Half a CURVE configuration is a usage error.
    assert lstest.run("admin", "--bus-keys", lstest.bus_key("admin2").key_file,
                      "account", "list").returncode == 2
    assert lstest.run("appserver", "--bus-server-key",
                      lstest.bus_key("broker2").public).returncode == 2


lstest.main(globals())
