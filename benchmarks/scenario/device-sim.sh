#!/usr/bin/env bash
# The scenario benchmark's real-model suite on a quiet many-core host: one of the lent GPU
# machines (the simulated driver needs no GPU; their 16 idle cores take the host's noise out of
# the broker's reaction times, which a shared 2-core VM does not). Each BUILD (a folder packed by
# benchmarks/gpu/pack-build.sh, or bin/ lib/ sim/ of a build) runs at the same time as the others,
# on its own sockets, into OUT/<name of BUILD>.md and .json; BUILD@OPTS runs it with
# --policy-opts OPTS (into OUT/<name>-<OPTS>.md). The rest of the arguments go to
# run_scenarios.py. Example (device tool, carrying both packed builds):
#
#   benchmarks/scenario/device-sim.sh "$OUT" .gpu-build .gpu-build@burst_max=0 .gpu-build-base -- \
#       --pairs resnet-train --repeat-models 3 --model-requests 150
set -euo pipefail
out=$1
shift
builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  builds+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
echo "host: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
name_of() { # a build's report name: its folder, without the dot, and its options
  local dir=${1%%@*} opts=
  [ "$dir" != "$1" ] && opts=-${1#*@}
  echo "$(basename "$dir" | sed 's/^\.//')$opts" | tr "=," "__"
}
pids=()
for b in "${builds[@]}"; do
  dir=${b%%@*}
  extra=()
  [ "$dir" != "$b" ] && extra=(--policy-opts "${b#*@}")
  python3 "$here/run_scenarios.py" --build "$dir" --suite models --out "$out/$(name_of "$b").md" \
    "${extra[@]}" "$@" >"$out/$(name_of "$b").log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
for b in "${builds[@]}"; do
  echo "== $(name_of "$b") ($(cat "${b%%@*}/COMMIT" 2>/dev/null || echo '?'))"
  grep -E "#[0-9]+ p50" "$out/$(name_of "$b").log" | tail -40 || true
done
exit $rc
