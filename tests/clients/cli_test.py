"""The command-line clients against a real `lightstream serve`.

`lightstream token` asks the HTTP endpoint for tokens, `lightstream sub`
runs in the background and prints what `lightstream pub` publishes; exit
statuses and messages of the failure cases are what a user sees. The
reconnect test restarts the server (same data directory and port) under a
running `sub`.
"""

import json
import os
import signal
import subprocess
import time

import lstest

PORT = lstest.free_port()
URL = "ws://127.0.0.1:%d" % PORT
HTTP = "http://127.0.0.1:%d" % PORT
# the server's bus on tcp, for `lightstream admin`
BUS_FRONT = "tcp://127.0.0.1:%d" % lstest.free_port()
BUS_BACK = "tcp://127.0.0.1:%d" % lstest.free_port()
DATA = os.path.join(lstest.tmpdir(), "data")
EXAMPLE = os.path.join(lstest.BUILD_ROOT, "clients", "weather_sub")
LISBON_COLD = json.dumps({"mode": "any", "where": {"and": [
    {"field": "city", "op": "equals", "value": "Lisboa"},
    {"field": "temperature", "op": "less", "value": 15}]}})

_serve = None


def wait_ready():
    def ready():
        try:
            return lstest.http("GET", HTTP + "/readyz", timeout=2)[0] == 200
        except OSError:
            return False
    lstest.wait_for(ready, timeout=20, what="serve /readyz")


def start_serve(fixture=True):
    global _serve
    os.makedirs(DATA, exist_ok=True)
    args = ["serve", "--listen", "127.0.0.1:%d" % PORT, "--data", DATA,
            "--broker-frontend", BUS_FRONT, "--broker-backend", BUS_BACK]
    if fixture:
        args += ["--fixture", lstest.FIXTURE]
    _serve = lstest.lightstream(*args, name="serve", wait_tcp=PORT)
    wait_ready()


class Cli:
    """A background `lightstream ARGS...`: stdout and stderr in files."""

    def __init__(self, *args, stdin=None):
        n = len(lstest._procs)
        self.name = "cli-%s-%d" % (args[0], n)
        base = os.path.join(lstest.tmpdir(), self.name)
        self.out_path, self.log_path = base + ".out", base + ".err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            [lstest.LIGHTSTREAM] + [str(a) for a in args], stdout=self._out,
            stderr=self._err, stdin=stdin or subprocess.DEVNULL,
            cwd=lstest.tmpdir(), start_new_session=True)
        lstest._procs.append(self)  # stopped and shown on failure

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout=20):
        return self.popen.wait(timeout)

    def stop(self, timeout=5.0):
        return lstest.stop_popen(self.popen, timeout)

    def lines(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode().splitlines()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_log(self, text, count=1, timeout=15):
        def seen():
            if self.popen.poll() is not None and self.log_text().count(text) < count:
                raise AssertionError("%s exited with %s before logging %r:\n%s"
                                     % (self.name, self.popen.returncode, text,
                                        self.log_text()))
            return self.log_text().count(text) >= count
        lstest.wait_for(seen, timeout=timeout, what="%r in %s" % (text, self.name))

    def wait_lines(self, n, timeout=15):
        lstest.wait_for(lambda: len(self.lines()) >= n, timeout=timeout,
                        what="%d lines from %s" % (n, self.name))
        return self.lines()


def token(app, key, roles, *extra):
    r = lstest.run("token", "--url", HTTP, "--app", app, "--private-key", key,
                   "--roles", roles, *extra)
    assert r.returncode == 0, r.stderr
    value = r.stdout.strip()
    assert len(value) == 43, value
    return value


def sub(app, tok, target, *extra):
    return Cli("sub", "--url", URL, "--app", app, "--token", tok, *extra, target)


def pub(app, tok, target, message, *extra, input=None):
    return lstest.run("pub", "--url", URL, "--app", app, "--token", tok, *extra,
                      target, message, input=input)


def test_token_value_and_json():
    start_serve()
    value = token("svc1", "svc1_private", "publisher")
    assert value.replace("-", "").replace("_", "").isalnum()
    r = lstest.run("token", "--url", HTTP, "--app", "acc1", "--private-key",
                   "acc1_private", "--roles", "public,weather-reader", "--ttl", "60",
                   "-o", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["value"]) == 43
    assert sorted(data["roles"]) == ["public", "weather-reader"]
    assert data["webToken"] is False
    assert data["expiresAt"].endswith("Z")


def test_token_refused_and_usage():
    r = lstest.run("token", "--url", HTTP, "--app", "svc1", "--private-key", "wrong",
                   "--roles", "publisher")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "401" in r.stderr and r.stdout == ""
    r = lstest.run("token", "--url", HTTP, "--app", "svc1", "--private-key", "x")
    assert r.returncode == 2 and "--roles" in r.stderr
    r = lstest.run("token", "--url", HTTP, "--app", "svc1", "--private-key", "x",
                   "--roles", "a", "--ttl", "0")
    assert r.returncode == 2 and "--ttl" in r.stderr
    r = lstest.run("token", "--url", "http://127.0.0.1:%d" % lstest.free_port(),
                   "--app", "svc1", "--private-key", "x", "--roles", "a")
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_pub_sub_round_trip():
    tok = token("svc1", "svc1_private", "publisher")
    s = sub("svc1", tok, "svc1/weather", "--count", "1", "--timeout", "20")
    s.wait_log("subscribed to svc1/weather")
    msg = {"city": "Lisboa", "temperature": 12, "tags": ["sun"]}
    r = pub("svc1", tok, "svc1/weather", json.dumps(msg))
    assert r.returncode == 0, r.stderr
    assert s.wait() == 0, s.log_text()
    assert [json.loads(l) for l in s.lines()] == [msg]


def test_query_filters():
    tok = token("svc1", "svc1_private", "publisher")
    s = sub("svc1", tok, "svc1/weather", "--query", LISBON_COLD, "--count", "1",
            "--timeout", "20")
    s.wait_log("subscribed to svc1/weather")
    for m in ({"city": "Porto", "temperature": 9}, {"city": "Lisboa", "temperature": 20},
              {"city": "Lisboa", "temperature": 12}):
        r = pub("svc1", tok, "svc1/weather", json.dumps(m))
        assert r.returncode == 0, r.stderr
    assert s.wait() == 0, s.log_text()
    assert s.lines() == ['{"city":"Lisboa","temperature":12}']


def test_stdin_lines_in_order():
    tok = token("acc1", "acc1_private", "publisher")
    lines = ["one", "two", '{"n":3}', "4", "five with spaces", "", "six"]
    s = sub("acc1", tok, "acc1/s1", "--count", "6", "-o", "plain", "--timeout", "20")
    s.wait_log("subscribed to acc1/s1")
    r = pub("acc1", tok, "acc1/s1", "-", input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    assert "6 messages published" in r.stderr
    assert s.wait() == 0, s.log_text()
    # Text lines arrive as strings (plain: unquoted), JSON lines as JSON,
    # the empty line is skipped, order is kept.
    assert s.lines() == ["one", "two", '{"n":3}', "4", "five with spaces", "six"]


def test_many_stdin_lines_json_output():
    tok = token("acc1", "acc1_private", "publisher")
    n = 300
    s = sub("acc1", tok, "acc1/s1", "--count", str(n), "--timeout", "30")
    s.wait_log("subscribed to acc1/s1")
    r = pub("acc1", tok, "acc1/s1", "-",
            input="".join('{"i":%d}\n' % i for i in range(n)))
    assert r.returncode == 0, r.stderr
    assert s.wait(30) == 0, s.log_text()
    assert [json.loads(l)["i"] for l in s.lines()] == list(range(n))


def test_message_output_and_sigterm():
    tok = token("acc1", "acc1_private", "publisher")
    s = sub("acc1", tok, "acc1/s1", "-o", "message")
    s.wait_log("subscribed to acc1/s1")
    assert pub("acc1", tok, "acc1/s1", "[1,2]").returncode == 0
    line = json.loads(s.wait_lines(1)[0])
    assert line["owner"] == "acc1" and line["stream"] == "s1"
    assert line["data"] == [1, 2] and isinstance(line["sub"], str) and line["sub"]
    # Without --count or --timeout it runs until told to stop: exit 0.
    s.popen.send_signal(signal.SIGTERM)
    assert s.wait() == 0, s.log_text()

def test_auth_failure():
    s = sub("acc1", "A" * 43, "acc1/s1", "--timeout", "10")
    assert s.wait() == 1
    assert "authentication failed" in s.log_text()
    r = pub("acc1", "A" * 43, "acc1/s1", "1")
    assert r.returncode == 1 and "authentication failed" in r.stderr
    # A token of another account does not authenticate this one.
    tok = token("svc1", "svc1_private", "public")
    r = pub("acc1", tok, "acc1/s1", "1")
    assert r.returncode == 1 and "authentication failed" in r.stderr


def test_forbidden():
    tok = token("acc1", "acc1_private", "public")
    s = sub("acc1", tok, "svc1/weather", "--timeout", "10")
    assert s.wait() == 1
    assert "forbidden: svc1/weather" in s.log_text()
    r = pub("acc1", tok, "acc1/s1", '"x"')  # public: read-only on s1
    assert r.returncode == 1
    assert "forbidden" in r.stderr and "acc1/s1" in r.stderr


def admin(*args):
    r = lstest.run("admin", "--data", DATA, *args)  # serve's local bus
    assert r.returncode == 0, (args, r.stderr)


def test_sub_stops_when_its_read_permission_is_withdrawn():
    tok = token("acc1", "acc1_private", "public,weather-reader")
    s = sub("acc1", tok, "svc1/weather")
    s.wait_log("subscribed to svc1/weather")
    admin("role", "delete", "acc1", "weather-reader")
    try:
        assert s.wait() == 1
        assert "forbidden: svc1/weather: no read permission on svc1:weather" \
            in s.log_text(), s.log_text()
    finally:
        admin("import", lstest.FIXTURE)


def test_sub_stops_when_its_token_is_revoked():
    tok = token("acc1", "acc1_private", "public")
    s = sub("acc1", tok, "acc1/s1")
    s.wait_log("subscribed to acc1/s1")
    admin("token", "revoke", "acc1", "--private-key", "acc1_private", "--", tok)
    assert s.wait() == 1
    assert "token revoked" in s.log_text() and "4011" in s.log_text(), s.log_text()


def test_invalid_query():
    tok = token("acc1", "acc1_private", "public")
    bad = json.dumps({"mode": "any", "where": {"field": "a", "op": "nope", "value": 1}})
    s = sub("acc1", tok, "acc1/s1", "--query", bad, "--timeout", "10")
    assert s.wait() == 2
    assert "invalid query" in s.log_text() and "nope" in s.log_text()
    r = lstest.run("sub", "--url", URL, "--app", "acc1", "--token", tok, "--query",
                   "{not json", "acc1/s1")
    assert r.returncode == 2 and "invalid query" in r.stderr


def test_bad_arguments():
    for args in (["sub", "--app", "a", "--token", "t"],
                 ["sub", "--app", "a", "--token", "t", "nostream"],
                 ["sub", "--app", "a", "--token", "t", "--count", "x", "a/b"],
                 ["sub", "--app", "a", "--token", "t", "-o", "xml", "a/b"],
                 ["sub", "--url", "ftp://x", "--app", "a", "--token", "t", "a/b"],
                 ["sub", "a/b"],
                 ["pub", "--app", "a", "--token", "t", "a/b"],
                 ["pub", "--app", "a", "--token", "t", "a/b*", "1"],
                 ["pub", "--bogus"],
                 ["sub", "--listen", "127.0.0.1:1", "--app", "a", "--token", "t", "a/b"],
                 ["token", "--app", "a"]):
        r = lstest.run(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.strip(), args
    for cmd in ("sub", "pub", "token"):
        r = lstest.run(cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("Usage: lightstream " + cmd)
        assert "Exit status" in r.stdout


def test_urls_of_either_family_reach_the_gateway():
    """One port serves HTTP and WebSocket: `sub`/`pub` take the http://
    address the README prints, `token` takes the ws:// one."""
    r = lstest.run("token", "--url", URL, "--app", "acc1", "--private-key",
                   "acc1_private", "--roles", "publisher")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    s = Cli("sub", "--url", HTTP, "--app", "acc1", "--token", tok, "--count", "1",
            "--timeout", "20", "acc1/s1")
    s.wait_log("subscribed to acc1/s1")
    r = lstest.run("pub", "--url", HTTP, "--app", "acc1", "--token", tok, "acc1/s1", "7")
    assert r.returncode == 0, r.stderr
    assert s.wait() == 0 and s.lines() == ["7"], s.log_text()


def test_malformed_json_message_is_refused():
    """A typo in a JSON message is not silently sent as a text message."""
    tok = token("acc1", "acc1_private", "publisher")
    s = sub("acc1", tok, "acc1/s1", "--count", "2", "--timeout", "20")
    s.wait_log("subscribed to acc1/s1")
    r = pub("acc1", tok, "acc1/s1", '{"city":"Lisboa"')
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "not valid JSON" in r.stderr and "--text" in r.stderr, r.stderr
    r = pub("acc1", tok, "acc1/s1", "-", input='{"ok":1}\n{"broken":\n')
    assert r.returncode == 2 and "line 2 of stdin" in r.stderr, r.stderr
    # With --text the user says it is text: delivered as a JSON string.
    r = pub("acc1", tok, "acc1/s1", '{"city":"Lisboa"', "--text")
    assert r.returncode == 0, r.stderr
    assert s.wait() == 0, s.log_text()
    assert s.lines() == ['{"ok":1}', json.dumps('{"city":"Lisboa"')]
    r = lstest.run("query", "--query", '{"where":{"field":"","op":"exists"}}',
                   "--message", "[1,2")
    assert r.returncode == 2 and "not valid JSON" in r.stderr, r.stderr


def test_help_and_default_command():
    r = lstest.run("help", "sub")
    assert r.returncode == 0 and r.stdout.startswith("Usage: lightstream sub"), r.stdout
    r = lstest.run("help", "nope")
    assert r.returncode == 2 and "unknown command" in r.stderr
    r = lstest.run("--help")
    assert r.returncode == 0 and "runs `serve`" in r.stdout
    # `lightstream` with serve's options only is `lightstream serve`.
    port = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "default-cmd")
    os.makedirs(data, exist_ok=True)
    p = lstest.lightstream("--listen", "127.0.0.1:%d" % port, "--data", data,
                           name="default-serve", wait_tcp=port)
    status, _, _ = lstest.http("GET", "http://127.0.0.1:%d/healthz" % port)
    assert status == 200
    assert p.stop() == 0


def test_demo_brings_its_own_account():
    """`serve --demo` on an empty data directory: the demo account exists,
    tokens for it are issued, and the readings are realistic per city."""
    port = lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "demo-data")
    os.makedirs(data, exist_ok=True)
    p = lstest.lightstream("serve", "--demo", "--listen", "127.0.0.1:%d" % port,
                           "--data", data, name="demo-serve", wait_tcp=port)
    r = lstest.run("token", "--url", "http://127.0.0.1:%d" % port, "--app", "svc1",
                   "--private-key", "svc1_private", "--roles", "public")
    assert r.returncode == 0, r.stderr
    s = Cli("sub", "--url", "ws://127.0.0.1:%d" % port, "--app", "svc1", "--token",
            r.stdout.strip(), "--count", "100", "--timeout", "40", "svc1/weather")
    assert s.wait(60) == 0, s.log_text()
    temps = {}
    for line in s.lines():
        m = json.loads(line)
        temps.setdefault(m["city"], []).append(m["temperature"])
        assert 0 <= m["humidity"] <= 100, m
    assert set(temps) == {"Lisboa", "Porto", "Madrid", "Paris", "Berlin"}
    avg = {c: sum(v) / len(v) for c, v in temps.items()}
    # Each city near its own climate, and they differ: a filter such as
    # temperature < 15 keeps some cities and drops others.
    assert avg["Lisboa"] > avg["Berlin"] + 6, avg
    assert all(-5 < t < 30 for v in temps.values() for t in v), temps
    assert p.stop() == 0
    assert "created the demo account svc1" in open(p.log_path).read()


def test_config_errors_name_the_file_and_suggest():
    path = os.path.join(lstest.tmpdir(), "typo.json")
    with open(path, "w") as f:
        f.write('{"gateway": {"lisen": "127.0.0.1:1"}}')
    r = lstest.run("serve", "--config", path)
    assert r.returncode != 0
    assert path in r.stderr and "did you mean 'gateway.listen'" in r.stderr, r.stderr
    r = lstest.run("serve", "--config", "nope.json")
    assert r.returncode != 0
    assert "nope.json: cannot read the configuration file" in r.stderr, r.stderr
    assert ":-1" not in r.stderr
    # Other files a user names: what could not be read and why.
    r = lstest.run("sub", "--app", "a", "--token", "@/nonexistent/token", "a/b")
    assert r.returncode == 2, r.stderr
    assert "cannot read token @/nonexistent/token: No such file" in r.stderr, r.stderr
    r = lstest.run("admin", "import", "/nonexistent/fixture.json")
    assert r.returncode == 2, r.stderr
    assert "/nonexistent/fixture.json: cannot read the fixture: No such file" in r.stderr


def test_sub_retries_when_unavailable():
    """Close 1013 (the app server is unreachable) is "try again later": sub
    says so and keeps retrying instead of exiting."""
    port = lstest.free_port()
    args = ["gateway", "--listen", "127.0.0.1:%d" % port,
            "--broker-frontend", "tcp://127.0.0.1:%d" % lstest.free_port()]
    if "--bus-insecure" in lstest.run("gateway", "--help").stdout:
        args.append("--bus-insecure")
    lstest.lightstream(*args, name="gateway-no-bus", wait_tcp=port)
    s = Cli("sub", "--url", "ws://127.0.0.1:%d" % port, "--app", "acc1",
            "--token", "x" * 43, "--timeout", "30", "acc1/s1")
    s.wait_log("reconnecting", count=2, timeout=25)
    assert s.poll() is None, s.log_text()
    assert "unavailable" in s.log_text() and "close 1013" in s.log_text(), s.log_text()
    s.stop()


def test_commands_offer_only_the_options_they_use():
    """`broker`, `admin`, `call` and the others list (and accept) only the
    shared options they act on: no --listen for a broker."""
    unused = {"broker": ("--listen", "--store", "--redis", "--data"),
              "admin": ("--listen", "--store", "--redis"),
              "call": ("--listen", "--store", "--redis"),
              "worker": ("--listen", "--store", "--redis", "--data"),
              "appserver": ("--listen",)}
    for cmd, options in unused.items():
        r = lstest.run(cmd, "--help")
        assert r.returncode == 0, (cmd, r.stderr)
        for opt in options:
            assert opt + " " not in r.stdout, (cmd, opt)
        r = lstest.run(cmd, options[0], "x")
        assert r.returncode == 2 and "unrecognized option" in r.stderr, (cmd, r.stderr)
    r = lstest.run("serve", "--help")
    for opt in ("--listen", "--store", "--redis", "--data", "--bus-keys"):
        assert opt in r.stdout, opt


def test_call_to_an_unreachable_broker_says_where_it_asked():
    r = lstest.run("call", "--bus-insecure", "--broker-frontend",
                   "tcp://127.0.0.1:%d" % lstest.free_port(), "-t", "300", "auth", "x")
    assert r.returncode == 1
    assert "no answer within 300 ms" in r.stderr and "is a broker listening at" in r.stderr, r.stderr


def test_connection_refused():
    url = "ws://127.0.0.1:%d" % lstest.free_port()
    r = lstest.run("sub", "--url", url, "--app", "acc1", "--token", "t", "acc1/s1")
    assert r.returncode == 1 and "cannot connect" in r.stderr
    r = lstest.run("pub", "--url", url, "--app", "acc1", "--token", "t", "acc1/s1", "1")
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_token_timeout_on_silent_server():
    """A peer that accepts and never answers: --timeout ends the wait."""
    import socket
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        url = "http://127.0.0.1:%d" % srv.getsockname()[1]
        r = lstest.run("token", "--url", url, "--timeout", "1", "--app", "svc1",
                       "--private-key", "k", "--roles", "r")
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "no answer" in r.stderr, r.stderr

def test_web_token_with_secret():
    web = token("acc1", "acc1_private", "publisher", "--web")
    r = lstest.run("token", "--url", HTTP, "--app", "acc1", "--private-key",
                   "acc1_private", "--roles", "publisher", "--web", "-o", "json")
    assert json.loads(r.stdout)["webToken"] is True
    # Without the secret the challenge cannot be answered.
    s = sub("acc1", web, "acc1/s1", "--timeout", "10")
    assert s.wait() == 1
    assert "authentication failed" in s.log_text()
    assert "secret" in s.log_text()
    # A wrong secret is refused by the server.
    s = sub("acc1", web, "acc1/s1", "--secret", "wrong", "--timeout", "10")
    assert s.wait() == 1 and "authentication failed" in s.log_text()
    # With it: subscribe and publish both pass the challenge.
    s = sub("acc1", web, "acc1/s1", "--secret", "acc1_secret", "--count", "1",
            "--timeout", "20")
    s.wait_log("subscribed to acc1/s1")
    r = pub("acc1", web, "acc1/s1", "signed", "--secret", "acc1_secret")
    assert r.returncode == 0, r.stderr
    assert s.wait() == 0, s.log_text()
    assert s.lines() == ['"signed"']


def test_example_program_filters():
    if not os.path.exists(EXAMPLE):
        raise AssertionError("example not built: %s" % EXAMPLE)
    reader = token("acc1", "acc1_private", "weather-reader")
    writer = token("svc1", "svc1_private", "publisher")
    ex = Cli.__new__(Cli)
    n = len(lstest._procs)
    ex.name = "weather_sub-%d" % n
    base = os.path.join(lstest.tmpdir(), ex.name)
    ex.out_path, ex.log_path = base + ".out", base + ".err"
    ex._out, ex._err = open(ex.out_path, "wb"), open(ex.log_path, "wb")
    ex.popen = subprocess.Popen([EXAMPLE, URL, "acc1", reader], stdout=ex._out,
                                stderr=ex._err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    lstest._procs.append(ex)
    # Publish until the example is subscribed and shows the cold Lisbon.
    deadline = time.time() + 15
    while time.time() < deadline and not ex.lines():
        for m in ({"city": "Porto", "temperature": 3},
                  {"city": "Lisboa", "temperature": 11}):
            assert pub("svc1", writer, "svc1/weather", json.dumps(m)).returncode == 0
        time.sleep(0.2)
    ex.stop()
    lines = ex.lines()
    assert lines, ex.log_text()
    assert all(l == 'svc1/weather: {"city":"Lisboa","temperature":11}' for l in lines), lines


def test_tls_wss_and_https():
    """A TLS listener with a development certificate: verified with
    --ca-file, accepted with --insecure, refused without either."""
    certdir = os.path.join(lstest.tmpdir(), "tls")
    r = subprocess.run(["sh", os.path.join(lstest.SOURCE_ROOT, "deploy", "tls",
                                           "make-dev-cert.sh"), certdir],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    port, tport = lstest.free_port(), lstest.free_port()
    data = os.path.join(lstest.tmpdir(), "tls-data")
    os.makedirs(data)
    lstest.lightstream("serve", "--listen", "127.0.0.1:%d" % port, "--tls-listen",
                       "127.0.0.1:%d" % tport, "--tls-cert", cert, "--tls-key", key,
                       "--data", data, "--fixture", lstest.FIXTURE, name="serve-tls",
                       wait_tcp=tport)
    https, wss = "https://127.0.0.1:%d" % tport, "wss://127.0.0.1:%d" % tport
    common = ["--app", "svc1", "--private-key", "svc1_private", "--roles", "publisher"]
    r = lstest.run("token", "--url", https, "--ca-file", cert, *common)
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    assert len(tok) == 43
    r = lstest.run("token", "--url", https, "--insecure", *common)
    assert r.returncode == 0, r.stderr
    r = lstest.run("token", "--url", https, *common)
    assert r.returncode == 1 and "certificate" in r.stderr, r.stderr

    s = Cli("sub", "--url", wss, "--ca-file", cert, "--app", "svc1", "--token", tok,
            "--count", "1", "--timeout", "20", "svc1/weather")
    s.wait_log("subscribed to svc1/weather")
    r = lstest.run("pub", "--url", wss, "-k", "--app", "svc1", "--token", tok,
                   "svc1/weather", '{"secure":true}')
    assert r.returncode == 0, r.stderr
    assert s.wait() == 0, s.log_text()
    assert s.lines() == ['{"secure":true}']
    r = lstest.run("sub", "--url", wss, "--app", "svc1", "--token", tok, "svc1/weather")
    assert r.returncode == 1 and "certificate" in r.stderr, r.stderr
    # wss:// and https:// to the plain port: no certificate hint, the cause.
    for cmd, url in (("sub", "wss://127.0.0.1:%d" % port),
                     ("token", "https://127.0.0.1:%d" % port)):
        extra = ["--token", tok, "svc1/weather"] if cmd == "sub" else common[2:]
        r = lstest.run(cmd, "--url", url, "--app", "svc1", *extra)
        assert r.returncode == 1, (cmd, r.stderr)
        assert "does not speak TLS" in r.stderr, r.stderr
        assert "certificate" not in r.stderr, r.stderr


def test_history_command():
    tok = token("svc1", "svc1_private", "publisher")
    # svc1's publisher role covers svc1/weather
    r = lstest.run("history", "--url", HTTP, "--token", tok, "svc1/weather", "-o", "json")
    assert r.returncode == 0, r.stderr
    before = json.loads(r.stdout)["offset"]
    for n in (1, 2, 3):
        assert pub("svc1", tok, "svc1/weather", json.dumps({"n": n})).returncode == 0
    r = lstest.run("history", "--url", HTTP, "--token", tok, "svc1/weather",
                   "--since", str(before))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines == [{"offset": before + n, "data": {"n": n}} for n in (1, 2, 3)], lines
    assert "latest offset %d" % (before + 3) in r.stderr, r.stderr
    r = lstest.run("history", "--url", HTTP, "--token", tok, "svc1/weather",
                   "--since", str(before + 1), "--limit", "1", "-o", "data")
    assert r.returncode == 0 and r.stdout.splitlines() == ['{"n":2}'], (r.stdout, r.stderr)
    # refusals and usage
    reader = token("acc1", "acc1_private", "public")
    r = lstest.run("history", "--url", HTTP, "--app", "acc1", "--token", reader,
                   "svc1/weather")
    assert r.returncode == 1 and "403" in r.stderr, (r.returncode, r.stderr)
    r = lstest.run("history", "--url", HTTP, "--token", "B" * 43, "svc1/weather")
    assert r.returncode == 1 and "401" in r.stderr, (r.returncode, r.stderr)
    for bad in (["--limit", "0"], ["--limit", "1001"], ["--since", "-1"], ["-o", "xml"]):
        r = lstest.run("history", "--url", HTTP, "--token", tok, "svc1/weather", *bad)
        assert r.returncode == 2, (bad, r.stderr)
    r = lstest.run("history", "--url", HTTP, "svc1/weather")
    assert r.returncode == 2 and "--token" in r.stderr
    r = lstest.run("history", "--help")
    assert r.returncode == 0 and "OWNER/STREAM" in r.stdout


def test_sub_since_resumes_from_an_offset():
    tok = token("svc1", "svc1_private", "publisher")
    for n in (10, 11, 12):
        assert pub("svc1", tok, "svc1/weather", json.dumps({"n": n})).returncode == 0
    r = lstest.run("history", "--url", HTTP, "--token", tok, "svc1/weather", "-o", "json")
    data = json.loads(r.stdout)
    latest, epoch = data["offset"], data["epoch"]
    # the last two, from the history, then live
    s = sub("svc1", tok, "svc1/weather", "--since", str(latest - 2), "--count", "3",
            "--timeout", "20")
    s.wait_lines(2)
    assert [json.loads(l) for l in s.lines()] == [{"n": 11}, {"n": 12}]
    assert "recovered" in s.log_text() and epoch in s.log_text(), s.log_text()
    assert pub("svc1", tok, "svc1/weather", '{"n":13}').returncode == 0
    assert s.wait() == 0, s.log_text()
    assert [json.loads(l) for l in s.lines()] == [{"n": 11}, {"n": 12}, {"n": 13}]
    # a wrong epoch: live only, and said
    s = sub("svc1", tok, "svc1/weather", "--since", "0", "--epoch", "nosuchepoch",
            "--count", "1", "--timeout", "20")
    s.wait_log("could not be recovered")
    assert pub("svc1", tok, "svc1/weather", '{"n":14}').returncode == 0
    assert s.wait() == 0, s.log_text()
    assert [json.loads(l) for l in s.lines()] == [{"n": 14}]
    r = lstest.run("sub", "--url", URL, "--app", "svc1", "--token", tok, "--epoch", "e",
                   "svc1/weather")
    assert r.returncode == 2 and "--since" in r.stderr
    r = lstest.run("sub", "--url", URL, "--app", "svc1", "--token", tok, "--since", "x",
                   "svc1/weather")
    assert r.returncode == 2 and "--since" in r.stderr


def test_reconnect_after_restart():
    tok = token("svc1", "svc1_private", "publisher")
    s = sub("svc1", tok, "svc1/weather", "--count", "2", "--timeout", "60")
    s.wait_log("subscribed to svc1/weather")
    assert pub("svc1", tok, "svc1/weather", '"before"').returncode == 0
    s.wait_lines(1)
    assert _serve.stop() == 0
    s.wait_log("reconnecting")
    assert s.poll() is None, s.log_text()
    # Same port and data directory: accounts and tokens are still there.
    start_serve(fixture=False)
    s.wait_log("subscribed to svc1/weather", count=2, timeout=40)
    assert "reconnected to" in s.log_text()
    r = pub("svc1", tok, "svc1/weather", '"after"')
    assert r.returncode == 0, r.stderr
    assert s.wait(20) == 0, s.log_text()
    assert s.lines() == ['"before"', '"after"']
    # serve's history did not survive the restart: the resubscription says so
    assert "could not be recovered" in s.log_text(), s.log_text()


lstest.main(globals())
