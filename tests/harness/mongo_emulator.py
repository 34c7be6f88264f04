#!/usr/bin/python3
"""A MongoDB-wire emulator for tests: Debian's python3-mockupdb speaks the
wire protocol (OP_MSG, handshake) and python3-mongomock gives the commands
their meaning (queries, updates, unique and TTL indexes).

It is NOT MongoDB: tests that use it report themselves as "MongoDB
emulator". It answers the commands libmongoc sends for the store
(hello/isMaster, ping, buildInfo, createIndexes, insert, find, update,
delete, listIndexes, drop, dropDatabase, endSessions) and refuses anything else with a
command error, so a store change that needs more fails loudly here.

    mongo_emulator.py PORT     (prints "ready PORT" when listening)
"""

import sys
import threading
import traceback

try:
    import mockupdb
    import mongomock
    import pymongo.errors
except ImportError as e:  # pragma: no cover - reported by the caller
    print("mongo_emulator: missing module: %s (python3-mockupdb, "
          "python3-mongomock)" % e, file=sys.stderr, flush=True)
    sys.exit(77)

HELLO = {"ismaster": True, "isWritablePrimary": True, "maxWireVersion": 13,
         "minWireVersion": 0, "maxBsonObjectSize": 16 * 1024 * 1024,
         "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
         "ok": 1}

_client = mongomock.MongoClient()
_lock = threading.Lock()


def _coll(req, name):
    return _client[req.doc.get("$db", "test")][name]


def _write_error(i, e):
    code = getattr(e, "code", None) or 2
    return {"index": i, "code": code, "errmsg": str(e)}


def _insert(req):
    coll = _coll(req, req.doc["insert"])
    n, errors = 0, []
    for i, doc in enumerate(req.doc.get("documents", [])):
        try:
            coll.insert_one(dict(doc))
            n += 1
        except pymongo.errors.DuplicateKeyError as e:
            errors.append({"index": i, "code": 11000, "errmsg": str(e)})
            if req.doc.get("ordered", True):
                break
    reply = {"n": n, "ok": 1}
    if errors:
        reply["writeErrors"] = errors
    return reply


def _find(req):
    d = req.doc
    cur = _coll(req, d["find"]).find(d.get("filter", {}), d.get("projection"))
    if d.get("sort"):
        cur = cur.sort(list(d["sort"].items()))
    if d.get("skip"):
        cur = cur.skip(int(d["skip"]))
    if d.get("limit"):
        cur = cur.limit(abs(int(d["limit"])))
    ns = "%s.%s" % (d.get("$db", "test"), d["find"])
    return {"cursor": {"id": 0, "ns": ns, "firstBatch": list(cur)}, "ok": 1}


def _update(req):
    coll = _coll(req, req.doc["update"])
    n = modified = 0
    upserted, errors = [], []
    for i, u in enumerate(req.doc.get("updates", [])):
        fn = coll.update_many if u.get("multi") else coll.update_one
        try:
            r = fn(u["q"], u["u"], upsert=u.get("upsert", False))
        except pymongo.errors.DuplicateKeyError as e:
            errors.append({"index": i, "code": 11000, "errmsg": str(e)})
            continue
        n += r.matched_count
        modified += r.modified_count
        if r.upserted_id is not None:
            n += 1
            upserted.append({"index": i, "_id": r.upserted_id})
    reply = {"n": n, "nModified": modified, "ok": 1}
    if upserted:
        reply["upserted"] = upserted
    if errors:
        reply["writeErrors"] = errors
    return reply


def _delete(req):
    coll = _coll(req, req.doc["delete"])
    n = 0
    for d in req.doc.get("deletes", []):
        fn = coll.delete_one if d.get("limit") == 1 else coll.delete_many
        n += fn(d["q"]).deleted_count
    return {"n": n, "ok": 1}


# Indexes as created, per "db.collection": listIndexes reports them. The
# TTL option is recorded but not handed to mongomock, which would delete
# expired documents on every read; MongoDB's TTL monitor runs about once
# a minute, so a store must check expiry itself (and this keeps it honest).
_indexes = {}


def _create_indexes(req):
    name = req.doc["createIndexes"]
    coll = _coll(req, name)
    known = _indexes.setdefault("%s.%s" % (req.doc.get("$db", "test"), name),
                                {"_id_": {"key": {"_id": 1}, "name": "_id_",
                                          "v": 2}})
    for ix in req.doc.get("indexes", []):
        opts = {k: v for k, v in ix.items()
                if k not in ("key", "v", "expireAfterSeconds")}
        coll.create_index(list(ix["key"].items()), **opts)
        known[ix["name"]] = dict(ix, v=2)
    return {"createdCollectionAutomatically": False, "ok": 1}


def _list_indexes(req):
    ns = "%s.%s" % (req.doc.get("$db", "test"), req.doc["listIndexes"])
    batch = list(_indexes.get(ns, {}).values())
    return {"cursor": {"id": 0, "ns": ns, "firstBatch": batch}, "ok": 1}


def _drop(req):
    _coll(req, req.doc["drop"]).drop()
    _indexes.pop("%s.%s" % (req.doc.get("$db", "test"), req.doc["drop"]), None)
    return {"ok": 1}


def _drop_database(req):
    db = req.doc.get("$db", "test")
    _client.drop_database(db)
    for ns in [ns for ns in _indexes if ns.startswith(db + ".")]:
        del _indexes[ns]
    return {"ok": 1}


COMMANDS = {
    "hello": lambda req: HELLO, "ismaster": lambda req: HELLO,
    "ping": lambda req: {"ok": 1},
    "buildinfo": lambda req: {"version": "5.0.0-emulator",
                              "versionArray": [5, 0, 0, 0], "ok": 1},
    "endsessions": lambda req: {"ok": 1},
    "insert": _insert, "find": _find, "update": _update, "delete": _delete,
    "createindexes": _create_indexes, "listindexes": _list_indexes,
    "drop": _drop,
    "dropdatabase": _drop_database,
}


def handle(req):
    name = (req.command_name or "").lower()
    fn = COMMANDS.get(name)
    if fn is None:
        req.command_err(code=59, errmsg="mongo_emulator: command %r is not "
                        "emulated" % req.command_name)
        return True
    try:
        with _lock:
            reply = fn(req)
    except Exception as e:  # a bug here must be visible in the test log
        traceback.print_exc()
        req.command_err(code=1, errmsg="mongo_emulator: %s" % e)
        return True
    req.reply(reply)
    return True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = mockupdb.MockupDB(port=port, auto_ismaster=False, verbose=False)
    server.autoresponds(handle)
    server.run()
    print("ready %d" % server.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
