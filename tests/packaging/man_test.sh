#!/usr/bin/env bash
# The generated man pages render without groff warnings (what lintian checks), name the program
# with a whatis line, and carry the program's options (they come from its --help).
# Usage: man_test.sh MAN_DIR   (the build's man/: <program>.<section>.gz)
set -euo pipefail
dir=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v man >/dev/null || { echo "SKIP: man (man-db) is not installed"; exit 77; }

declare -A option=([fikit-broker]=--policy [fikit-run]=--priority [fikit-calibrate]=--rounds
                   [fikit-audit]=--interval [fikit-top]=--starve-after)
n=0
for page in "$dir"/*.gz; do
  base=$(basename "$page" .gz) program=${base%.*}
  text=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>"$dir/.warnings.$$") ||
    fail "man could not render $page"
  warnings=$(cat "$dir/.warnings.$$"); rm -f "$dir/.warnings.$$"
  [ -z "$warnings" ] || fail "$page renders with warnings: $warnings"
  grep -q "^NAME" <<<"$text" || fail "$page has no NAME section"
  grep -A1 "^NAME" <<<"$text" | grep -Eq "^ +$program +- " || fail "$page has no whatis line"
  want=${option[$program]:-}
  [ -z "$want" ] || grep -q -- "$want" <<<"$text" || fail "$page does not document $want"
  n=$((n + 1))
done
[ $n -ge 3 ] || fail "only $n man pages in $dir"
echo "ok: $n man pages"
