"""`lightstream worker`: any program as a bus service (docs/bus.md, "Script
services"), with the example services of examples/services, called through
`lightstream call` and the gateway's HTTP bridge."""

import json
import os
import threading
import time
import urllib.parse

import lstest

EXAMPLES = os.path.join(lstest.SOURCE_ROOT, "examples", "services")
state = {}


def bus():
    if "fe" not in state:
        front, back = lstest.free_port(), lstest.free_port()
        state["fe"] = "tcp://127.0.0.1:%d" % front
        state["be"] = "tcp://127.0.0.1:%d" % back
        lstest.lightstream("broker", "--broker-frontend", state["fe"], "--broker-backend",
                           state["be"], *lstest.bus_broker_args(), name="broker",
                           wait_tcp=front)
    return state["fe"], state["be"]


def worker(service, *program, extra=()):
    fe, be = bus()
    w = lstest.lightstream("worker", "--broker-backend", be, "--service", service,
                           *lstest.bus_peer_args("worker"), *extra, "--", *program,
                           name="worker-" + service)

    def ready():
        r = lstest.run("call", "--broker-frontend", fe, *lstest.bus_peer_args("client"),
                       "mmi.service", service)
        return r.returncode == 0 and "200" in r.stdout
    lstest.wait_for(ready, timeout=15, what="%s registered" % service)
    return w


def call(*args):
    fe, _ = bus()
    return lstest.run("call", "--broker-frontend", fe, *lstest.bus_peer_args("client"), "--",
                      *args)


def log_has(w, text):
    lstest.wait_for(lambda: text in open(w.log_path).read(), timeout=5,
                    what="%r in %s" % (text, w.log_path))


def test_shell_service():
    w = worker("host", os.path.join(EXAMPLES, "uptime.sh"))
    r = call("host", "uptime")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["uptimeSeconds"] > 0 and len(data["load"]) == 3
    # A non-zero exit is an error reply; its stderr line goes to the log.
    r = call("host", "fail")
    # The caller sees the code; what went wrong is in the worker's log.
    assert r.returncode == 1 and "server_error" in r.stderr, r.stderr
    log_has(w, "the program exited with status 3")
    log_has(w, "asked to fail")  # its stderr
    # An error the program reports with a code of docs/protocol.md.
    r = call("host", "nope")
    assert r.returncode == 1 and "no operation nope" in r.stderr, r.stderr


def test_python_service():
    worker("words", os.path.join(EXAMPLES, "words.py"))
    r = call("words", "count", "the quick brown fox")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"words": 4, "characters": 19}
    r = call("words", "top", "b a b c b a", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [["b", 3], ["a", 2]]
    r = call("words", "count")
    assert r.returncode != 0 and "expected a text" in r.stderr, r.stderr


def test_timeout_kills_the_program_and_its_children():
    marker = os.path.join(lstest.tmpdir(), "slow-started")
    script = "echo $$ > %s; sleep 30 & sleep 30" % marker
    w = worker("slow", "sh", "-c", script, extra=("--timeout", "300"))
    t = time.time()
    r = call("slow", "anything")
    assert r.returncode == 1 and "timeout" in r.stderr, r.stderr
    log_has(w, "did not answer within 300 ms")
    assert time.time() - t < 5
    pid = int(open(marker).read())
    # The whole process group is gone: the shell and its background sleep.
    lstest.wait_for(lambda: not any(_pgid(p) == pid for p in _pids()), timeout=5,
                    what="the program's process group killed")


def test_crash_and_concurrency():
    log = os.path.join(lstest.tmpdir(), "spans")
    script = ('read line; start=$(date +%%s.%%N); sleep 0.6; '
              'echo "$start $(date +%%s.%%N)" >> %s; echo "{\\"ok\\":true}"' % log)
    worker("par", "sh", "-c", script, extra=("--workers", "3"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(call("par", "x")))
               for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r.returncode == 0 and json.loads(r.stdout) == {"ok": True} for r in results)
    spans = [tuple(map(float, l.split())) for l in open(log)]
    assert len(spans) == 3
    # The three ran at the same time: each started before any finished.
    assert max(s for s, _ in spans) < min(e for _, e in spans), spans
    w = worker("crash", "sh", "-c", "kill -9 $$")
    r = call("crash", "x")
    assert r.returncode == 1 and "server_error" in r.stderr, r.stderr
    log_has(w, "killed by signal 9")


def test_http_bridge_reaches_a_script_service():
    back, port = lstest.free_port(), lstest.free_port()
    be = "tcp://127.0.0.1:%d" % back
    data = os.path.join(lstest.tmpdir(), "bridge")
    os.makedirs(data)
    cfg = os.path.join(lstest.tmpdir(), "bridge.json")
    with open(cfg, "w") as f:
        json.dump({"gateway": {"service_allowlist": ["auth/generatetoken", "words/count"]}}, f)
    lstest.lightstream("serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port,
                       "--data", data, "--broker-backend", be, *lstest.bus_broker_args(),
                       name="serve-bridge", wait_tcp=port)
    lstest.lightstream("worker", "--broker-backend", be, "--service", "words",
                       *lstest.bus_peer_args("worker"), "--",
                       os.path.join(EXAMPLES, "words.py"),
                       name="worker-bridge")
    url = "http://127.0.0.1:%d/lightstream/services/words/count?args=%s" % (
        port, urllib.parse.quote(json.dumps(["to be or not to be"])))

    def answered():
        status, body = lstest.http_json("GET", url)
        return status == 200 and body
    body = lstest.wait_for(answered, timeout=15, what="bridge answer")
    assert body["data"] == {"words": 6, "characters": 18}, body
    # Not on the allow-list: 404, the worker is never asked.
    status, body = lstest.http_json("GET", url.replace("/count?", "/top?"))
    assert status == 404, (status, body)


def test_broadcast_to_every_worker_with_one_killed():
    """docs/bus.md, "Broadcast": `call --all` reaches each of 3 workers and
    collects every answer into one; a worker killed while it runs is
    reported as failed, the others' results are all there."""
    workers = []
    for name in ("w1", "w2", "w3"):
        marker = os.path.join(lstest.tmpdir(), "bcast-%s.pid" % name)
        script = ('read line; echo $$ > %s; sleep 0.8; '
                  'printf \'{"worker":"%s","got":%%s}\\n\' "$line"' % (marker, name))
        w = worker("cache", "sh", "-c", script, extra=("--workers", "1"))
        workers.append((name, w, marker))
    # Three processes, one service: wait until the broker counts three.
    fe, _ = bus()

    def three():
        r = lstest.run("call", "--broker-frontend", fe, *lstest.bus_peer_args("client"),
                       "mmi.stats")
        return r.returncode == 0 and \
            json.loads(r.stdout)["services"].get("cache", {}).get("workers") == 3
    lstest.wait_for(three, timeout=15, what="3 cache workers")
    result = {}

    def run_call():
        result["r"] = lstest.run("call", "--broker-frontend", fe, "--all",
                                 *lstest.bus_peer_args("client"), "--", "cache",
                                 "invalidate", "user:42")
    th = threading.Thread(target=run_call)
    th.start()
    # Kill the third worker's process while its part runs.
    victim = workers[2][1]
    lstest.wait_for(lambda: os.path.exists(workers[2][2]), timeout=10,
                    what="the third worker's program running")
    victim.kill9()
    th.join(30)
    r = result["r"]
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    answers = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(answers) == 3, answers
    ok = sorted(a["result"]["worker"] for a in answers if a["status"] == "ok")
    assert ok == ["w1", "w2"], answers
    for a in answers:
        if a["status"] == "ok":
            assert a["result"]["got"] == {"o": "invalidate", "a": ["user:42"]}
        else:
            assert a["status"] in ("error", "timeout") and a["error"]["code"], a
    assert len({a["worker"] for a in answers}) == 3


def _pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


lstest.main(globals())
