#!/bin/bash
# Nothing of the tests may stay in /dev/shm. `snapshot FILE` (ctest's first test) writes the fikit*
# names there; `check FILE` (its last) fails on each name that is new since and that no live
# process maps or holds open: a leak (a segment or simulated GPU its test did not remove).
set -u
mode=$1 file=$2
names() { find /dev/shm -maxdepth 1 -name 'fikit*' -printf '%f\n' 2>/dev/null | sort; }
in_use() {
  grep -qsF "/dev/shm/$1" /proc/[0-9]*/maps && return 0
  find /proc/[0-9]*/fd -lname "/dev/shm/$1*" -print -quit 2>/dev/null | grep -q .
}
case $mode in
  snapshot) names >"$file" ;;
  check)
    [ -f "$file" ] || { echo "no snapshot $file: run the whole suite"; exit 1; }
    leaked=0
    for n in $(comm -13 "$file" <(names)); do
      in_use "$n" && continue
      echo "left in /dev/shm by the tests: $n ($(stat -c %s "/dev/shm/$n" 2>/dev/null) bytes)"
      leaked=$((leaked + 1))
    done
    [ "$leaked" -eq 0 ] && echo "nothing of the tests left in /dev/shm"
    exit $((leaked > 0)) ;;
  *) echo "usage: $0 snapshot|check FILE" >&2; exit 2 ;;
esac
