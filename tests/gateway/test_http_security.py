"""docs/security.md, HTTP side, end to end against `lightstream serve`: web
tokens only on signed WebSocket connections, strict parameter values,
control characters and case in request lines and headers, 414 / 431,
security headers of static files, and the caps on unfinished request
bodies."""

import json
import os
import re
import socket
import time
import urllib.parse

import lstest
from gwlib import acc1_token, connect, raw_http, serve, token, url, ws_url

GEN = "/lightstream/services/auth/generatetoken"
CREDS = "publicKey=acc1&privateKey=acc1_private&roles=public"

_main = None


def main_server():
    global _main
    if _main is None:
        _main = serve({"gateway": {"trusted_proxies": ["127.0.0.1"]}}, name="serve-sec")
    return _main[1]


def head_of(answer):
    """(status, {lower-case header: value}, body) of a raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode()
    return status, hdrs, body


def raw_get(port, target, headers=b""):
    return raw_http(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers +
                    b"Connection: close\r\n\r\n")


def error_code(body):
    return json.loads(body)["errors"][0]["code"]


# ---- web tokens --------------------------------------------------------------

def test_web_token_refused_by_http_publish():
    port = main_server()
    web = token(port, "acc1", "acc1_private", ["publisher"], web=True)["value"]
    plain = acc1_token(port, roles=["publisher"])
    hdrs = {"Content-Type": "application/json"}
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "{}",
                                    dict(hdrs, Authorization="Bearer " + web))
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", (status, body)
    # the same roles in a token that is not a web token publish
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "{}",
                                    dict(hdrs, Authorization="Bearer " + plain))
    assert status == 202, body


def test_web_token_refused_by_refresh():
    port = main_server()
    ws, _ = connect(port, "acc1", acc1_token(port, roles=["public"]))  # s1: read only
    web = token(port, "acc1", "acc1_private", ["publisher"], web=True)["value"]
    ws.send(11, {"token": web})
    r = ws.recv_type(12)
    assert r["ok"] is False and r["error"]["code"] == "auth_failed", r
    # the connection did not gain the web token's write permission
    ws.send(5, {"owner": "acc1", "stream": "s1", "data": 1})
    assert ws.recv_type(10)["code"] == "forbidden"
    assert ws.expect_close() == 4003


# ---- parameter values --------------------------------------------------------

def test_unrecognised_parameter_values_are_400():
    port = main_server()
    for web in ["yes", "True", "on", "1", "", "TRUE"]:
        status, body = lstest.http_json("GET", url(port, GEN + "?" + CREDS + "&webToken=" +
                                                   urllib.parse.quote(web)))
        assert status == 400 and body["errors"][0]["code"] == "bad_request", (web, status, body)
        assert "webToken" in body["errors"][0]["message"]
    for ttl in ["1e3", "+60", " 60", "0x10", "-5", "0", "86401", "60s"]:
        status, body = lstest.http_json("GET", url(port, GEN + "?" + CREDS + "&ttl=" +
                                                   urllib.parse.quote(ttl)))
        assert status == 400 and body["errors"][0]["code"] == "bad_request", (ttl, status, body)
    status, body = lstest.http_json("POST", url(port, GEN), json.dumps(
        {"publicKey": "acc1", "privateKey": "acc1_private", "roles": "public", "webToken": "yes"}),
        {"Content-Type": "application/json"})
    assert status == 400, body
    status, body = lstest.http_json("GET", url(port, GEN + "?" + CREDS + "&type=xml"))
    assert status == 400, body
    status, body = lstest.http_json("GET", url(port, GEN + "?" + CREDS + "&roles=public"))
    assert status == 400 and "twice" in body["errors"][0]["message"], body
    # the recognised values still work
    for web, want in [("true", True), ("false", False)]:
        status, body = lstest.http_json("GET", url(port, GEN + "?" + CREDS + "&webToken=" + web))
        assert status == 200 and body["data"]["webToken"] is want, body


# ---- request lines and headers ------------------------------------------------

def test_control_characters_are_400():
    port = main_server()
    target = (GEN + "?" + CREDS).encode()
    xff = b"X-Forwarded-For: 198.51.100.7\r\n"
    # A remote client behind the proxy gets no token over plain HTTP ...
    status, _, body = head_of(raw_get(port, target, xff))
    assert status == 403, body
    # ... and a %0A or %0D in the query string must not change that.
    for bad in [b"&x=%0a", b"&x=%0A", b"&x=%0d", b"&x=%0d%0a"]:
        status, _, body = head_of(raw_get(port, target + bad, xff))
        assert status == 400 and error_code(body) == "bad_request", (bad, status, body)
        # the forwarded address right after the request line
        status, _, body = head_of(raw_http(port, b"GET " + target + bad + b" HTTP/1.1\r\n" + xff +
                                           b"Host: x\r\nConnection: close\r\n\r\n"))
        assert status == 400 and error_code(body) == "bad_request", (bad, status, body)
    bad_targets = [target + b"&x=%01", target + b"&x=%1f", target + b"&x=%7f",
                   target + b"&x=a\x01b", b"/heal%0athz", b"/heal\x01thz",
                   b"/lightstream/services/auth/generate%09token"]
    for bad in bad_targets:
        status, _, body = head_of(raw_get(port, bad))
        assert status == 400 and error_code(body) == "bad_request", (bad, status, body)
    for hdr in [b"Host: x\x01y\r\n", b"X-Forwarded-For: 1.2.3.4\x01\r\n",
                b"User-Agent: a\x7fb\r\n", b"Authorization: Bearer a%0ab\r\n",
                b"Content-Type: text/plain%00\r\n"]:
        status, _, body = head_of(raw_http(port, b"GET /healthz HTTP/1.1\r\n" + hdr +
                                           b"Connection: close\r\n\r\n"))
        assert status == 400 and error_code(body) == "bad_request", (hdr, status, body)
    # A NUL byte: lws 4.1 drops the connection without an answer.
    for bad in [target + b"&x=%00", b"/healthz?x=%00"]:
        answer = raw_get(port, bad)
        assert b" 200 " not in answer.split(b"\r\n", 1)[0], (bad, answer[:200])
    assert head_of(raw_get(port, b"/healthz"))[0] == 200


def test_control_characters_refuse_websocket_upgrades():
    port = main_server()

    def upgrade(target, extra=b""):
        return raw_http(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n", timeout=3)
    assert b" 101 " in upgrade(b"/lightstream/websocket").split(b"\r\n")[0]
    for target, extra in [(b"/lightstream/websocket", b"X-Forwarded-For: 1.2.3.4\x01\r\n"),
                          (b"/lightstream/websocket", b"User-Agent: a%0ab\r\n"),
                          (b"/lightstream/websocket?x=%01", b""),
                          (b"/lightstream/websocket?x=%0a", b"")]:
        answer = upgrade(target, extra)
        assert b" 101 " not in answer.split(b"\r\n")[0], (target, extra, answer[:100])


def test_paths_are_case_sensitive():
    port = main_server()
    for path in ["/lightstream/services/Auth/generatetoken", "/lightstream/services/auth/generateToken",
                 "/lightstream/services/AUTH/GENERATETOKEN", "/lightstream/Services/auth/generatetoken"]:
        status, body = lstest.http_json("GET", url(port, path + "?" + CREDS))
        assert status == 404 and body["errors"][0]["code"] == "not_found", (path, status, body)
    status, _ = lstest.http_json("GET", url(port, GEN + "?" + CREDS))
    assert status == 200


def test_oversized_uri_414_and_headers_431():
    port = main_server()
    status, hdrs, body = head_of(raw_get(port, b"/healthz?x=" + b"a" * 6000))
    assert status == 414 and error_code(body) == "too_large", (status, body)
    status, hdrs, body = head_of(raw_get(port, b"/healthz", b"Cookie: " + b"c" * 10000 + b"\r\n"))
    assert status == 431 and error_code(body) == "too_large", (status, body)
    status, hdrs, body = head_of(raw_get(port, b"/healthz", (b"Cookie: " + b"c" * 3000 + b"\r\n") * 4))
    assert status == 431, (status, body)
    # beyond lws's own buffer the connection is closed: never an answer
    answer = raw_get(port, b"/healthz", b"Cookie: " + b"c" * 100000 + b"\r\n")
    assert b" 200 " not in answer.split(b"\r\n", 1)[0], answer[:100]
    assert head_of(raw_get(port, b"/healthz", b"Cookie: " + b"c" * 2000 + b"\r\n"))[0] == 200


# ---- static files ------------------------------------------------------------

def test_static_security_headers():
    port = main_server()
    for path, cors in [(b"/", False), (b"/demo.js", False), (b"/lightstream.js", True)]:
        status, hdrs, _ = head_of(raw_get(port, path))
        assert status == 200, path
        assert hdrs.get("x-content-type-options") == "nosniff", (path, hdrs)
        assert hdrs.get("x-frame-options") == "DENY", hdrs
        assert hdrs.get("referrer-policy") == "no-referrer", hdrs
        csp = hdrs.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
        assert "connect-src 'self'" in csp and "object-src 'none'" in csp, csp
        assert (hdrs.get("access-control-allow-origin") == "*") == cors, (path, hdrs)
    status, hdrs, _ = head_of(raw_get(port, b"/healthz"))
    assert hdrs.get("x-content-type-options") == "nosniff"


# ---- unfinished request bodies -------------------------------------------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def metric(port, name):
    _, _, raw = lstest.http("GET", url(port, "/metrics"))
    for line in raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def partial_post(port, path, total, sent):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(total).encode() + b"\r\n\r\n" + b" " * sent)
    return s


def read_answer(s, timeout=10):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    s.close()
    return out


def test_body_over_the_per_request_limit_is_413():
    port = main_server()
    body = json.dumps({"publicKey": "acc1", "pad": "x" * 70000})
    status, b = lstest.http_json("POST", url(port, GEN), body, {"Content-Type": "application/json"})
    assert status == 413 and b["errors"][0]["code"] == "too_large", (status, b)
    # announced too large: refused without buffering
    s = partial_post(port, GEN.encode(), 10 ** 9, 0)
    s.sendall(b" " * 1000)
    s.shutdown(socket.SHUT_WR)
    answer = read_answer(s)
    assert answer == b"" or b" 200 " not in answer.split(b"\r\n")[0], answer[:100]


def test_unfinished_bodies_are_capped_in_total():
    cap = 1024 * 1024
    proc, port = serve({"gateway": {"http": {"max_buffered_bytes": cap}}}, name="serve-bodycap")
    lstest.http_json("GET", url(port, "/healthz"))
    before = rss_kib(proc.pid)
    n, each = 300, 60000
    socks = [partial_post(port, GEN.encode(), 65000, each) for _ in range(n)]
    started = time.time()
    time.sleep(1.5)  # the gateway reads what the sockets hold
    grown = rss_kib(proc.pid) - before
    # 300 x 60 KB would be 18 MB held; the cap keeps it near 1 MiB (plus
    # lws's per-request head buffers). Under AddressSanitizer every
    # allocation carries redzones and freed memory stays in quarantine, so
    # the bound is looser there; the refusals counted below hold for both.
    sanitized = "ASAN_OPTIONS" in os.environ
    assert grown < (24 if sanitized else 9) * 1024, grown
    lstest.wait_for(lambda: metric(port, "lightstream_http_overload_total") >= n - cap // 65536 - 2,
                    what="bodies refused over the cap")
    # a refused request, once complete, is told to retry later
    s = socks.pop()
    s.sendall(b" " * (65000 - each))
    status, hdrs, body = head_of(read_answer(s))
    assert status in (503, 400), (status, body)  # 400: it was one of the buffered ones
    refused = 0
    for s in socks[-20:]:
        s.sendall(b" " * (65000 - each))
        status, hdrs, body = head_of(read_answer(s))
        if status == 503:
            refused += 1
            assert error_code(body) == "unavailable" and hdrs.get("retry-after") == "1", hdrs
    # Under ASan, or on a loaded machine, the sockets may have been silent
    # past the 5 s a body may pause (docs/configuration.md,
    # gateway.http.request_timeout_ms) before this loop reaches them:
    # closed, not answered. The refusals counted by the metric above are
    # the check that holds then.
    assert refused > 0 or sanitized or time.time() - started > 4, refused
    for s in socks[:-20]:
        s.close()
    # room again once they are gone
    lstest.wait_for(lambda: lstest.http_json("POST", url(port, GEN), json.dumps(
        {"publicKey": "acc1", "privateKey": "acc1_private", "roles": "public"}),
        {"Content-Type": "application/json"})[0] == 200, what="bodies accepted again")
    assert proc.stop() == 0


def test_stalled_request_heads_are_closed():
    """A request head that stops half-way (or trickles) is closed by lws's
    timeout: the gateway wakes lws to check it, or a quiet gateway would
    hold such connections until something else happened."""
    port = main_server()
    stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
    stalled.sendall(b"GET /heal")
    kept = socket.create_connection(("127.0.0.1", port), timeout=30)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    # The whole answer, head and body (they may come in two reads), so
    # that what is read below can only be an answer to the half request.
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += kept.recv(65536)
    head, body = answer.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += kept.recv(65536)
    assert b" 200 " in head
    kept.sendall(b"GET /heal")  # the next request on a kept-alive connection
    start = time.time()
    for s in (stalled, kept):
        s.settimeout(max(0.1, 15 - (time.time() - start)))
        assert s.recv(100) == b"", "answered a half request"
        s.close()
    assert time.time() - start < 15, time.time() - start


def test_slow_body_is_cut_at_the_request_timeout():
    proc, port = serve({"gateway": {"http": {"request_timeout_ms": 1000}}}, name="serve-slow")
    s = partial_post(port, GEN.encode(), 100, 1)
    start = time.time()
    closed = False
    while time.time() - start < 8:
        try:
            s.sendall(b" ")
            s.settimeout(0.4)
            if s.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    assert closed and time.time() - start < 4, time.time() - start
    assert proc.stop() == 0


lstest.main(globals())
