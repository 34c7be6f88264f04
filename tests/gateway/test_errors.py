"""Typed errors across the bus, end to end (docs/protocol.md "Error codes",
docs/bus.md "Errors"): the code a client sees is the code of the failure
that happened — a store that is locked or failing is `unavailable`
(WebSocket 1013, HTTP 503), never `auth_failed`/4001, and no store error
text reaches a client."""

import fcntl
import os
import threading
import urllib.parse

import lstest
from gwlib import ACC1, acc1_token, serve, url, ws_url

GEN = "/lightstream/services/auth/generatetoken"

# Words of SQLite and store error texts that must stay in the server log.
LEAKS = ("sqlite", "store", "locking", "protocol", "lightstream.db", "data-")


def gen_url(port, **q):
    return url(port, GEN + "?" + urllib.parse.urlencode(q))


def lock_sqlite_shm(data_dir):
    """Hold every WAL lock of the SQLite store of a running server, as a
    stuck process sharing the database would: readers and writers of the
    server fail (after SQLite's own retries) with a locking error.
    Returns the descriptor; closing it releases the locks."""
    fd = os.open(os.path.join(data_dir, "lightstream.db-shm"), os.O_RDWR)
    # The unix VFS locks bytes 120..127 of the -shm file: write,
    # checkpoint, recover and the five read marks (sqlite3 os_unix.c,
    # UNIX_SHM_BASE). The dead-man switch at 128 is left alone.
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120, os.SEEK_SET)
    return fd


def no_leak(text):
    low = text.lower()
    return not any(w in low for w in LEAKS)


def test_error_codes_of_refusals_travel_over_the_bus():
    # Before the bus carried codes, the gateway guessed them from message
    # prefixes: "ttl: ..." became code "ttl", "roles: ..." code "roles".
    proc, port = serve()
    for q in ({"ttl": "0"}, {"ttl": "86401"}, {"roles": ""},
              {"roles": "nosuchrole"}):
        args = {"publicKey": ACC1[0], "privateKey": ACC1[1],
                "roles": "public"}
        args.update(q)
        status, body = lstest.http_json("GET", gen_url(port, **args))
        assert status == 400, (q, status, body)
        assert body["errors"][0]["code"] == "bad_request", (q, body)
    status, body = lstest.http_json("GET", gen_url(
        port, publicKey=ACC1[0], privateKey="wrong", roles="public"))
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", body
    # A refused token on WebSocket: AuthResponse auth_failed, close 4001.
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": "A" * 43})
    m = ws.recv_type(2)
    assert m["ok"] is False and m["error"]["code"] == "auth_failed", m
    assert ws.expect_close() == 4001
    assert proc.stop() == 0


def test_concurrent_refusals_each_get_an_answer():
    proc, port = serve()
    results = []

    def one():
        try:
            results.append(lstest.http_json("GET", gen_url(
                port, publicKey=ACC1[0], privateKey=ACC1[1],
                roles="public", ttl="0"))[0])
        except Exception as e:  # a connection closed without answer
            results.append(repr(e))

    for _ in range(5):
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert results == [400] * 20, results
    assert proc.stop() == 0


def test_locked_store_is_unavailable_not_auth_failed():
    # The bus deadline is longer than SQLite's retries, so the failure
    # the client sees is the store's own, carried by the bus.
    proc, port = serve(config={"bus": {"timeout_ms": 30000},
                               "gateway": {"auth_timeout_ms": 30000}})
    data = [a for a in proc.argv if "/data-" in a][0]
    tok = acc1_token(port)
    fd = lock_sqlite_shm(data)
    results = {}

    def ws_auth():
        ws = lstest.WS(ws_url(port), timeout=40)
        ws.send(1, {"appKey": "acc1", "token": tok})
        results["ws"] = (ws.recv(timeout=40), ws.expect_close(timeout=40))

    def http_token():
        results["http"] = lstest.http_json("GET", gen_url(
            port, publicKey=ACC1[0], privateKey=ACC1[1], roles="public"),
            timeout=40)

    def http_token2():
        # A second request failing at the same moment gets its own
        # answer too (lws once dropped it at its content timeout).
        results["http2"] = lstest.http_json("GET", gen_url(
            port, publicKey=ACC1[0], privateKey=ACC1[1], roles="public"),
            timeout=40)

    def run(fn):
        try:
            fn()
        except Exception as e:  # reported below, by the main thread
            results[fn.__name__ + " failed"] = repr(e)

    threads = [threading.Thread(target=run, args=(f,))
               for f in (ws_auth, http_token, http_token2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        os.close(fd)
    assert all(k in results for k in ("ws", "http", "http2")), results
    msg, close = results["ws"]
    # Error unavailable, then 1013 "try again later": clients retry.
    assert msg["t"] == 10 and msg["m"]["code"] == "unavailable", msg
    assert close == 1013, close
    assert no_leak(msg["m"]["message"]), msg
    status, body = results["http"]
    assert status == 503, (status, body)
    assert body["errors"][0]["code"] == "unavailable", body
    assert no_leak(body["errors"][0]["message"]), body
    assert results["http2"] == results["http"], results
    # The store's text is in the server's log instead.
    assert "locking protocol" in proc.log_text(), proc.log_tail()
    # Once the store is back, the same token authenticates.
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is True
    ws.close()
    assert proc.stop() == 0


lstest.main(globals())
