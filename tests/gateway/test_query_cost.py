"""The query cost budget end to end (docs/query.md "Cost budget",
docs/protocol.md SubscriptionEnded): a subscriber with the most expensive
legal queries is ended with SubscriptionEnded `query_too_costly` and keeps
its connection, while a query-less subscriber of the same stream goes on
receiving with its usual latency."""

import json
import re
import statistics
import time

import lstest
from gwlib import acc1_token, connect, send_masked_fast, serve, subscribe, url

BIG = 60000  # bytes of the text field: the message is close to the 64 KiB frame limit


def costly_queries():
    """Legal queries (≤ 64 nodes, ≤ 4 KiB, regexes ≤ 256 bytes) that cost
    seconds per 64 KiB message without a budget across the whole query."""
    def regexes(pattern, k):
        return {"where": {"or": [{"field": "s", "op": "match", "value": pattern % i}
                                 for i in range(k)]}}
    qs = [
        regexes("(?=\\w*+\\d%d)", 60),   # a possessive scan per start position
        regexes("(?=\\w*\\d%d)", 60),    # backtracking per start position
        regexes("(?:\\w+)+\\d%d", 60),   # nested quantifiers
        {"mode": "select", "path": "r",  # select over a large array, in with 256 values
         "where": {"or": [{"field": "", "op": "in", "value": list(range(1000, 1000 + 200))},
                          {"field": "", "op": "match", "value": "^(?:\\d+)+x$"}]}},
    ]
    for q in qs:
        assert len(json.dumps(q)) <= 4096, len(json.dumps(q))
    return qs


def publish(pub, seq, big=True):
    data = {"seq": seq, "ts": time.time()}
    if big:
        data["s"] = "a" * BIG
        data["r"] = [7] * 1500
    frame = json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s1", "data": data}})
    assert len(frame) < 65536, len(frame)
    send_masked_fast(pub, frame.encode())


def latencies(plain, pub, first, n):
    """Publish n messages 20 ms apart; return the plain subscriber's
    latencies (receive time minus the timestamp in the message)."""
    got = {}
    for k in range(n):
        publish(pub, first + k)
        deadline = time.time() + 10
        while first + k not in got:
            assert time.time() < deadline, "message %d not delivered within 10 s" % (first + k)
            m = plain.recv_type(5, timeout=10)
            got[m["data"]["seq"]] = time.time() - m["data"]["ts"]
        time.sleep(0.02)
    return [got[first + k] for k in range(n)]


def frames_until(ws, t, count, timeout=10):
    """Every frame ws receives until it has had count frames of type t."""
    frames = []
    deadline = time.time() + timeout
    while len([f for f in frames if f["t"] == t]) < count:
        left = deadline - time.time()
        assert left > 0, ("missing frames of type %d" % t, frames)
        frames.append(ws.recv(timeout=left))
    return frames


def metric(port, name):
    _, _, raw = lstest.http("GET", url(port, "/metrics"))
    m = re.search(r"^lightstream_%s (\S+)$" % name, raw.decode(), re.M)
    assert m, name
    return float(m.group(1))


def test_costly_subscriptions_ended_plain_subscriber_unaffected():
    _, port = serve()
    tok = acc1_token(port)
    plain, _ = connect(port, "acc1", tok)
    assert subscribe(plain, "acc1", "s1", rid="plain")["ok"]
    pub, _ = connect(port, "acc1", tok)

    # Baseline: the plain subscriber alone (the first few warm things up).
    base = latencies(plain, pub, 0, 18)[3:]

    # Two connections with the costliest queries we can write; one of them
    # also alone on stream s2 (its fabric topic goes with it).
    streams_before = metric(port, "streams")
    costly = []
    for i in range(2):
        ws, _ = connect(port, "acc1", tok)
        ids = {}
        for j, q in enumerate(costly_queries()):
            r = subscribe(ws, "acc1", "s1", query=q, rid="c%d" % j)
            assert r["ok"], r
            ids[r["subscriptionId"]] = "s1"
        costly.append((ws, ids))
    only = costly[0][0]
    r = subscribe(only, "acc1", "s2", query=costly_queries()[0], rid="s2")
    assert r["ok"], r
    costly[0][1][r["subscriptionId"]] = "s2"
    assert metric(port, "streams") == streams_before + 1

    lat = latencies(plain, pub, 100, 15)
    print("# plain subscriber latency (ms): alone median %.1f max %.1f; beside "
          "the costly queries median %.1f max %.1f" % (
              statistics.median(base) * 1e3, max(base) * 1e3,
              statistics.median(lat) * 1e3, max(lat) * 1e3))
    # The budget caps a query at about a millisecond per message, and the
    # subscription is ended at its first message. Unbounded, these queries
    # cost seconds per message; the margins are for a busy machine.
    assert statistics.median(lat) < statistics.median(base) + 0.05, (base, lat)
    assert max(lat) < max(base) + 0.5, (base, lat)

    # Each costly subscription on s1 was ended, with the code and its id,
    # and received no data.
    for ws, ids in costly:
        s1_ids = {s for s, stream in ids.items() if stream == "s1"}
        frames = frames_until(ws, 14, len(s1_ids))
        assert not [f for f in frames if f["t"] != 14], frames
        ended = {f["m"]["subscriptionId"]: f["m"] for f in frames}
        assert set(ended) == s1_ids, (ended, ids)
        for m in ended.values():
            assert m["error"]["code"] == "query_too_costly", m
            assert "budget" in m["error"]["message"], m

    # The connection stays: the ended subscription is gone, a new one works.
    ws = costly[1][0]
    gone = sorted(costly[1][1])[0]
    ws.send(8, {"subscriptionId": gone})
    assert ws.recv_type(9) == {"subscriptionId": gone, "ok": False}
    assert subscribe(ws, "acc1", "s1", rid="again")["ok"]
    publish(pub, 999, big=False)
    assert ws.recv_type(5)["data"]["seq"] == 999

    # The subscription alone on s2 is ended by a message on s2; its stream
    # (and fabric topic) goes with it.
    data = {"seq": 1, "ts": time.time(), "s": "a" * BIG}
    send_masked_fast(pub, json.dumps({"t": 5, "m": {"owner": "acc1", "stream": "s2",
                                                      "data": data}}).encode())
    m = only.recv_type(14)
    assert m["error"]["code"] == "query_too_costly", m
    assert costly[0][1][m["subscriptionId"]] == "s2", m
    lstest.wait_for(lambda: metric(port, "streams") == streams_before, timeout=5,
                    what="the stream released with its last subscription")
    assert metric(port, "queries_too_costly_total") == 9


def test_cheap_query_on_a_big_message_is_kept():
    """The budget is per evaluation, not a size limit: an ordinary query on
    the same large messages keeps its subscription and gets its data."""
    _, port = serve()
    tok = acc1_token(port)
    ws, _ = connect(port, "acc1", tok)
    q = {"where": {"and": [{"field": "seq", "op": "greaterEquals", "value": 0},
                           {"field": "s", "op": "match", "value": "^a+$"},
                           {"field": "s", "op": "contains", "value": "aaaa"}]}}
    assert subscribe(ws, "acc1", "s1", query=q, rid="q")["ok"]
    pub, _ = connect(port, "acc1", tok)
    for seq in range(5):
        publish(pub, seq)
        m = ws.recv_type(5)
        assert m["data"]["seq"] == seq
    assert metric(port, "queries_too_costly_total") == 0


lstest.main(globals())
