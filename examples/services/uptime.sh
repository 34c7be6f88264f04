#!/bin/sh
# A bus service in shell: `lightstream worker --service host -- examples/services/uptime.sh`
# answers every operation with this machine's load and uptime. The request
# arrives on stdin as one JSON line ({"o": operation, "a": [...]}); this
# script only looks at the operation, which the worker also passes in
# $LIGHTSTREAM_OPERATION.
set -eu
read -r request || true
case "$LIGHTSTREAM_OPERATION" in
  uptime)
    read -r up idle < /proc/uptime
    read -r l1 l5 l15 rest < /proc/loadavg
    printf '{"uptimeSeconds":%s,"load":[%s,%s,%s]}\n' "$up" "$l1" "$l5" "$l15"
    ;;
  fail)
    echo "asked to fail" >&2
    exit 3
    ;;
  *)
    # An error with a code of docs/protocol.md: printed on stdout, exit non-zero.
    printf '{"code":"not_found","message":"no operation %s"}\n' "$LIGHTSTREAM_OPERATION"
    exit 1
    ;;
esac
