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


lstest.main(globals())
