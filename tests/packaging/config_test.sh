#!/usr/bin/env bash
# The example /etc/fikit/broker.conf documents exactly the options the broker has: every key
# (commented out or not) must be a long option in `fikit-broker start --help`, every long option
# of `start` (but --help, --foreground and the --config/--log-level every command takes) must be
# a key, and every line is a comment, blank or the [start] section header (the example changes
# nothing).
# Usage: config_test.sh FIKIT_BROKER BROKER_CONF
set -euo pipefail
broker=$1 conf=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

help=$("$broker" start --help 2>&1) || fail "$broker start --help failed: $help"
keys=$(sed -n 's/^# *\([a-z][a-z0-9-]*\) *=.*/\1/p' "$conf")
[ -n "$keys" ] || fail "no '# key = value' lines in $conf"
for k in $keys; do
  grep -q -- "--$k\b" <<<"$help" || fail "$conf names '$k', which 'fikit-broker start --help' lacks"
done
opts=$(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sed 's/^--//' | sort -u |
  grep -vx -e help -e foreground -e config -e log-level)
for o in $opts; do
  grep -qx -- "$o" <<<"$keys" || fail "$conf does not document '$o' of 'fikit-broker start --help'"
done
grep -qx '\[start\]' "$conf" || fail "$conf has no [start] section for the start options"
active=$(grep -v '^[[:space:]]*\(#.*\)\?$' "$conf" | grep -vx '\[start\]' || true)
[ -z "$active" ] || fail "$conf sets options (it must only document them): $active"
echo "ok: $(wc -w <<<"$keys") options documented in $conf"
