#!/usr/bin/env python3
"""A bus service in Python: `lightstream worker --service words --
examples/services/words.py`.

  count TEXT      -> {"words": N, "characters": N}
  top TEXT [K]    -> the K (default 3) most frequent words, [[word, n], ...]

The request is one JSON line on stdin; the reply is JSON on stdout; a
non-zero exit with {"code", "message"} on stdout is an error the caller
sees with that code (docs/protocol.md, "Error codes").
"""
import collections
import json
import sys


def fail(code, message):
    print(json.dumps({"code": code, "message": message}))
    sys.exit(1)


req = json.loads(sys.stdin.readline())
op, args = req.get("o"), req.get("a", [])
if not args or not isinstance(args[0], str):
    fail("bad_request", "argument 1: expected a text")
text = args[0]
words = text.split()
if op == "count":
    print(json.dumps({"words": len(words), "characters": len(text)}))
elif op == "top":
    k = args[1] if len(args) > 1 and isinstance(args[1], int) else 3
    print(json.dumps(collections.Counter(w.lower() for w in words).most_common(k)))
else:
    fail("not_found", "no operation words.%s" % op)
