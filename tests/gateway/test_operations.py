"""What operators and newcomers meet on the HTTP side of `lightstream serve`:
the process metrics and build info in /metrics, HEAD wherever GET works,
content types of the client files, the favicon."""

import re

import lstest
from gwlib import serve, url

_main = None


def main_server():
    global _main
    if _main is None:
        _main = serve()
    return _main[1]


def header(headers, name):
    return {k.lower(): v for k, v in headers.items()}.get(name, "")


def test_metrics_has_process_and_build_info():
    port = main_server()
    status, _, body = lstest.http("GET", url(port, "/metrics"))
    assert status == 200
    text = body.decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            values[m.group(1)] = float(m.group(2))
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_max_fds",
                 "process_start_time_seconds"):
        assert name in values, (name, text[-2000:])
    assert values["process_resident_memory_bytes"] > 1 << 20
    assert 3 < values["process_open_fds"] < values["process_max_fds"]
    assert values["process_cpu_seconds_total"] > 0
    assert any(k.startswith('lightstream_build_info{version="') and v == 1
               for k, v in values.items()), text
    assert "# TYPE process_open_fds gauge" in text


def test_head_answers_like_get():
    port = main_server()
    for path in ("/healthz", "/metrics", "/", "/lightstream.js", "/lightstream.d.ts",
                 "/lightstream/services/auth/generatetoken?publicKey=acc1"):
        gs, gh, gbody = lstest.http("GET", url(port, path))
        hs, hh, hbody = lstest.http("HEAD", url(port, path))
        assert hs == gs, (path, hs, gs)
        assert hbody == b"", (path, hbody[:80])
        assert header(hh, "content-type") == header(gh, "content-type"), path
        if path != "/metrics":  # its body changes between the two calls
            assert header(hh, "content-length") == str(len(gbody)), (path, hh)


def test_client_files_content_types_and_favicon():
    port = main_server()
    status, h, _ = lstest.http("GET", url(port, "/lightstream.d.ts"))
    assert status == 200 and header(h, "content-type").startswith("application/typescript")
    status, h, body = lstest.http("GET", url(port, "/favicon.svg"))
    assert status == 200 and header(h, "content-type") == "image/svg+xml"
    assert body.startswith(b"<svg")
    status, _, page = lstest.http("GET", url(port, "/"))
    assert b'rel="icon" href="favicon.svg"' in page


def test_client_files_served_with_validators_whatever_the_static_dir():
    """docs/protocol.md, "HTTP": with a static directory of the user's own,
    /lightstream.js still comes from the gateway, with CORS, an ETag and
    Last-Modified that revalidate to 304, and gzip when accepted."""
    import gzip
    import os
    mine = os.path.join(lstest.tmpdir(), "mine")
    os.makedirs(mine, exist_ok=True)
    with open(os.path.join(mine, "index.html"), "w") as f:
        f.write("<p>my page</p>")
    _, port = serve(args=("--static-dir", mine), name="serve-own-static")
    status, _, page = lstest.http("GET", url(port, "/"))
    assert status == 200 and page == b"<p>my page</p>"
    original = open(os.path.join(lstest.SOURCE_ROOT, "clients", "js", "public",
                                 "lightstream.js"), "rb").read()
    status, h, body = lstest.http("GET", url(port, "/lightstream.js"))
    assert status == 200 and body == original
    assert header(h, "access-control-allow-origin") == "*"
    assert header(h, "cache-control") == "no-cache"
    etag, modified = header(h, "etag"), header(h, "last-modified")
    assert etag.startswith('"') and modified.endswith("GMT"), h
    status, h2, body = lstest.http("GET", url(port, "/lightstream.js"),
                                   headers={"If-None-Match": etag})
    assert status == 304 and body == b"", status
    status, _, _ = lstest.http("GET", url(port, "/lightstream.js"),
                               headers={"If-Modified-Since": modified})
    assert status == 304
    status, _, _ = lstest.http("GET", url(port, "/lightstream.js"),
                               headers={"If-None-Match": '"stale"'})
    assert status == 200
    status, h, body = lstest.http("GET", url(port, "/lightstream.min.js"),
                                  headers={"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and header(h, "content-encoding") == "gzip", h
    min_js = open(os.path.join(lstest.SOURCE_ROOT, "clients", "js", "public",
                               "lightstream.min.js"), "rb").read()
    assert gzip.decompress(body) == min_js and len(body) < len(min_js) / 2
    for name in ("lightstream.mjs", "lightstream.d.ts"):
        status, _, _ = lstest.http("GET", url(port, "/" + name))
        assert status == 200, name


lstest.main(globals())
