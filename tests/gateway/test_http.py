"""docs/protocol.md (HTTP) end to end against `lightstream serve`: token issue (GET, POST
form and JSON, JSONP, loopback rule), the service bridge allow-list,
backend publish, health, readiness, metrics, static files and the Origin
allow-list."""

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request

import lstest
from gwlib import (acc1_token, connect, raw_http, serve, subscribe, tls_ws, token,
                   url, ws_url)

_main = None


def ctype(headers):
    """The Content-Type of an answer, whatever the case of its name."""
    return {k.lower(): v for k, v in headers.items()}.get("content-type", "")


def main_server():
    global _main
    if _main is None:
        _main = serve()
    return _main[1]


GEN = "/lightstream/services/auth/generatetoken"


def test_generatetoken_get():
    port = main_server()
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=acc1_private"
                                                "&roles=public%7Cpublisher&ttl=120"))
    assert status == 200, body
    d = body["data"]
    assert body["errors"] == []
    assert len(d["value"]) == 43 and d["expiresAt"].endswith("Z")
    assert d["roles"] == ["public", "publisher"] and d["webToken"] is False


def test_generatetoken_post_form_and_json():
    port = main_server()
    form = urllib.parse.urlencode({"publicKey": "acc1", "privateKey": "acc1_private",
                                   "roles": "public", "webToken": "true",
                                   "ipAddress": "10.0.0.1"})
    status, body = lstest.http_json("POST", url(port, GEN), form,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert body["data"]["webToken"] is True and body["data"]["ipAddress"] == "10.0.0.1"
    status, body = lstest.http_json("POST", url(port, GEN), json.dumps(
        {"publicKey": "svc1", "privateKey": "svc1_private", "roles": "publisher"}),
        {"Content-Type": "application/json"})
    assert status == 200, body
    assert body["data"]["roles"] == ["publisher"]


def test_generatetoken_failures():
    port = main_server()
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=wrong&roles=public"))
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", (status, body)
    assert body["data"] is None
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&roles=public"))
    assert status == 400 and body["errors"][0]["code"] == "bad_request", body
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=acc1_private&roles=nosuch"))
    assert status == 400, body
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=acc1_private"
                                                "&roles=public&ttl=abc"))
    assert status == 400, body
    status, body = lstest.http_json("POST", url(port, GEN), "{broken",
                                    {"Content-Type": "application/json"})
    assert status == 400, body


def test_jsonp():
    port = main_server()
    status, hdrs, raw = lstest.http("GET", url(port, GEN + "?publicKey=acc1&privateKey=acc1_private"
                                               "&roles=public&callback=cb.x_1$"))
    assert status == 200
    assert ctype(hdrs).startswith("application/javascript")
    text = raw.decode()
    assert text.startswith("cb.x_1$(") and text.endswith(");"), text
    assert len(json.loads(text[len("cb.x_1$("):-2])["data"]["value"]) == 43
    for bad in ["1abc", "a-b", "alert(1)", "x" * 65, ""]:
        status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=acc1_private"
                                                    "&roles=public&callback=" + urllib.parse.quote(bad)))
        assert status == 400 and body["errors"][0]["code"] == "bad_request", (bad, status, body)


def test_generatetoken_loopback_only_over_plain_http():
    # A trusted proxy forwarding a remote client: the client is not loopback.
    proc, port = serve({"gateway": {"trusted_proxies": ["127.0.0.1"]}}, name="serve-proxy")
    path = GEN + "?publicKey=acc1&privateKey=acc1_private&roles=public"
    status, body = lstest.http_json("GET", url(port, path), headers={"X-Forwarded-For": "198.51.100.7"})
    assert status == 403 and body["errors"][0]["code"] == "forbidden", body
    # ... unless the proxy terminated TLS
    status, body = lstest.http_json("GET", url(port, path), headers={
        "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert status == 200, body
    assert proc.stop() == 0
    proc, port = serve({"gateway": {"trusted_proxies": ["127.0.0.1"], "token_http_remote": True}},
                       name="serve-remote")
    status, body = lstest.http_json("GET", url(port, path), headers={"X-Forwarded-For": "198.51.100.7"})
    assert status == 200, body
    assert proc.stop() == 0


def test_service_bridge_allowlist():
    port = main_server()
    # An operation off the allow-list does not exist over HTTP.
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/auth/validateToken?args=[]"))
    assert status == 404 and body["errors"][0]["code"] == "not_found", body
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/db/resetDatabase"))
    assert status == 404, body
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/../../x"))
    assert status in (403, 404), body
    proc, port = serve({"gateway": {"service_allowlist": ["auth/generatetoken", "auth/validateToken"]}},
                       name="serve-bridge")
    tok = acc1_token(port)
    args = urllib.parse.quote(json.dumps(["acc1", tok, "127.0.0.1"]))
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/auth/validateToken?args=" + args))
    assert status == 200 and body["data"]["appKey"] == "acc1", body
    status, body = lstest.http_json("POST", url(port, "/lightstream/services/auth/validateToken?timeout=2000"),
                                    json.dumps(["acc1", "bad", "127.0.0.1"]),
                                    {"Content-Type": "application/json"})
    assert status == 401 and body["data"] is None, body
    status, hdrs, raw = lstest.http("GET", url(port, "/lightstream/services/auth/generatetoken"
                                                "?type=plain&publicKey=acc1&privateKey=acc1_private&roles=public"))
    assert status == 200 and ctype(hdrs).startswith("text/plain")
    assert json.loads(raw)["value"]
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/auth/validateToken?args=notjson"))
    assert status == 400, body
    status, body = lstest.http_json("GET", url(port, "/lightstream/services/auth/validateToken?args=[]&timeout=0"))
    assert status == 400, body
    assert proc.stop() == 0


def test_http_publish():
    port = main_server()
    sub, _ = connect(port, "acc1", acc1_token(port))
    s = subscribe(sub, "acc1", "s1")
    tok = acc1_token(port, roles=["publisher"])
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"),
                                    json.dumps({"temp": 21.5}),
                                    {"Authorization": "Bearer " + tok,
                                     "Content-Type": "application/json"})
    assert status == 202, body
    assert body["data"] == {"accepted": True, "offset": s["offset"] + 1}, body
    d = sub.recv_type(5)
    assert d == {"owner": "acc1", "stream": "s1", "sub": s["subscriptionId"], "data": {"temp": 21.5},
                 "offset": s["offset"] + 1}, d
    status, _ = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "plain text",
                                 {"Authorization": "Bearer " + tok, "Content-Type": "text/plain"})
    assert status == 202
    assert sub.recv_type(5)["data"] == "plain text"
    # failures
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "{}")
    assert status == 401, body
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "{}",
                                    {"Authorization": "Bearer nope"})
    assert status == 401 and body["errors"][0]["code"] == "auth_failed", body
    read_only = acc1_token(port, roles=["public"])
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "{}",
                                    {"Authorization": "Bearer " + read_only})
    assert status == 403 and body["errors"][0]["code"] == "forbidden", body
    status, body = lstest.http_json("POST", url(port, "/lightstream/publish/acc1/s1"), "x" * 70000,
                                    {"Authorization": "Bearer " + tok})
    assert status == 413, body
    status, body = lstest.http_json("GET", url(port, "/lightstream/publish/acc1/s1"))
    assert status == 405, body
    sub.close()


def test_healthz_readyz_metrics():
    port = main_server()
    status, body = lstest.http_json("GET", url(port, "/healthz"))
    assert status == 200 and body["data"]["status"] == "ok"
    lstest.wait_for(lambda: lstest.http_json("GET", url(port, "/readyz"))[0] == 200, what="ready")
    ws, _ = connect(port, "acc1", acc1_token(port))
    subscribe(ws, "acc1", "s1")
    bad = lstest.WS(ws_url(port))
    bad.send(1, {"appKey": "acc1", "token": "nope"})
    bad.expect_close()
    status, hdrs, raw = lstest.http("GET", url(port, "/metrics"))
    assert status == 200 and ctype(hdrs).startswith("text/plain")
    text = raw.decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            values[k] = float(v)
    assert values["lightstream_connections"] >= 1
    assert values["lightstream_subscriptions"] >= 1
    assert values["lightstream_auth_ok_total"] >= 1
    assert values["lightstream_auth_failed_total"] >= 1
    assert values['lightstream_bus_latency_seconds_bucket{le="+Inf"}'] >= 2
    for name in ["lightstream_messages_in_total", "lightstream_messages_out_total",
                 "lightstream_messages_dropped_total", "lightstream_pubsub_reconnects_total"]:
        assert name in values, name
    ws.close()


def test_readyz_503_without_bus():
    # A gateway whose broker does not exist: not ready, and clients are
    # told the app server is unavailable.
    port = lstest.free_port()
    cfg = os.path.join(lstest.tmpdir(), "nobus.json")
    with open(cfg, "w") as f:
        json.dump({"bus": {"timeout_ms": 300}}, f)
    proc = lstest.lightstream("gateway", "--config", cfg, "--listen", "127.0.0.1:%d" % port,
                              "--broker-frontend", "tcp://127.0.0.1:%d" % lstest.free_port(),
                              *lstest.bus_peer_args("client"),
                              name="gateway-nobus", wait_tcp=port)
    status, body = lstest.http_json("GET", url(port, "/readyz"))
    assert status == 503 and body["errors"][0]["code"] == "unavailable", body
    assert "bus" in body["errors"][0]["message"], body
    ws = lstest.WS(ws_url(port))
    ws.send(1, {"appKey": "acc1", "token": "x" * 43})
    assert ws.recv_type(10)["code"] == "unavailable"
    assert ws.expect_close() == 1013  # try again later: not an auth failure
    status, body = lstest.http_json("GET", url(port, GEN + "?publicKey=acc1&privateKey=x&roles=public"))
    assert status == 503 and body["errors"][0]["code"] == "unavailable", body
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_static_files_and_traversal():
    port = main_server()
    status, hdrs, raw = lstest.http("GET", url(port, "/"))
    assert status == 200 and ctype(hdrs).startswith("text/html"), (status, hdrs)
    assert b"<html" in raw.lower()
    for path in ["/lightstream.js", "/lightstream.min.js"]:
        status, hdrs, raw = lstest.http("GET", url(port, path))
        assert status == 200 and "javascript" in ctype(hdrs), (path, hdrs)
        assert len(raw) > 100
    status, hdrs, _ = lstest.http("GET", url(port, "/demo.css"))
    assert status == 200 and ctype(hdrs).startswith("text/css")
    status, _, _ = lstest.http("GET", url(port, "/nope.html"))
    assert status == 404
    for path in [b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 b"/..%2f..%2f..%2fetc%2fpasswd", b"/.hidden", b"//etc/passwd",
                 b"/./../meson.build"]:
        answer = raw_http(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"root:" not in answer and b"project(" not in answer, (path, answer[:200])
        head = answer.split(b"\r\n", 1)[0]
        assert b" 200 " not in head, (path, head)


def test_static_dir_option():
    d = os.path.join(lstest.tmpdir(), "www")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<html>own page</html>")
    proc, port = serve(args=["--static-dir", d], name="serve-static")
    status, _, raw = lstest.http("GET", url(port, "/"))
    assert status == 200 and raw == b"<html>own page</html>"
    assert proc.stop() == 0


def test_origin_allowlist():
    proc, port = serve({"gateway": {"origins": ["https://good.example"]}}, name="serve-origin")
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok, headers={"Origin": "https://good.example"})
    ws.close()
    ws, _ = connect(port, "acc1", tok)  # no Origin: not a browser
    ws.close()
    try:
        lstest.WS(ws_url(port), headers={"Origin": "https://evil.example"})
        raise AssertionError("a foreign Origin was accepted")
    except ConnectionError:
        pass
    assert proc.stop() == 0


def test_websocket_path_only():
    port = main_server()
    try:
        lstest.WS("ws://127.0.0.1:%d/other" % port)
        raise AssertionError("upgrade accepted on another path")
    except ConnectionError:
        pass
    status, body = lstest.http_json("GET", url(port, "/lightstream/websocket"))
    assert status == 400


def test_tls_listener():
    import ssl
    certdir = os.path.join(lstest.tmpdir(), "tls")
    script = os.path.join(lstest.SOURCE_ROOT, "deploy", "tls", "make-dev-cert.sh")
    out = subprocess.run([script, certdir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    tls_port = lstest.free_port()
    proc, port = serve(args=["--tls-listen", "127.0.0.1:%d" % tls_port, "--tls-cert", cert,
                             "--tls-key", key], name="serve-tls")
    lstest.wait_port(tls_port)
    ctx = ssl.create_default_context(cafile=cert)
    # https: the certificate verifies for 127.0.0.1 and localhost
    req = urllib.request.Request("https://localhost:%d/healthz" % tls_port)
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["data"]["status"] == "ok"
    # over TLS a remote client may get tokens (it is not plain HTTP), and the
    # token works on a wss connection
    req = urllib.request.Request("https://127.0.0.1:%d%s?publicKey=acc1&privateKey=acc1_private"
                                 "&roles=public" % (tls_port, GEN))
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        tok = json.loads(r.read())["data"]["value"]
    ws = tls_ws(tls_port, ctx)
    ws.send(1, {"appKey": "acc1", "token": tok})
    assert ws.recv_type(2)["ok"] is True
    assert subscribe(ws, "acc1", "s1")["ok"]
    ws.close()
    # plain HTTP still answers on the other port
    assert lstest.http_json("GET", url(port, "/healthz"))[0] == 200
    assert proc.stop() == 0


lstest.main(globals())
