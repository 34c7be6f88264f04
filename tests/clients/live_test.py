"""Runs lsc_live_test (the library's API, in C) against a real serve."""

import os
import subprocess

import lstest

BINARY = os.path.join(lstest.BUILD_ROOT, "tests", "clients", "test_clients_lsc_live")


def test_library_api_against_serve():
    port, tport = lstest.free_port(), lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "data")
    os.makedirs(data)
    certdir = os.path.join(lstest.tmpdir(), "tls")
    r = subprocess.run(["sh", os.path.join(lstest.SOURCE_ROOT, "deploy", "tls",
                                           "make-dev-cert.sh"), certdir],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    # Some cases publish thousands of messages as fast as the client can:
    # above the gateway's per-connection publish rate (docs/security.md).
    config = os.path.join(lstest.tmpdir(), "config.json")
    with open(config, "w") as f:
        f.write('{"gateway": {"publish_rate": 0}}')
    lstest.lightstream("serve", "--config", config,
                       "--listen", "127.0.0.1:%d" % port, "--tls-listen",
                       "127.0.0.1:%d" % tport, "--tls-cert", cert, "--tls-key", key,
                       "--data", data, "--fixture", lstest.FIXTURE, name="serve",
                       wait_tcp=port)
    http = "http://127.0.0.1:%d" % port
    lstest.wait_for(lambda: lstest.http("GET", http + "/readyz")[0] == 200,
                    timeout=20, what="serve /readyz")
    env = dict(os.environ, LSC_LIVE_HTTP=http, LSC_LIVE_WS="ws://127.0.0.1:%d" % port,
               LSC_LIVE_WSS="wss://127.0.0.1:%d" % tport, LSC_LIVE_CA=cert,
               LSC_LIVE_BIN=lstest.LIGHTSTREAM, LSC_LIVE_DATA=data,
               LSC_LIVE_FIXTURE=lstest.FIXTURE)
    r = subprocess.run([BINARY], env=env, capture_output=True, text=True, timeout=120)
    for line in (r.stdout + r.stderr).splitlines():
        print("# " + line)
    assert r.returncode == 0, "lsc_live_test failed (see the lines above)"
    assert "not ok" not in r.stdout


lstest.main(globals())
