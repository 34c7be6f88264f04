"""The MongoDB store against the MongoDB emulator (tests/harness/
mongo_emulator.py: Debian's python3-mockupdb for the wire protocol,
python3-mongomock for the commands' meaning). This is NOT a real MongoDB
server: it checks that libmongoc's requests and our store logic agree with
MongoDB's command semantics (unique and TTL indexes, duplicate keys, string
_ids, updates). The real-server run is `store_mongodb`, with
LIGHTSTREAM_TEST_MONGODB_URI set."""

import os
import subprocess
import sys

import lstest

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(lstest.SOURCE_ROOT, "tests", "harness", "mongo_emulator.py")
CONTRACT = os.path.join(lstest.BUILD_ROOT, "tests", "appserver", "test_store_mongodb")

state = {}


def emulator():
    if "port" not in state:
        port = lstest.free_port()
        p = lstest.Proc("mongo-emulator", ["/usr/bin/python3", EMULATOR, str(port)])
        lstest.wait_port(port, proc=p, timeout=20)
        state["port"], state["proc"] = port, p
    return state["port"]


def uri(db):
    return "mongodb://127.0.0.1:%d/%s" % (emulator(), db)


def test_store_contract_on_the_emulator():
    print("# MongoDB emulator (python3-mockupdb + python3-mongomock), not a "
          "real MongoDB server")
    env = dict(os.environ, LIGHTSTREAM_TEST_MONGODB_URI=uri("lscontract"))
    r = subprocess.run([CONTRACT], capture_output=True, text=True, env=env,
                       timeout=120)
    lines = r.stdout.splitlines()
    for line in lines:
        print("# contract: " + line)
    oks = [l for l in lines if l.startswith("ok ")]
    bad = [l for l in lines if l.startswith("not ok") or "# SKIP" in l]
    assert r.returncode == 0 and not bad, (r.returncode, bad, r.stderr[-2000:])
    assert len(oks) >= 10, lines


def test_indexes_unique_appkey_and_ttl():
    import pymongo
    c = pymongo.MongoClient(uri("lsindexes"), serverSelectionTimeoutMS=5000)
    data = os.path.join(lstest.tmpdir(), "idx")
    os.makedirs(data, exist_ok=True)
    port = lstest.free_port()
    p = lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
                           "--store", uri("lsindexes"), "--fixture", lstest.FIXTURE,
                           name="serve-mongo-idx", wait_tcp=port)
    tokens = {ix["name"]: ix for ix in c["lsindexes"]["tokens"].list_indexes()}
    ttl = [ix for ix in tokens.values() if "expireAfterSeconds" in ix]
    assert ttl and list(ttl[0]["key"].keys()) == ["expiresAt"], tokens
    assert ttl[0]["expireAfterSeconds"] == 0
    accounts = list(c["lsindexes"]["accounts"].list_indexes())
    assert any(ix.get("unique") and list(ix["key"].keys()) == ["appKey"]
               for ix in accounts), accounts
    assert p.stop() == 0


def test_serve_on_the_emulator_end_to_end():
    """Tokens issued by one `serve` on the MongoDB store still log in after a
    restart: accounts and token hashes live in the store, not the process."""
    data = os.path.join(lstest.tmpdir(), "e2e")
    os.makedirs(data, exist_ok=True)
    port = lstest.free_port()
    args = ["serve", "--listen", "127.0.0.1:%d" % port, "--data", data,
            "--store", uri("lse2e")]
    p = lstest.lightstream(*args, "--fixture", lstest.FIXTURE, name="serve-mongo",
                           wait_tcp=port)
    r = lstest.run("token", "--url", "http://127.0.0.1:%d" % port, "--app", "acc1",
                   "--private-key", "acc1_private", "--roles", "publisher")
    assert r.returncode == 0, (r.stderr, open(p.log_path).read()[-3000:])
    tok = r.stdout.strip()
    r = lstest.run("token", "--url", "http://127.0.0.1:%d" % port, "--app", "acc1",
                   "--private-key", "wrong", "--roles", "publisher")
    assert r.returncode == 1, r.stderr
    assert p.stop() == 0
    p = lstest.lightstream(*args, name="serve-mongo-2", wait_tcp=port)
    ws = lstest.WS("ws://127.0.0.1:%d/lightstream/websocket" % port)
    ws.send(1, {"appKey": "acc1", "token": tok})
    m = ws.recv_type(2)
    assert m["ok"] is True, m
    assert {"owner": "acc1", "stream": "s1", "permission": 3} in m["permissions"], m
    ws.close()
    assert p.stop() == 0


lstest.main(globals())
