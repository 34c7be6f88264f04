"""The installed C client: `meson install` into a temporary root, then the
examples compiled with nothing but `pkg-config lightstream-client` and the
installed files, run against a real `lightstream serve`. Also the libev
example from the build tree with many messages published from a second
thread (it runs under the sanitizer build too)."""

import glob
import json
import os
import shlex
import shutil
import subprocess
import time

import lstest

EXAMPLES = os.path.join(lstest.SOURCE_ROOT, "clients", "examples")
EV_PUB_SUB = os.path.join(lstest.BUILD_ROOT, "clients", "ev_pub_sub")
CC = shlex.split(os.environ.get("LSC_CC", "cc"))
SANITIZE = os.environ.get("LSC_SANITIZE", "none")

_root = None
_serve = None


def installed():
    """Install once; returns (root, pkg-config environment, libdir)."""
    global _root
    if _root is None:
        root = os.path.join(lstest.tmpdir(), "root")
        r = subprocess.run(["meson", "install", "-C", lstest.BUILD_ROOT,
                            "--no-rebuild", "--destdir", root],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        _root = root
    pcs = glob.glob(os.path.join(_root, "**", "pkgconfig", "lightstream-client.pc"),
                    recursive=True)
    assert len(pcs) == 1, pcs
    pcdir = os.path.dirname(pcs[0])
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=_root, PKG_CONFIG_PATH=pcdir,
               PKG_CONFIG_LIBDIR=pcdir)
    return _root, env, os.path.dirname(pcdir)


def pkg_config(env, *args):
    r = subprocess.run(["pkg-config", *args, "lightstream-client"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return shlex.split(r.stdout)


def compile_installed(name, *extra):
    """Compile clients/examples/<name>.c, copied alone into a temporary
    folder, against the installed library only."""
    root, env, libdir = installed()
    work = os.path.join(lstest.tmpdir(), "build-" + name)
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, name + ".c")
    shutil.copy(os.path.join(EXAMPLES, name + ".c"), src)
    exe = os.path.join(work, name)
    flags = pkg_config(env, "--cflags", "--libs")
    if SANITIZE != "none":  # the installed library was built with it
        flags.append("-fsanitize=" + SANITIZE)
    r = subprocess.run(CC + [src, "-o", exe, *flags, *extra],
                       capture_output=True, text=True, cwd=work)
    assert r.returncode == 0, " ".join(CC + flags) + "\n" + r.stderr
    return exe, dict(os.environ, LD_LIBRARY_PATH=libdir)


def serve():
    global _serve
    if _serve is None:
        port = lstest.free_port()
        data = os.path.join(lstest.tmpdir(), "data")
        os.makedirs(data)
        # 5,000 publishes as fast as the client can: above the gateway's
        # per-connection publish rate (docs/security.md).
        config = os.path.join(lstest.tmpdir(), "config.json")
        with open(config, "w") as f:
            f.write('{"gateway": {"publish_rate": 0}}')
        lstest.lightstream("serve", "--config", config,
                           "--listen", "127.0.0.1:%d" % port, "--data", data,
                           "--broker-frontend", "tcp://127.0.0.1:%d" % lstest.free_port(),
                           "--broker-backend", "tcp://127.0.0.1:%d" % lstest.free_port(),
                           "--fixture", lstest.FIXTURE, name="serve", wait_tcp=port)
        http = "http://127.0.0.1:%d" % port
        lstest.wait_for(lambda: lstest.http("GET", http + "/readyz")[0] == 200,
                        timeout=20, what="serve /readyz")
        _serve = (http, "ws://127.0.0.1:%d" % port)
    return _serve


def token(app, key, roles):
    http, _ = serve()
    r = lstest.run("token", "--url", http, "--app", app, "--private-key", key,
                   "--roles", roles)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_install_layout_and_exports():
    """The public headers, one shared library exporting lsc_* only, the
    pkg-config file; no internal header is installed."""
    root, env, libdir = installed()
    includes = [os.path.relpath(p, root) for p in
                glob.glob(os.path.join(root, "**", "*.h"), recursive=True)]
    assert sorted(os.path.basename(p) for p in includes) == ["lsc.h", "lsc_ev.h"], includes
    cflags = pkg_config(env, "--cflags")
    incdir = [f[2:] for f in cflags if f.startswith("-I")]
    assert len(incdir) == 1 and incdir[0].startswith(root), cflags
    assert os.path.exists(os.path.join(incdir[0], "lsc.h"))
    libs = pkg_config(env, "--libs")
    assert "-llightstream-client" in libs, libs
    so = os.path.join(libdir, "liblightstream-client.so")
    assert os.path.exists(so), os.listdir(libdir)
    r = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = [l.split()[-1].split("@")[0] for l in r.stdout.splitlines() if l.split()[1] in "TtDdBbRr"]
    assert "lsc_client_new" in names and "lsc_client_new_ev" in names, names
    assert "lsc_client_publish" in names, names
    others = [n for n in names if not n.startswith("lsc_") or n.startswith("lsc__")]
    assert not others, "exported besides lsc_*: %s" % others[:20]
    # The public header stands alone: no jansson, no internal header.
    with open(os.path.join(incdir[0], "lsc.h")) as f:
        text = f.read()
    assert "jansson" not in text and "ls_error.h" not in text


def test_installed_ev_example_receives_what_a_thread_published():
    exe, env = compile_installed("ev_pub_sub", "-lev", "-pthread")
    r = subprocess.run(["ldd", exe], capture_output=True, text=True, env=env)
    assert env["LD_LIBRARY_PATH"] in r.stdout, r.stdout  # the installed .so
    _, ws = serve()
    tok = token("acc1", "acc1_private", "publisher")
    r = subprocess.run([exe, ws, "acc1", tok, "acc1/s1", "50"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines == ['acc1/s1: {"n":%d}' % n for n in range(1, 51)], lines[:5]


def test_installed_weather_sub_receives_a_published_message():
    exe, env = compile_installed("weather_sub")
    http, ws = serve()
    reader = token("acc1", "acc1_private", "public,weather-reader")
    writer = token("svc1", "svc1_private", "publisher")
    out = os.path.join(lstest.tmpdir(), "weather_sub.out")
    err = os.path.join(lstest.tmpdir(), "weather_sub.err")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen([exe, ws, "acc1", reader], stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL, env=env)
        try:
            # Publish until it is subscribed and shows the cold Lisbon.
            deadline = time.time() + 20
            got = ""
            while time.time() < deadline and not got:
                for m in ({"city": "Porto", "temperature": 3},
                          {"city": "Lisboa", "temperature": 11}):
                    r = lstest.run("pub", "--url", ws, "--app", "svc1", "--token", writer,
                                   "svc1/weather", json.dumps(m))
                    assert r.returncode == 0, r.stderr
                time.sleep(0.2)
                with open(out) as f:
                    got = f.read()
        finally:
            p.terminate()
            p.wait(timeout=10)
    with open(err) as f:
        errtext = f.read()
    lines = got.splitlines()
    assert lines, errtext
    assert all(l == 'svc1/weather: {"city":"Lisboa","temperature":11}' for l in lines), lines


def test_many_messages_from_a_second_thread():
    """5,000 publishes from a publisher thread while the libev loop runs:
    every one acknowledged and received, in order (build tree)."""
    _, ws = serve()
    tok = token("acc1", "acc1_private", "publisher")
    r = subprocess.run([EV_PUB_SUB, ws, "acc1", tok, "acc1/s1", "5000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert len(lines) == 5000 and lines[-1] == 'acc1/s1: {"n":5000}', lines[-3:]


lstest.main(globals())
