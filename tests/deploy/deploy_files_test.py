"""The shipped deployment files are valid for the tools that read them:
HAProxy 2.6 accepts deploy/haproxy/haproxy.cfg, systemd accepts the units
(with their hardening), and deploy/cluster answers --help."""

import os
import re
import shutil
import subprocess
import sys

import lstest

DEPLOY = os.path.join(lstest.SOURCE_ROOT, "deploy")


def test_haproxy_cfg_is_valid():
    if shutil.which("haproxy") is None:
        raise AssertionError("haproxy is not installed (scripts/setup)")
    d = lstest.tmpdir()
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    pem = os.path.join(d, "lightstream.pem")
    with open(pem, "w") as out:
        out.write(open(cert).read() + open(key).read())
    text = open(os.path.join(DEPLOY, "haproxy", "haproxy.cfg")).read()
    # Only the paths that do not exist on a build machine change.
    text = text.replace("/etc/haproxy/certs/lightstream.pem", pem)
    text = text.replace("/run/haproxy/admin.sock", os.path.join(d, "admin.sock"))
    text = re.sub(r"(?m)^\s*chroot .*$", "", text)
    cfg = os.path.join(d, "haproxy.cfg")
    open(cfg, "w").write(text)
    r = subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stdout + r.stderr, r.stdout + r.stderr
    for must in ("option httpchk GET /readyz", "balance leastconn", "timeout tunnel",
                 "X-Forwarded-For", "ssl crt", "stats uri"):
        assert must in text, must


def test_systemd_units_verify():
    if shutil.which("systemd-analyze") is None:
        raise lstest.Skip("systemd-analyze is not installed")
    d = lstest.tmpdir()
    units = []
    for name in sorted(os.listdir(os.path.join(DEPLOY, "systemd"))):
        text = open(os.path.join(DEPLOY, "systemd", name)).read()
        # Point ExecStart at the executable of this build.
        text = text.replace("/usr/bin/lightstream", lstest.LIGHTSTREAM)
        out = name.replace("@.service", "@8081.service")
        open(os.path.join(d, out), "w").write(text)
        units.append(os.path.join(d, out))
        if name.endswith(".service"):
            for must in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes",
                         "LimitNOFILE=", "Restart=on-failure", "KillSignal=SIGTERM"):
                assert must in text, "%s lacks %s" % (name, must)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units,
                       capture_output=True, text=True, cwd=d)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr


def test_cluster_script_help():
    r = subprocess.run([sys.executable, os.path.join(DEPLOY, "cluster"), "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("start", "stop", "status"):
        assert cmd in r.stdout


def test_haproxy_does_not_log_private_keys():
    """The shipped configuration, bound to loopback in front of a real
    gateway: a GET token request's query string (the private key) stays
    out of HAProxy's log; other paths keep theirs."""
    import json
    import time
    import urllib.request
    if shutil.which("haproxy") is None:
        raise AssertionError("haproxy is not installed (scripts/setup)")
    d = lstest.tmpdir()
    gw_port, front = lstest.free_port(), lstest.free_port()
    data = os.path.join(d, "data")
    os.makedirs(data, exist_ok=True)
    cfg = os.path.join(d, "gw.json")
    with open(cfg, "w") as f:
        json.dump({"gateway": {"trusted_proxies": ["127.0.0.1"]}}, f)
    lstest.lightstream("serve", "--config", cfg, "--listen", "127.0.0.1:%d" % gw_port,
                       "--data", data, "--fixture", lstest.FIXTURE, name="serve-haproxy",
                       wait_tcp=gw_port)
    out = []
    in_backend = False
    for line in open(os.path.join(DEPLOY, "haproxy", "haproxy.cfg")).read().splitlines():
        st = line.strip()
        if st.startswith(("chroot ", "user ", "group ", "stats socket", "bind :443")) or \
                st == "daemon":
            continue
        if st.startswith("log /dev/log"):
            line = "\tlog stdout format raw local0 info"
        elif st.startswith("maxconn ") and not in_backend:
            line = "\tmaxconn 1000"
        elif st.startswith("bind :80"):
            line = "\tbind 127.0.0.1:%d" % front
        elif st.startswith("bind 127.0.0.1:8404"):
            line = "\tbind 127.0.0.1:%d" % lstest.free_port()
        if st.startswith("backend "):
            in_backend = True
        elif st.startswith(("frontend ", "global", "defaults")):
            in_backend = False
        if in_backend and st.startswith("server "):
            continue
        if in_backend and st.startswith("default-server"):
            out.append(line.replace("maxconn 20000", "maxconn 100"))
            out.append("\tserver gw 127.0.0.1:%d check" % gw_port)
            continue
        out.append(line)
    path = os.path.join(d, "haproxy-log.cfg")
    open(path, "w").write("\n".join(out) + "\n")
    proxy = lstest.Proc("haproxy", ["haproxy", "-db", "-f", path])
    lstest.wait_port(front, proc=proxy)
    base = "http://127.0.0.1:%d" % front

    def get(target):
        try:
            with urllib.request.urlopen(base + target, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    lstest.wait_for(lambda: get("/readyz") == 200, timeout=15, what="gateway up behind haproxy")
    assert get("/lightstream/services/auth/generatetoken?publicKey=acc1"
               "&privateKey=acc1_private&roles=public") == 200
    assert get("/lightstream/sse/acc1/s1?appKey=acc1&token=secret-token-value") in (400, 401, 404)
    assert get("/demo.css?v=visible-query") == 200
    lstest.wait_for(lambda: "visible-query" in proxy.log_text(), what="haproxy log lines")
    text = proxy.log_text()
    assert "GET /lightstream/services/auth/generatetoken HTTP/1.1" in text, text
    assert "acc1_private" not in text and "privateKey" not in text, text
    assert "secret-token-value" not in text, text
    proxy.stop()


lstest.main(globals())
