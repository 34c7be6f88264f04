"""Benchmark (not a test): auth.validateToken and auth.generateToken
throughput through a real broker and app server over tcp.

    LIGHTSTREAM_BIN=$PWD/build/cmd/lightstream PYTHONPATH=tests/harness \\
        /usr/bin/python3 tests/appserver/bench_auth.py [--workers 2] [--requests 5000] [--window 64]

One python-zmq DEALER keeps WINDOW requests in flight (docs/bus.md client
frames) and reports requests per second and latency percentiles.
"""

import argparse
import json
import os
import struct
import time

import zmq

import lstest


def run(sock, service, op, args_for, total, window):
    sent = done = 0
    start = {}
    lat = []
    t0 = time.perf_counter()
    while done < total:
        while sent < total and sent - done < window:
            body = json.dumps({"o": op, "a": args_for(sent)}).encode()
            start[sent] = time.perf_counter()
            sock.send_multipart([struct.pack("<Q", sent), service.encode(), body])
            sent += 1
        rid, status, body = sock.recv_multipart()
        i = struct.unpack("<Q", rid)[0]
        if status != b"\x01":
            raise RuntimeError("request %d failed: %s" % (i, body[:200]))
        lat.append(time.perf_counter() - start.pop(i))
        done += 1
    elapsed = time.perf_counter() - t0
    lat.sort()
    return total / elapsed, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--window", type=int, default=64)
    opt = ap.parse_args()
    front, back = lstest.free_port(), lstest.free_port()
    fe = "tcp://127.0.0.1:%d" % front
    try:
        lstest.lightstream("broker", "--broker-frontend", fe, "--broker-backend",
                           "tcp://127.0.0.1:%d" % back, "--log-level", "warn",
                           "--bus-insecure", wait_tcp=front)
        lstest.lightstream("appserver", "--broker-backend", "tcp://127.0.0.1:%d" % back,
                           "--store", "sqlite:" + os.path.join(lstest.tmpdir(), "b.db"),
                           "--workers", opt.workers, "--fixture", lstest.FIXTURE,
                           "--log-level", "warn", "--bus-insecure")
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(fe)
        lstest.wait_for(lambda: lstest.run("call", "--broker-frontend", fe, "--bus-insecure", "mmi.service",
                                           "auth").stdout.strip() == "200",
                        what="auth service")
        tok = lstest.run("call", "--broker-frontend", fe, "--bus-insecure", "auth", "generateToken", "acc1",
                         "acc1_private", '["public","publisher","weather-reader"]')
        value = json.loads(tok.stdout)["value"]
        n = opt.requests
        rate, p50, p99 = run(sock, "auth", "validateToken",
                             lambda i: ["acc1", value, "127.0.0.1"], n, opt.window)
        print("validateToken: %d requests, %d workers, window %d: %.0f req/s, "
              "p50 %.2f ms, p99 %.2f ms" % (n, opt.workers, opt.window, rate, p50, p99))
        n = max(1, n // 5)
        rate, p50, p99 = run(sock, "auth", "generateToken",
                             lambda i: ["acc1", "acc1_private", ["public"], 60], n,
                             opt.window)
        print("generateToken: %d requests, %d workers, window %d: %.0f req/s, "
              "p50 %.2f ms, p99 %.2f ms (PBKDF2 private-key check per request)"
              % (n, opt.workers, opt.window, rate, p50, p99))
        sock.close()
        ctx.term()
    finally:
        lstest._cleanup()


if __name__ == "__main__":
    main()
