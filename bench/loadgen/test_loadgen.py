"""Correctness of the benchmark path against a real `lightstream serve`:
50 subscribers on one stream, a publisher at a steady rate for about three
seconds; every published message must reach every subscriber, in order,
with its payload intact. No timing is asserted (benchmarks report speed).

Usage (meson): python3 test_loadgen.py PATH/TO/ls-loadgen
"""
import base64
import json
import os
import socket
import subprocess
import sys
import urllib.parse

import lstest

LOADGEN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    lstest.BUILD_ROOT, "bench", "loadgen", "ls-loadgen")
FIXTURE = os.path.join(lstest.SOURCE_ROOT, "bench", "fixture.json")
SUBSCRIBERS = 50

_server = {}


def server():
    if not _server:
        port = lstest.free_port()
        data = os.path.join(lstest.tmpdir(), "data")
        os.makedirs(data, exist_ok=True)
        # the load generator publishes above the default publish rate
        config = os.path.join(data, "config.json")
        with open(config, "w") as f:
            f.write('{"gateway": {"publish_rate": 0}}')
        proc = lstest.lightstream("serve", "--config", config,
                                  "--listen", "127.0.0.1:%d" % port, "--data", data,
                                  "--fixture", FIXTURE, wait_tcp=port)
        _server.update(proc=proc, port=port)
    return _server


def token(role):
    s = server()
    q = urllib.parse.urlencode({"publicKey": "bench", "privateKey": "bench_private",
                                "roles": role, "ttl": 3600})
    url = "http://127.0.0.1:%d/lightstream/services/auth/generatetoken?%s" % (s["port"], q)
    status, body = lstest.wait_for(lambda: _try_token(url), timeout=15, what="a token")
    return body["data"]["value"]


def _try_token(url):
    try:
        status, body = lstest.http_json("GET", url)
    except OSError:
        return None
    return (status, body) if status == 200 else None


def run_loadgen(*extra):
    s = server()
    argv = [LOADGEN, "--target", "lightstream", "--port", str(s["port"]),
            "--app", "bench", "--owner", "bench", "--stream", "fan",
            "--token", token("subscriber"), "--pub-token", token("publisher"),
            "--subscribers", str(SUBSCRIBERS), "--server-pid", str(s["proc"].pid),
            "--check"] + list(extra)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert r.stdout.strip(), "ls-loadgen printed nothing: %s" % r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return r.returncode, res


def test_every_message_reaches_every_subscriber_intact():
    rc, res = run_loadgen("--rate", "100", "--seconds", "2.5", "--warmup", "0.5")
    assert res["connected"] == SUBSCRIBERS, res
    assert res["published"] > 100, res
    assert res["expected_per_subscriber"] == res["published"], res
    assert res["delivered"] == res["published"] * SUBSCRIBERS, res
    assert res["drops"] == 0 and res["dups"] == 0, res
    assert res["corrupt"] == 0 and res["bad_frames"] == 0, res
    assert res["closed_by_server"] == 0, res
    assert res["ok"] is True and rc == 0, res


def test_query_delivers_exactly_the_selected_messages():
    # k = seq % 100 and the query keeps k < 30: 30 % of the messages.
    rc, res = run_loadgen("--rate", "100", "--seconds", "1.5", "--warmup", "0.5",
                          "--selectivity", "30")
    assert res["connected"] == SUBSCRIBERS, res
    assert 0 < res["expected_per_subscriber"] < res["published"], res
    assert res["delivered"] == res["expected_per_subscriber"] * SUBSCRIBERS, res
    assert res["drops"] == 0 and res["corrupt"] == 0, res
    assert res["ok"] is True and rc == 0, res


def test_wrong_token_is_reported_not_counted():
    s = server()
    argv = [LOADGEN, "--target", "lightstream", "--port", str(s["port"]),
            "--app", "bench", "--owner", "bench", "--stream", "fan",
            "--token", "A" * 43, "--subscribers", "3", "--check"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 1, res
    assert res["connected"] == 0 and res["auth_failed"] == 3, res
    assert res["ok"] is False, res


def test_upgrade_request_key_is_16_bytes():
    """RFC 6455 4.1: Sec-WebSocket-Key is base64 of 16 bytes (servers that
    check it, like uWebSockets, answer 400 to anything else). Captured from
    the wire: a plain TCP listener reads the load generator's request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(20)
    port = listener.getsockname()[1]
    argv = [LOADGEN, "--target", "lightstream", "--port", str(port),
            "--app", "bench", "--owner", "bench", "--stream", "fan",
            "--token", "A" * 43, "--subscribers", "1", "--seconds", "1", "--check"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            assert chunk, head
            head += chunk
        conn.close()
    finally:
        listener.close()
        proc.kill()
        proc.wait()
    keys = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")]
    assert len(keys) == 1, head
    assert len(base64.b64decode(keys[0], validate=True)) == 16, keys[0]


lstest.main(globals())
