"""`lightstream query`: output, exit codes and input forms of the command."""
import json
import os

import lstest

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")


def run_case(name):
    d = os.path.join(CASES, name)
    args = ["query", "--query", "@" + os.path.join(d, "query.json")]
    for m in ("message.json", "message.txt"):
        if os.path.exists(os.path.join(d, m)):
            args += ["--message", "@" + os.path.join(d, m)]
    return d, lstest.run(*args)


def check_case(name):
    d, r = run_case(name)
    err_file = os.path.join(d, "error.txt")
    if os.path.exists(err_file):
        want = open(err_file).read().strip()
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert r.stdout == "", r.stdout
        assert "invalid_query" in r.stderr and want in r.stderr, r.stderr
        return
    assert r.returncode == 0, (r.returncode, r.stderr)
    want = json.load(open(os.path.join(d, "expected.json")))
    assert json.loads(r.stdout) == want, (r.stdout, want)


def test_lisbon_match_and_no_match():
    check_case("lisbon_cold")
    check_case("lisbon_boundary_15")


def test_select_reduces_the_array():
    check_case("select_some")
    check_case("select_none")


def test_text_message_file():
    check_case("text_message_contains")


def test_invalid_query_exit_2_names_the_node():
    check_case("unknown_operator_named_node")
    check_case("limit_nodes_65")


def test_inline_arguments_and_text_message():
    q = '{"where": {"field": "", "op": "startsWith", "value": "hel"}}'
    r = lstest.run("query", "--query", q, "--message", "hello there")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"match": True, "data": "hello there"}
    r = lstest.run("query", "-q", q, "-m", '"help"')
    assert json.loads(r.stdout) == {"match": True, "data": "help"}
    r = lstest.run("query", "-q", q, "-m", "42")
    assert json.loads(r.stdout) == {"match": False, "data": None}


def test_query_from_stdin():
    q = '{"where": {"field": "n", "op": "between", "value": [1, 3]}}'
    r = lstest.run("query", "--query", "@-", "--message", '{"n": 3}', input=q + "\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"match": True, "data": {"n": 3}}


def test_usage_errors():
    r = lstest.run("query", "--query", "{}")
    assert r.returncode == 2 and "--message" in r.stderr
    r = lstest.run("query", "--bogus")
    assert r.returncode == 2 and "unknown option" in r.stderr
    r = lstest.run("query", "--query", "@/nonexistent/q.json", "--message", "{}")
    assert r.returncode == 2 and "cannot open" in r.stderr
    r = lstest.run("query", "--query", "{not json", "--message", "{}")
    assert r.returncode == 2 and "invalid_query" in r.stderr


def test_help():
    r = lstest.run("query", "--help")
    assert r.returncode == 0
    assert "--query" in r.stdout and "--message" in r.stdout


def test_query_too_costly_exit_3():
    """A query that runs out of its cost budget on the message: the error a
    subscription would be ended with, and exit 3 (not a silent no-match)."""
    for name in ("match_many_regexes_too_costly", "select_large_array_too_costly",
                 "match_effort_bounded"):
        d, r = run_case(name)
        assert r.returncode == 3, (name, r.returncode, r.stderr)
        assert r.stdout == "", r.stdout
        assert "query_too_costly" in r.stderr, r.stderr
    # The same query on a small message is evaluated as usual.
    q = os.path.join(CASES, "match_many_regexes_too_costly", "query.json")
    r = lstest.run("query", "--query", "@" + q, "--message", '{"s": "abc1"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"match": False, "data": None}


def test_regex_verbs_refused_exit_2():
    check_case("match_verb_no_jit")
    check_case("match_callout")
    check_case("in_257_values")


lstest.main(globals())
