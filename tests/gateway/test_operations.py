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


lstest.main(globals())
