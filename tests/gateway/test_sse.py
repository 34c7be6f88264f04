"""docs/protocol.md "Server-Sent Events" end to end against `lightstream
serve`, with a raw HTTP client on a socket: the stream's head and events,
filtered delivery, errors before the stream (HTTP statuses) and on it
(event: error, then the end of the response), token expiry, revocation and
withdrawn permissions, a slow reader closed without delaying others,
keep-alive comments, CORS, and no token in the log."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.parse

import lstest
from gwlib import ACC1, acc1_token, connect, serve, subscribe, token

_main = None


def main_server():
    """serve on a free port (keep-alive every second); `lightstream admin
    --data DIR` reaches its bus; returns (proc, port, DIR)."""
    global _main
    if _main is None:
        proc, port = serve(config={"log": {"level": "debug"},
                                   "gateway": {"ping_interval_s": 1,
                                               "origins": ["http://allowed.example"]}})
        _main = (proc, port, os.path.join(lstest.tmpdir(), "data-%d" % port))
    return _main


def admin(data, *args):
    r = lstest.run("admin", "--data", data, *args)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def reset_fixture(front):
    admin(front, "import", lstest.FIXTURE)


class SSE:
    """A minimal Server-Sent Events reader on a plain socket."""

    def __init__(self, port, path, params=None, headers=None, timeout=5.0,
                 rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        if params:
            path += "?" + urllib.parse.urlencode(params)
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n" % (
            path, port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        self.eof = False
        self.comments = 0

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def head(self, timeout=5.0):
        """(status, {header: value}) of the answer."""
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            assert not self.eof, self.buf
            self._fill(max(0.01, deadline - time.time()))
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        return status, headers

    def body(self, timeout=5.0, length=None):
        """The rest of the answer: length bytes, or until the server
        closes."""
        deadline = time.time() + timeout
        while not self.eof and (length is None or len(self.buf) < length):
            self._fill(max(0.01, deadline - time.time()))
        return self.buf

    def event(self, timeout=5.0):
        """The next event as (name, data as JSON, id or None); None at the
        end of the response."""
        deadline = time.time() + timeout
        while True:
            while b"\n\n" not in self.buf:
                if self.eof:
                    assert self.buf == b"", self.buf
                    return None
                left = deadline - time.time()
                if left <= 0:
                    raise socket.timeout("no event within %.1f s" % timeout)
                self._fill(left)
            raw, _, self.buf = self.buf.partition(b"\n\n")
            name, data, eid = "message", [], None
            for line in raw.decode().split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                k, _, v = line.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "event":
                    name = v
                elif k == "data":
                    data.append(v)
                elif k == "id":
                    eid = v
            if data:
                return name, json.loads("\n".join(data)), eid

    def expect(self, name, timeout=5.0):
        ev = self.event(timeout)
        assert ev is not None and ev[0] == name, (name, ev)
        return ev[1]

    def expect_end(self, timeout=5.0):
        assert self.event(timeout) is None

    def close(self):
        self.sock.close()


def sse_path(owner, stream):
    return "/lightstream/sse/%s/%s" % (owner, stream)


def open_stream(port, tok, owner="acc1", stream="s1", query=None, **kw):
    params = {"appKey": "acc1", "token": tok}
    if query is not None:
        params["query"] = json.dumps(query)
    s = SSE(port, sse_path(owner, stream), params, **kw)
    status, headers = s.head()
    assert status == 200, (status, headers, s.body())
    sub = s.expect("subscribed")
    assert sub["ok"] is True and sub["subscriptionId"], sub
    return s, headers


def publish(port, tok, stream, data):
    status, _, body = lstest.http(
        "POST", "http://127.0.0.1:%d/lightstream/publish/acc1/%s" % (port, stream),
        body=data if isinstance(data, bytes) else json.dumps(data).encode(),
        headers={"Authorization": "Bearer " + tok})
    assert status == 202, (status, body)


def error_answer(port, path, params=None, headers=None, method="GET"):
    """(status, headers, code) of an answer refused before streaming."""
    s = SSE(port, path, params, headers)
    if method != "GET":
        s.sock.close()
        url = "http://127.0.0.1:%d%s?%s" % (port, path, urllib.parse.urlencode(params or {}))
        status, hdrs, body = lstest.http(method, url, headers=headers)
        return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(body)["errors"][0]["code"]
    status, hdrs = s.head()
    body = json.loads(s.body(length=int(hdrs["content-length"])))
    s.close()
    assert body["data"] is None, body
    return status, hdrs, body["errors"][0]["code"]


def metric(port, name):
    _, _, raw = lstest.http("GET", "http://127.0.0.1:%d/metrics" % port)
    m = re.search(r"^lightstream_%s (\S+)$" % name, raw.decode(), re.M)
    assert m, name
    return float(m.group(1))


# ---- tests -----------------------------------------------------------------


def test_stream_head_and_filtered_delivery():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    plain, headers = open_stream(port, tok)
    assert headers["content-type"] == "text/event-stream", headers
    assert headers["cache-control"] == "no-cache", headers
    assert headers["x-accel-buffering"] == "no", headers
    assert "content-length" not in headers, headers
    lisbon = {"where": {"and": [{"field": "city", "op": "equals", "value": "Lisboa"},
                                {"field": "temperature", "op": "less", "value": 15}]}}
    filtered, _ = open_stream(port, tok, query=lisbon)
    # the Bearer header works as well as the parameter
    bearer = SSE(port, sse_path("acc1", "s1"), {"appKey": "acc1"},
                 headers={"Authorization": "Bearer " + tok})
    assert bearer.head()[0] == 200
    bearer.expect("subscribed")
    # a WebSocket subscriber of the same stream sees the same messages
    ws, _ = connect(port, "acc1", tok)
    subscribe(ws, "acc1", "s1")
    msgs = [{"city": "Porto", "temperature": 10},
            {"city": "Lisboa", "temperature": 20},
            {"city": "Lisboa", "temperature": 12}]
    for m in msgs:
        publish(port, tok, "s1", m)
    # a JSON body with raw line breaks, and text
    publish(port, tok, "s1", b'{"city":\n"Lisboa",\r\n"temperature": 3}')
    publish(port, tok, "s1", b"plain text")
    expected = msgs + [{"city": "Lisboa", "temperature": 3}, "plain text"]
    for s in (plain, bearer):
        got = [s.expect("data") for _ in expected]
        assert [g["data"] for g in got] == expected, got
        assert all(g["owner"] == "acc1" and g["stream"] == "s1" and g["sub"] for g in got), got
    got = [filtered.expect("data")["data"] for _ in range(2)]
    assert got == [{"city": "Lisboa", "temperature": 12},
                   {"city": "Lisboa", "temperature": 3}], got
    assert [ws.recv_type(5)["data"] for _ in expected] == expected
    lstest.wait_for(lambda: metric(port, "sse_connections") == 3, what="3 SSE streams counted")
    for s in (plain, filtered, bearer):
        s.close()
    ws.close()
    lstest.wait_for(lambda: metric(port, "sse_connections") == 0, what="none left")


def test_errors_before_the_stream_are_http_answers():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    p = sse_path("acc1", "s1")
    cases = [
        (p, {"appKey": "acc1", "token": "x" * 43}, None, 401, "auth_failed"),
        (p, {"appKey": "acc1"}, None, 401, "auth_failed"),
        (p, {"appKey": "acc1"}, {"Authorization": "Basic abc"}, 401, "auth_failed"),
        (p, {"appKey": "acc1", "token": tok}, {"Authorization": "Bearer other"}, 400,
         "bad_request"),
        (sse_path("acc1", "nope"), {"appKey": "acc1", "token": tok}, None, 403, "forbidden"),
        (sse_path("svc1", "weather"), {"appKey": "acc1", "token": acc1_token(
            port, roles=("public",))}, None, 403, "forbidden"),
        (p, {"appKey": "acc1", "token": tok, "query": "{"}, None, 400, "invalid_query"),
        (p, {"appKey": "acc1", "token": tok,
             "query": json.dumps({"where": {"field": "a", "op": "lt", "value": 1}})},
         None, 400, "invalid_query"),
        (p, {"appKey": "acc1", "token": tok, "lastEventId": "no-colon"}, None, 400,
         "bad_request"),
        (p, {"appKey": "acc1", "token": tok}, {"Last-Event-ID": "e:x"}, 400, "bad_request"),
        (p, {"appKey": "bad key!", "token": tok}, None, 400, "bad_request"),
        ("/lightstream/sse/acc1", {"token": tok}, None, 404, "not_found"),
        ("/lightstream/sse/acc1/s1/x", {"token": tok}, None, 404, "not_found"),
    ]
    for path, params, headers, status, code in cases:
        got = error_answer(port, path, params, headers)
        assert got[0] == status and got[2] == code, (path, params, headers, got)
        assert got[1]["content-type"] == "application/json", got
    # a web token has no signature here
    web = token(port, "acc1", ACC1[1], ["public"], web=True)["value"]
    got = error_answer(port, p, {"appKey": "acc1", "token": web})
    assert got[0] == 401 and got[2] == "auth_failed", got
    # POST is not a subscription
    got = error_answer(port, p, {"appKey": "acc1", "token": tok}, method="POST")
    assert got[0] == 405, got
    # HEAD: what a GET would answer, without subscribing
    for params, status in (({"appKey": "acc1", "token": tok}, 200),
                           ({"appKey": "acc1", "token": "x" * 43}, 401)):
        st, hdrs, body = lstest.http(
            "HEAD", "http://127.0.0.1:%d%s?%s" % (port, p, urllib.parse.urlencode(params)))
        assert st == status and body == b"", (st, hdrs, body)
    lstest.wait_for(lambda: metric(port, "sse_connections") == 0, what="no stream left")


def test_cors_follows_the_origin_allow_list():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    s, headers = open_stream(port, tok, headers={"Origin": "http://allowed.example"})
    assert headers["access-control-allow-origin"] == "http://allowed.example", headers
    assert headers["vary"] == "Origin", headers
    s.close()
    # no Origin (not a browser): no CORS header, allowed
    s, headers = open_stream(port, tok)
    assert "access-control-allow-origin" not in headers, headers
    s.close()
    got = error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok},
                       {"Origin": "http://evil.example"})
    assert got[0] == 403 and got[2] == "forbidden", got
    assert "access-control-allow-origin" not in got[1], got
    # an error for an allowed origin is readable by its page
    got = error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": "bad"},
                       {"Origin": "http://allowed.example"})
    assert got[0] == 401 and got[1]["access-control-allow-origin"] == "http://allowed.example"


def test_keepalive_comments():
    _, port, front = main_server()
    reset_fixture(front)
    s, _ = open_stream(port, acc1_token(port))
    # ping_interval_s is 1: comment lines, and the stream stays open past
    # the 2.5 intervals after which a silent WebSocket peer is dropped
    deadline = time.time() + 4
    while time.time() < deadline:
        try:
            s.event(timeout=deadline - time.time())
        except socket.timeout:
            break
    assert s.comments >= 2, s.comments
    assert not s.eof
    assert b": keep-alive" not in s.buf
    s.close()


def test_token_expiry_ends_the_stream():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port, ttl=2)
    s, _ = open_stream(port, tok)
    t0 = time.time()
    err = s.expect("error", timeout=5)
    assert err["code"] == "token_expired", err
    assert set(err) == {"code", "message"}, err
    s.expect_end()
    assert time.time() - t0 < 4


def test_revocation_ends_the_stream_within_1s():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    other = acc1_token(port)
    s, _ = open_stream(port, tok)
    keep, _ = open_stream(port, other)
    t0 = time.time()
    admin(front, "token", "revoke", "acc1", "--private-key", ACC1[1], "--", tok)
    err = s.expect("error", timeout=2)
    assert err["code"] == "token_revoked", err
    s.expect_end()
    assert time.time() - t0 <= 1.5
    # another token's stream goes on
    publish(port, other, "s1", "still here")
    assert keep.expect("data")["data"] == "still here"
    keep.close()
    # and the revoked token opens no stream
    got = error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok})
    assert got[0] == 401, got


def test_withdrawn_permission_ends_the_stream():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port, roles=("public",))
    s1, _ = open_stream(port, tok, stream="s1")
    s2, _ = open_stream(port, tok, stream="s2")
    # role "public" loses s1 and keeps s2
    admin(front, "role", "set", "acc1", "public",
          json.dumps([{"owner": "acc1", "stream": "s2", "permission": 3}]))
    err = s1.expect("error", timeout=2)
    assert err["code"] == "forbidden" and "acc1:s1" in err["message"], err
    s1.expect_end()
    publish(port, tok, "s2", "two")
    assert s2.expect("data")["data"] == "two"
    s2.close()


def test_query_over_budget_ends_the_stream():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    costly = {"where": {"or": [{"field": "s", "op": "match",
                                "value": "(?:\\w+)+\\d%d" % i} for i in range(60)]}}
    s, _ = open_stream(port, tok, query=costly)
    plain, _ = open_stream(port, tok)
    big = {"s": "a" * 60000}
    publish(port, tok, "s1", big)
    err = s.expect("error", timeout=10)
    assert err["code"] == "query_too_costly", err
    s.expect_end()
    assert plain.expect("data", timeout=10)["data"] == big
    plain.close()


def test_slow_reader_closed_others_unaffected():
    proc, port = serve(config={"gateway": {"queue_limit_bytes": 65536}}, name="slow")
    tok = acc1_token(port)
    slow, _ = open_stream(port, tok, rcvbuf=4096)
    fast, _ = open_stream(port, tok)
    ws, _ = connect(port, "acc1", tok)
    subscribe(ws, "acc1", "s1")
    # the kernel's buffers take megabytes before the queue fills
    blob = "x" * 30000
    n = 0
    while metric(port, "slow_consumers_total") == 0:
        assert n < 1000, "the slow reader was never closed"
        for i in range(n, n + 20):
            publish(port, tok, "s1", {"i": i, "blob": blob})
            assert fast.expect("data")["data"]["i"] == i
            assert ws.recv_type(5)["data"]["i"] == i
        n += 20
    # the slow reader reads now: what was sent, then slow_consumer, then
    # the end of the response
    got = []
    while True:
        ev = slow.event(timeout=10)
        assert ev is not None, got
        if ev[0] == "error":
            assert ev[1]["code"] == "slow_consumer", ev
            break
        got.append(ev[1]["data"]["i"])
    assert got == list(range(len(got))) and len(got) < n, got
    slow.expect_end()
    assert metric(port, "slow_consumers_total") == 1
    # the others still receive
    publish(port, tok, "s1", {"i": n})
    assert fast.expect("data")["data"]["i"] == n
    assert ws.recv_type(5)["data"]["i"] == n
    fast.close()
    ws.close()
    proc.stop()


def test_shutdown_ends_the_stream():
    proc, port = serve(name="shutdown")
    s, _ = open_stream(port, acc1_token(port))
    proc.signal(15)
    s.expect_end(timeout=5)
    assert proc.wait(timeout=10) == 0


def test_no_token_in_the_log():
    proc, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    s, _ = open_stream(port, tok)
    s.close()
    bad = "B" * 43
    error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": bad})
    error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok, "query": "{"})
    error_answer(port, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok},
                 {"Origin": "http://evil.example"})
    time.sleep(0.3)
    log = proc.log_text()
    assert "SSE" in log  # the debug log did speak of these streams
    assert tok not in log and bad not in log
    # and a stream is no error for libwebsockets (lws_http_mark_sse's
    # h2-only step would log one on every HTTP/1.1 stream)
    assert not re.search(r"\berror\s+lws:", log), log


def test_bytes_sent_behind_the_request_do_not_disturb_the_stream():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    s, _ = open_stream(port, tok)
    s.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    publish(port, tok, "s1", "after a pipelined request")
    assert s.expect("data")["data"] == "after a pipelined request"
    s.sock.sendall(b"x" * 1000000)
    publish(port, tok, "s1", "after junk")
    assert s.expect("data")["data"] == "after junk"
    s.close()
    assert lstest.http("GET", "http://127.0.0.1:%d/healthz" % port)[0] == 200


def test_last_event_id_recovers_what_was_missed():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    s = SSE(port, sse_path("acc1", "s2"), {"appKey": "acc1", "token": tok})
    assert s.head()[0] == 200
    first = s.expect("subscribed")
    assert first["epoch"] and "recovered" not in first, first
    publish(port, tok, "s2", {"n": 1})
    publish(port, tok, "s2", {"n": 2})
    got = [s.event() for _ in range(2)]
    assert [g[1]["data"] for g in got] == [{"n": 1}, {"n": 2}], got
    epoch = first["epoch"]
    for name, data, eid in got:
        assert eid == "%s:%d" % (epoch, data["offset"]), (eid, data)
    last = got[-1][2]
    s.close()
    for n in (3, 4, 5):
        publish(port, tok, "s2", {"n": n, "odd": n % 2 == 1})
    # the header, as EventSource sends it: every missed message, in order
    s = SSE(port, sse_path("acc1", "s2"), {"appKey": "acc1", "token": tok},
            headers={"Last-Event-ID": last})
    assert s.head()[0] == 200
    sub = s.expect("subscribed")
    assert sub["recovered"] is True and sub["epoch"] == epoch, sub
    got = [s.event() for _ in range(3)]
    assert [g[1]["data"]["n"] for g in got] == [3, 4, 5], got
    publish(port, tok, "s2", {"n": 6})
    assert s.expect("data")["data"] == {"n": 6}
    s.close()
    # the parameter, with a query: only the matching missed messages
    q = json.dumps({"where": {"field": "odd", "op": "equals", "value": True}})
    s = SSE(port, sse_path("acc1", "s2"), {"appKey": "acc1", "token": tok, "query": q,
                                            "lastEventId": last})
    assert s.head()[0] == 200
    assert s.expect("subscribed")["recovered"] is True
    assert [s.expect("data")["data"]["n"] for _ in range(2)] == [3, 5]
    s.close()
    # another epoch (history lost meanwhile): not recovered, live only
    s = SSE(port, sse_path("acc1", "s2"), {"appKey": "acc1", "token": tok},
            headers={"Last-Event-ID": "other-epoch:2"})
    assert s.head()[0] == 200
    assert s.expect("subscribed")["recovered"] is False
    publish(port, tok, "s2", {"n": 7})
    assert s.expect("data")["data"] == {"n": 7}
    s.close()


def test_recovery_after_a_server_restart():
    """History on Redis outlives the gateway: Last-Event-ID after a
    restart recovers what was published while the stream was away. The
    local fabric's history does not: a new epoch says so."""
    _, rport = lstest.redis_server()
    sport = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "recover-%d" % sport)
    os.makedirs(data)
    argv = ["serve", "--listen", "127.0.0.1:%d" % sport, "--data", data,
            "--redis", "redis://127.0.0.1:%d" % rport]
    srv = lstest.lightstream(*(argv + ["--fixture", lstest.FIXTURE]), name="recover",
                             wait_tcp=sport)
    tok = acc1_token(sport)
    s, _ = open_stream(sport, tok)
    publish(sport, tok, "s1", "one")
    name, ev, last = s.event()
    assert ev["data"] == "one" and last, (name, ev, last)
    srv.stop()
    s.expect_end()
    srv = lstest.lightstream(*argv, name="recover2", wait_tcp=sport)
    publish(sport, tok, "s1", "two")
    publish(sport, tok, "s1", "three")
    s = SSE(sport, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok},
            headers={"Last-Event-ID": last})
    assert s.head()[0] == 200
    assert s.expect("subscribed")["recovered"] is True
    assert [s.expect("data")["data"] for _ in range(2)] == ["two", "three"]
    s.close()
    srv.stop()
    # the local fabric: history restarts with the process
    argv = argv[:-2]
    srv = lstest.lightstream(*(argv + ["--fixture", lstest.FIXTURE]), name="local",
                             wait_tcp=sport)
    tok = acc1_token(sport)
    s, _ = open_stream(sport, tok)
    publish(sport, tok, "s1", "one")
    last = s.event()[2]
    s.close()
    srv.stop()
    srv = lstest.lightstream(*argv, name="local2", wait_tcp=sport)
    s = SSE(sport, sse_path("acc1", "s1"), {"appKey": "acc1", "token": tok},
            headers={"Last-Event-ID": last})
    assert s.head()[0] == 200
    sub = s.expect("subscribed")
    assert sub["recovered"] is False and sub["epoch"] != last.split(":")[0], sub
    s.close()
    srv.stop()


def sub_sse(port, tok, *args):
    """`lightstream sub --sse` in the background (stdout, stderr piped)."""
    return lstest.track(subprocess.Popen(
        [lstest.LIGHTSTREAM, "sub", "--sse", "-u", "http://127.0.0.1:%d" % port,
         "-a", "acc1", "-t", tok] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))


def wait_subscribed(proc, what="subscribed to"):
    line = proc.stderr.readline()
    assert what in line, line


def test_cli_sub_over_sse():
    _, port, front = main_server()
    reset_fixture(front)
    tok = acc1_token(port)
    p = sub_sse(port, tok, "-n", "2", "-q",
                json.dumps({"where": {"field": "a", "op": "greater", "value": 1}}), "acc1/s1")
    wait_subscribed(p)
    for i in (1, 2, 3):
        publish(port, tok, "s1", {"a": i})
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, (out, err)
    assert out.splitlines() == ['{"a":2}', '{"a":3}'], out
    # refusals: the code's words and the exit status of the WebSocket sub
    for args, status, words in [
            (("-t", "B" * 43), 1, "authentication failed"),
            (("-q", "{"), 2, "invalid query"),
            ((), 1, "forbidden")]:
        target = "acc1/nope" if words == "forbidden" else "acc1/s1"
        r = lstest.run("sub", "--sse", "-u", "ws://127.0.0.1:%d" % port, "-a", "acc1",
                       "-t", tok, *args, target)
        assert r.returncode == status and words in r.stderr, (args, r.returncode, r.stderr)
    # the token never travels in the URL: not in the log either
    assert tok not in main_server()[0].log_text()


def test_cli_sub_sse_reads_a_chunked_stream():
    """A proxy may re-frame the stream with chunked transfer coding: sub
    --sse reads it, whatever the chunk boundaries; the token travels in the
    Authorization header, never in the request line."""
    import threading
    events = (b'event: subscribed\ndata: {"requestId":null,"ok":true,"subscriptionId":"s1"}\n\n'
              b': keep-alive\n\n'
              b'event: data\r\ndata: {"owner":"acc1","stream":"s1","sub":"s1","data":{"n":1}}\r\n'
              b'id: e1:1\r\n\r\n'
              b'event: data\ndata: {"owner":"acc1","stream":"s1","sub":"s1","data":"two"}\n\n')
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    seen = {}

    def serve_once():
        conn, _ = srv.accept()
        req = b""
        while b"\r\n\r\n" not in req:
            req += conn.recv(4096)
        seen["request"] = req.decode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        i, size = 0, 1
        while i < len(events):
            chunk = events[i:i + size]
            conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            time.sleep(0.002)
            i += size
            size = size % 7 + 1
        conn.sendall(b"0\r\n\r\n")
        time.sleep(0.5)
        conn.close()

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    r = lstest.run("sub", "--sse", "--no-reconnect", "-u",
                   "http://127.0.0.1:%d" % srv.getsockname()[1], "-a", "acc1",
                   "-t", "T" * 43, "-n", "2", "acc1/s1", timeout=20)
    t.join(5)
    srv.close()
    assert r.returncode == 0 and r.stdout.splitlines() == ['{"n":1}', '"two"'], (r.stdout, r.stderr)
    line = seen["request"].split("\r\n")[0]
    assert line.startswith("GET /lightstream/sse/acc1/s1?appKey=acc1 "), line
    assert "T" * 43 not in line and "Authorization: Bearer " + "T" * 43 in seen["request"]


def test_cli_sub_sse_over_tls():
    certdir = os.path.join(lstest.tmpdir(), "sse-tls")
    script = os.path.join(lstest.SOURCE_ROOT, "deploy", "tls", "make-dev-cert.sh")
    out = subprocess.run([script, certdir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    tls_port = lstest.free_port()
    proc, port = serve(args=["--tls-listen", "127.0.0.1:%d" % tls_port, "--tls-cert", cert,
                             "--tls-key", key], name="serve-sse-tls")
    lstest.wait_port(tls_port)
    tok = acc1_token(port)
    for host in ("127.0.0.1", "localhost"):
        p = subprocess.Popen(
            [lstest.LIGHTSTREAM, "sub", "--sse", "-u", "https://%s:%d" % (host, tls_port),
             "--ca-file", cert, "-a", "acc1", "-t", tok, "-n", "1", "acc1/s1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_subscribed(p)
        publish(port, tok, "s1", {"over": host})
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0 and out == '{"over":"%s"}\n' % host, (out, err)
    # a certificate it cannot verify is refused
    r = lstest.run("sub", "--sse", "--no-reconnect", "-u", "https://127.0.0.1:%d" % tls_port,
                   "-a", "acc1", "-t", tok, "acc1/s1")
    assert r.returncode == 1 and "TLS" in r.stderr, r.stderr
    proc.stop()


def test_cli_sub_sse_ends_on_expiry_and_reconnects_after_restart():
    _, port, front = main_server()
    reset_fixture(front)
    p = sub_sse(port, acc1_token(port, ttl=2), "acc1/s1")
    wait_subscribed(p)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 1 and "token expired" in err, (p.returncode, err)
    # a server restart: sub reconnects and goes on
    sport = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "restart-%d" % sport)
    os.makedirs(data)
    argv = ["serve", "--listen", "127.0.0.1:%d" % sport, "--data", data,
            "--fixture", lstest.FIXTURE]
    srv = lstest.lightstream(*argv, name="restart", wait_tcp=sport)
    tok = acc1_token(sport)
    p = sub_sse(sport, tok, "-n", "2", "acc1/s1")
    wait_subscribed(p)
    publish(sport, tok, "s1", "before")
    srv.stop()
    # the same data: the token is still valid (a fixture would reset it)
    srv = lstest.lightstream(*argv[:-2], name="restart2", wait_tcp=sport)
    line = p.stderr.readline()
    assert "reconnecting" in line, line
    deadline = time.time() + 10
    while "subscribed to" not in line:
        assert time.time() < deadline
        line = p.stderr.readline()
    publish(sport, tok, "s1", "after")
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0 and out.splitlines() == ['"before"', '"after"'], (out, err)
    srv.stop()


if __name__ == "__main__":
    lstest.main(globals())
