"""Shared helpers of the benchmark scripts (bench/fanout, bench/idle,
bench/compare, bench/scale): start LightStream, nginx+nchan, Bun
(bench/bun/server.js) and redis-server on loopback ports in a temporary
directory, pinned to CPUs, run ls-loadgen pinned to another CPU, and stop
everything at exit whatever happens.

Debian python3 only (no pip). Nothing here asserts timings: the scripts
report numbers, they do not judge them.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(BENCH_DIR)
FIXTURE = os.path.join(BENCH_DIR, "fixture.json")
NCHAN_CONF = os.path.join(BENCH_DIR, "nchan", "nginx.conf.in")
BUN_DIR = os.path.join(BENCH_DIR, "bun")

SERVER_CPU = "0"
LOAD_CPU = "1"

_procs = []
_tmp = None


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def tmpdir():
    global _tmp
    if _tmp is None:
        _tmp = tempfile.mkdtemp(prefix="ls-bench-")
    return _tmp


_cgroups = []


def cpu_quota(pids, cpus):
    """Hold the processes pids (all their threads) to `cpus` CPUs in all
    (e.g. 0.5), with a CPU cgroup of their own (v2 cpu.max, or v1
    cfs_quota_us); removed at exit. Needs root."""
    period = 100000
    quota = max(1000, int(cpus * period))
    name = "lightstream-bench-%d-%d" % (os.getpid(), len(_cgroups))
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        d = os.path.join("/sys/fs/cgroup", name)
        os.mkdir(d)
        with open(os.path.join(d, "cpu.max"), "w") as f:
            f.write("%d %d" % (quota, period))
    else:
        d = os.path.join("/sys/fs/cgroup/cpu", name)
        os.mkdir(d)
        with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
            f.write(str(period))
        with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(quota))
    _cgroups.append(d)
    for pid in pids:
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(pid))


def _cleanup():
    for p in reversed(_procs):
        try:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        except OSError:
            pass
    del _procs[:]
    for d in _cgroups:
        try:
            os.rmdir(d)  # empty once its processes are gone
        except OSError:
            pass
    del _cgroups[:]
    if _tmp and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(_tmp, ignore_errors=True)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def find_build(explicit=None, need_lightstream=True):
    """The build directory holding ls-loadgen (and lightstream)."""
    cands = [explicit, os.environ.get("LIGHTSTREAM_BUILD_ROOT"),
             os.path.join(SOURCE_ROOT, "build"), os.path.join(SOURCE_ROOT, "build-bench")]
    for c in cands:
        if not c:
            continue
        lg = os.path.join(c, "bench", "loadgen", "ls-loadgen")
        ls = os.path.join(c, "cmd", "lightstream")
        if os.access(lg, os.X_OK) and (not need_lightstream or os.access(ls, os.X_OK)):
            return os.path.abspath(c)
    raise SystemExit("bench: no build directory with bench/loadgen/ls-loadgen%s "
                     "(build first, or pass --build DIR)"
                     % (" and cmd/lightstream" if need_lightstream else ""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(proc, lines=20):
    try:
        with open(proc.log_path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except (OSError, AttributeError):
        return "(no log)"


def wait_port(port, proc, timeout=20.0, name="server"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bench: %s exited with %s before listening:\n%s"
                             % (name, proc.returncode, log_tail(proc)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench: %s does not listen on %d after %.0fs" % (name, port, timeout))


def _start(name, argv, cpu=None, env=None):
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu] + argv  # taskset execs: same pid
    path = os.path.join(tmpdir(), "%s-%d.log" % (name, len(_procs)))
    logf = open(path, "wb")
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, cwd=tmpdir(), env=full_env,
                         start_new_session=True)
    p.log_path = path
    _procs.append(p)
    return p


def stop(proc):
    if proc in _procs:
        _procs.remove(proc)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """A started server: its kind, port and the pids whose CPU/RSS count."""

    def __init__(self, kind, proc, port, pids):
        self.kind = kind
        self.proc = proc
        self.port = port
        self.pids = pids
        self.tokens = {}

    def stop(self):
        stop(self.proc)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def start_redis(cpu=SERVER_CPU):
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit("bench: redis-server is not installed")
    port = free_port()
    d = os.path.join(tmpdir(), "redis-%d" % port)
    os.makedirs(d)
    p = _start("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", d], cpu=cpu)
    wait_port(port, p, name="redis-server")
    return Server("redis", p, port, [p.pid])


def start_lightstream(build, cpu=SERVER_CPU, redis_port=None, extra=(), gateways=1,
                      port=None):
    """`lightstream serve` with `gateways` gateway loops (1 by default: the
    server is pinned to one CPU, like its peers; bench/scale varies it)."""
    exe = os.path.join(build, "cmd", "lightstream")
    port = port or free_port()
    data = os.path.join(tmpdir(), "ls-data-%d-%d" % (port, len(_procs)))
    os.makedirs(data)
    # Publishers here go far above the per-connection publish rate that
    # protects a production gateway (docs/security.md): benchmarks lift it.
    config = os.path.join(data, "bench-config.json")
    with open(config, "w") as f:
        f.write(os.environ.get('LS_BENCH_CONFIG', '{"gateway": {"publish_rate": 0}}'))
    argv = [exe, "serve", "--config", config,
            "--listen", "127.0.0.1:%d" % port, "--data", data,
            "--fixture", FIXTURE, "--log-level", "warn", "--gateways", str(gateways)]
    if redis_port:
        argv += ["--redis", "redis://127.0.0.1:%d" % redis_port]
    argv += list(extra)
    p = _start("lightstream", argv, cpu=cpu)
    wait_port(port, p, name="lightstream serve")
    srv = Server("lightstream", p, port, [p.pid])
    # The gateway may listen before the app server imported the fixture:
    # retry the first token for a few seconds.
    deadline = time.time() + 15
    while True:
        try:
            token(srv, "subscriber")
            break
        except Exception as e:  # noqa: BLE001 - report the last one
            if time.time() > deadline or p.poll() is not None:
                raise SystemExit("bench: no token from lightstream: %s (log %s)"
                                 % (e, p.log_path))
            time.sleep(0.2)
    return srv


def bun_exe():
    exe = os.path.join(BUN_DIR, "node_modules", ".bin", "bun")
    if not os.access(exe, os.X_OK):
        raise SystemExit("bench: Bun is not installed: (cd bench/bun && npm ci)")
    return exe


def start_bun(cpu=SERVER_CPU, queue_limit=1048576):
    """bench/bun/server.js: Bun.serve pub/sub speaking enough of our protocol
    for ls-loadgen --target lightstream (any token is accepted)."""
    port = free_port()
    p = _start("bun", [bun_exe(), os.path.join(BUN_DIR, "server.js"), str(port),
                       str(queue_limit)], cpu=cpu)
    wait_port(port, p, name="bun")
    srv = Server("bun", p, port, [p.pid])
    srv.tokens = {("bench", "subscriber"): "bun", ("bench", "publisher"): "bun"}
    return srv


def start_nchan(cpu=SERVER_CPU, conns=20000):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists("/usr/lib/nginx/modules/ngx_nchan_module.so"):
        raise SystemExit("bench: libnginx-mod-nchan is not installed")
    port = free_port()
    prefix = os.path.join(tmpdir(), "nginx-%d" % port)
    os.makedirs(prefix)
    with open(NCHAN_CONF) as f:
        conf = f.read()
    conf = (conf.replace("@PREFIX@", prefix).replace("@PORT@", str(port))
            .replace("@CONNS@", str(conns)))
    conf_path = os.path.join(prefix, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    p = _start("nginx", [exe, "-p", prefix, "-c", conf_path, "-e", os.path.join(prefix, "error.log")],
               cpu=cpu)
    wait_port(port, p, name="nginx")
    deadline = time.time() + 5
    workers = []
    while not workers and time.time() < deadline:
        workers = children(p.pid)
        time.sleep(0.05)
    if not workers:
        raise SystemExit("bench: nginx started no worker")
    # Master and worker both count: the master is idle, the worker works.
    return Server("nchan", p, port, [p.pid] + workers)


def token(srv, role, app="bench", private="bench_private", ttl=86400):
    key = (app, role)
    if key in srv.tokens:
        return srv.tokens[key]
    url = ("http://127.0.0.1:%d/lightstream/services/auth/generatetoken?publicKey=%s"
           "&privateKey=%s&roles=%s&ttl=%d" % (srv.port, app, private, role, ttl))
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read().decode())
    value = body["data"]["value"]
    srv.tokens[key] = value
    return value


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def loadgen(build, srv, subscribers, rate=0.0, seconds=3.0, warmup=1.0, hold=0.0,
            selectivity=None, slow_fraction=0.0, idle=False, check=False, procs=None,
            payload=100, cpu=LOAD_CPU, extra=()):
    """Run ls-loadgen against srv; returns its JSON result (a dict) with
    the load average at the start added as "load_avg"."""
    exe = os.path.join(build, "bench", "loadgen", "ls-loadgen")
    argv = [exe, "--port", str(srv.port), "--subscribers", str(subscribers),
            "--rate", str(rate), "--seconds", str(seconds), "--warmup", str(warmup),
            "--hold", str(hold), "--slow-fraction", str(slow_fraction),
            "--payload-bytes", str(payload)]
    for pid in srv.pids:
        argv += ["--server-pid", str(pid)]
    if procs:
        argv += ["--procs", str(procs)]
    if selectivity is not None:
        argv += ["--selectivity", str(selectivity)]
    if check:
        argv += ["--check"]
    if srv.kind == "nchan":
        argv += ["--target", "nchan", "--pub-http", "--pub-path", "/pub/fan",
                 "--path", "/sub2/fan/idle" if idle else "/sub/fan"]
    else:
        argv += ["--target", "lightstream", "--app", "bench", "--owner", "bench",
                 "--token", token(srv, "subscriber"), "--pub-token", token(srv, "publisher"),
                 "--stream", "fan", "--pub-stream", "fan"]
        if idle:
            argv += ["--stream", "idle"]
    argv += list(extra)
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", cpu] + argv
    load = load_average()
    timeout = 300 + seconds + warmup + hold + subscribers / 100.0
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise SystemExit("bench: ls-loadgen failed (exit %d): %s" % (r.returncode, r.stderr.strip()))
    res = json.loads(lines[-1])
    res["target"] = srv.kind  # ls-loadgen knows the protocol, not the server
    res["load_avg"] = load
    res["exit"] = r.returncode
    if srv.proc.poll() is not None:
        res["server_exited"] = srv.proc.returncode
    return res
