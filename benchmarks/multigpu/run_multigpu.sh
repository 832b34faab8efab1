#!/usr/bin/env bash
# Multi-GPU on the simulated driver (issue 12), numbers only (nothing is asserted):
#  1. LP alone on GPU 1, then LP on GPU 1 beside an HP tenant on GPU 0, each for S seconds, under one
#     broker (fikit): the share of its alone rate LP keeps (each GPU is its own scheduling domain);
#  2. broker CPU (its scheduler thread and the whole process, % of one core) under one fixed load
#     (HP and LP on GPU 0) and idle, with 1, 2 and 8 simulated GPUs.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: benchmarks/multigpu/run_multigpu.sh [--build DIR] [--repeats N] [--seconds S]
  --build DIR   the build (default build)
  --repeats N   runs of part 1 (default 3; the median is reported)
  --seconds S   length of each measured window (default 3)
USAGE
}

build=build repeats=3 seconds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_multigpu.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
build=$(cd "$build" && pwd)
bin=$build/bin
tmp=$(mktemp -d /tmp/fikit-multigpu-XXXXXX)
sock=$tmp/broker.sock
export LD_LIBRARY_PATH=$build/sim FIKIT_SIM_MODE=timeslice
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$bin/fikit-broker" stop --socket "$sock" >/dev/null 2>&1 || true
  rm -f /dev/shm/fikit-mgbench-$$*
  rm -rf "$tmp"
}
trap cleanup EXIT

kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | tail -n 1; }
rate() { awk -v k="$(kv "$1" kernels)" -v ms="$(kv "$1" elapsed_ms)" 'BEGIN { printf "%.1f", k / (ms / 1000) }'; }
cpu() {  # scheduler_cpu_s process_cpu_s of the running broker
  "$bin/fikit-broker" status --socket "$sock" --json |
    python3 -c 'import json,sys; b=json.load(sys.stdin)["broker"]; print(b["scheduler_cpu_s"], b["process_cpu_s"])'
}
start_broker() {  # GPUs
  export FIKIT_SIM_GPU=/fikit-mgbench-$$-$1 FIKIT_SIM_DEVICES=$1
  "$bin/fikit-broker" start --socket "$sock" --policy fikit --switch-cost-us 200 --no-bpf \
    --metrics off --log "$tmp/broker-$1.log" --profile-dir "$tmp/profiles" >/dev/null
}
stop_broker() { "$bin/fikit-broker" stop --socket "$sock" >/dev/null; }
tenant() {  # priority name gpu out args...
  local prio=$1 name=$2 gpu=$3 out=$4
  shift 4
  CUDA_VISIBLE_DEVICES=$gpu "$bin/fikit-run" --priority "$prio" --name "$name" --socket "$sock" -- \
    "$bin/fikit-chain" "$@" >"$out" 2>"$out.err" &
  pids+=($!)
}
hp_args=(hp --requests 1000000 --kernels 10 --kernel-us 200 --gap-us 100 --request-gap-us 2000 --gap-sleep)
lp_args=(lp --seconds "$seconds" --kernel-us 500 --batch 4)
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "multi-GPU benchmark, simulated driver (timeslice), $(nproc) CPUs, commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo ?), $(date -u +%Y-%m-%d)"
echo
echo "1. LP on GPU 1: alone, then beside HP on GPU 0 ($seconds s each, $repeats runs)"
kept_list=()
for r in $(seq "$repeats"); do
  start_broker 2
  tenant low lp-alone 1 "$tmp/alone.out" "${lp_args[@]}"
  wait "${pids[-1]}"
  tenant high hp 0 "$tmp/hp.out" "${hp_args[@]}"
  hp_pid=${pids[-1]}
  sleep 0.5
  tenant low lp-beside 1 "$tmp/beside.out" "${lp_args[@]}"
  wait "${pids[-1]}"
  kill "$hp_pid"; wait "$hp_pid" 2>/dev/null || true
  stop_broker
  a=$(rate "$tmp/alone.out") b=$(rate "$tmp/beside.out")
  k=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", 100 * b / a }')
  kept_list+=("$k")
  # The policy's decisions for lp-beside (logged when it left): grants into an HP gap, grants at
  # full speed, time held for a busy level above. 0 fill and 0 held: no HP gap gated it.
  d=$(python3 - "$tmp/broker-2.log" <<'PY'
import json, re, sys
s = None
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r'"lp-beside"\) policy stats: (\{.*\})\s*$', line)
    if m:
        s = json.loads(m.group(1))
if s:
    print("grants fill %d full %d, held above-busy %.1f ms" % (s["grants_fill"], s["grants_full"], s["held_ns"]["above_busy"] / 1e6))
PY
)
  printf "   run %d: alone %s kernels/s, beside HP on GPU 0 %s kernels/s: kept %s%% (%s)\n" "$r" "$a" "$b" "$k" "$d"
done
printf "   median kept: %s%%\n" "$(printf '%s\n' "${kept_list[@]}" | median)"
echo
echo "2. broker CPU (% of one core) over $seconds s: load = HP and LP on GPU 0; idle = no tenant"
printf "   %-5s %14s %14s %14s %14s\n" GPUs "load sched" "load process" "idle sched" "idle process"
for n in 1 2 8; do
  start_broker "$n"
  read -r s0 p0 < <(cpu); sleep "$seconds"; read -r s1 p1 < <(cpu)
  idle=$(awk -v a="$s0" -v b="$s1" -v c="$p0" -v d="$p1" -v t="$seconds" 'BEGIN { printf "%14.2f %14.2f", 100*(b-a)/t, 100*(d-c)/t }')
  tenant high hp 0 "$tmp/hp$n.out" "${hp_args[@]}"
  hp_pid=${pids[-1]}
  tenant low lp 0 "$tmp/lp$n.out" lp --seconds 600 --kernel-us 500 --batch 4
  lp_pid=${pids[-1]}
  sleep 0.5
  read -r s0 p0 < <(cpu); sleep "$seconds"; read -r s1 p1 < <(cpu)
  load=$(awk -v a="$s0" -v b="$s1" -v c="$p0" -v d="$p1" -v t="$seconds" 'BEGIN { printf "%14.2f %14.2f", 100*(b-a)/t, 100*(d-c)/t }')
  kill "$hp_pid" "$lp_pid"; wait "$hp_pid" "$lp_pid" 2>/dev/null || true
  stop_broker
  printf "   %-5s %s %s\n" "$n" "$load" "$idle"
done
