"""The browser client and the demo page are compiled into `lightstream`, so
a binary outside the build tree (an installed one, an out-of-tree build)
still serves them; the client files are always this server's own, with
cache validators and CORS (docs/configuration.md, "Static files")."""

import os
import shutil

import lstest

SOURCE = os.environ["LIGHTSTREAM_SOURCE_ROOT"]
PUBLIC = os.path.join(SOURCE, "clients", "js", "public")


def hdr(headers, name):
    return {k.lower(): v for k, v in headers.items()}.get(name)


def serve_copy(*args):
    """`lightstream serve` run from a copy of the binary in a directory that
    has nothing of the source or build tree around it."""
    bindir = os.path.join(lstest.tmpdir(), "opt", "bin")
    os.makedirs(bindir, exist_ok=True)
    binary = os.path.join(bindir, "lightstream")
    if not os.path.exists(binary):
        shutil.copy2(os.environ["LIGHTSTREAM_BIN"], binary)
    port = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "data-%d" % port)
    env = {"LIGHTSTREAM_STATIC_DIR": ""}
    proc = lstest.Proc("serve-copy", [binary, "serve", "--listen", "127.0.0.1:%d" % port,
                                      "--data", data, *args], env=env)
    lstest.wait_port(port, proc=proc)
    return proc, "http://127.0.0.1:%d" % port


def test_a_binary_outside_the_build_tree_serves_the_client_and_demo():
    proc, base = serve_copy()
    for name in ("lightstream.js", "lightstream.min.js", "lightstream.mjs",
                 "lightstream.d.ts", "index.html", "demo.js", "demo.css", "favicon.svg"):
        status, headers, raw = lstest.http("GET", base + "/" + name)
        assert status == 200, (name, status)
        with open(os.path.join(PUBLIC, name), "rb") as f:
            assert raw == f.read(), name + " differs from clients/js/public"
    status, headers, raw = lstest.http("GET", base + "/")
    assert status == 200 and b"<html" in raw.lower()
    assert "text/html" in hdr(headers, "content-type")
    status, _, _ = lstest.http("GET", base + "/nope.html")
    assert status == 404
    assert proc.stop() == 0


def test_client_files_carry_validators_and_cors():
    proc, base = serve_copy()
    status, headers, raw = lstest.http("GET", base + "/lightstream.js")
    assert status == 200
    etag = hdr(headers, "etag")
    assert etag and etag.startswith('"'), headers
    assert hdr(headers, "access-control-allow-origin") == "*", headers
    assert "javascript" in hdr(headers, "content-type")
    assert hdr(headers, "x-content-type-options") == "nosniff"
    status, headers, raw = lstest.http("GET", base + "/lightstream.js",
                                       headers={"If-None-Match": etag})
    assert status == 304 and raw == b"", (status, raw[:50])
    # The demo page is not for other origins.
    status, headers, _ = lstest.http("GET", base + "/index.html")
    assert status == 200 and hdr(headers, "access-control-allow-origin") is None
    assert "frame-ancestors 'none'" in hdr(headers, "content-security-policy")
    assert proc.stop() == 0


def test_static_dir_replaces_the_demo_but_never_the_client():
    d = os.path.join(lstest.tmpdir(), "own-www")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("<html>own page</html>")
    with open(os.path.join(d, "lightstream.js"), "w") as f:
        f.write("stale copy")
    with open(os.path.join(d, "extra.txt"), "w") as f:
        f.write("extra")
    proc, base = serve_copy("--static-dir", d)
    assert lstest.http("GET", base + "/")[2] == b"<html>own page</html>"
    assert lstest.http("GET", base + "/extra.txt")[2] == b"extra"
    status, _, raw = lstest.http("GET", base + "/lightstream.js")
    with open(os.path.join(PUBLIC, "lightstream.js"), "rb") as f:
        assert status == 200 and raw == f.read()
    # What the directory lacks of the demo still comes from the binary.
    assert lstest.http("GET", base + "/demo.css")[0] == 200
    assert proc.stop() == 0


lstest.main(globals())
