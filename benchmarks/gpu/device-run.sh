#!/usr/bin/env bash
# One call on a lent GPU machine: the GPU tests, the HP hook path micro-benchmark and/or the quick
# benchmark, all output under OUT.
#
#   benchmarks/gpu/device-run.sh BUILD OUT [all|tests|bench|idle|micro] [BUDGET_S]
#                                [-- run_bench.py options]
#   benchmarks/gpu/device-run.sh BUILD OUT run1a|run1b|run2|run3 [BUDGET_S] [-- options]
#
# The second form runs one named plan of campaign.py (issue 17) into OUT/NAME (3 files; run3:
# multigpu.md and its raw.jsonl); run1b then runs the GPU tests in its last 250 s (gpu-tests.log;
# FIKIT_SKIP_GPU_TESTS=1 leaves them out). benchmarks/gpu/README.md has the calls.
#
# OUT receives at most 8 files, one folder deep: device.log (GPU state before and after, what
# ran), gpu-tests.log, idle.md (HP idleness accuracy, idle_accuracy.py), micro.txt (the HP hook
# path on the simulated and the real driver, benchmarks/micro/run_hook_bench.py: its whole stdout
# and stderr), bench/{results.csv,raw.jsonl,results.md,results.png}. BUDGET_S (default 540) bounds
# the whole call: `tests` runs the GPU tests and then idle_accuracy.py (100 s of it); `all` gives
# the tests a third, idle 100 s, micro 60 s, the benchmark what is left minus 20 s.
# FIKIT_COMMIT names the commit in the results where the machine has no .git.
# GPU settings are only read (nvidia-smi queries), never changed.
set -uo pipefail
[ $# -ge 2 ] || { sed -n '2,20p' "$0"; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd) || exit 2
out=$2
what=${3:-all}
budget=${4:-540}
shift $(( $# < 4 ? $# : 4 ))
[ "${1:-}" = "--" ] && shift
case $what in run1a|run1b|run2|run3) mkdir -p "$out/$what" ;; *) mkdir -p "$out/bench" ;; esac
log=$out/device.log
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
gpu_state() {
  nvidia-smi --query-gpu=name,driver_version,compute_mode,persistence_mode,mig.mode.current,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu,memory.used --format=csv
}
export PYTHONUNBUFFERED=1

{
  echo "== $(date -Is) device-run $what, budget ${budget}s, build $build"
  uname -a
  gpu_state
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} >"$log" 2>&1

idle_box=100
[ "$what" = idle ] && idle_box=$((budget - 10))
if [ "$what" = all ] || [ "$what" = tests ]; then
  box=$((budget / 3))
  [ "$what" = tests ] && box=$((budget - 10 - idle_box))
  echo "== GPU tests (box ${box}s) at $(elapsed)s" | tee -a "$log"
  timeout --kill-after=20 "$box" "$repo/tests/gpu/run-gpu-tests.sh" "$build" >"$out/gpu-tests.log" 2>&1
  echo "tests exit $?: $(tail -1 "$out/gpu-tests.log")" | tee -a "$log"
fi

if [ "$what" = all ] || [ "$what" = tests ] || [ "$what" = idle ]; then
  echo "== HP idleness accuracy (box ${idle_box}s) at $(elapsed)s" | tee -a "$log"
  timeout --kill-after=20 "$idle_box" python3 "$repo/benchmarks/gpu/idle_accuracy.py" \
    --build "$build" --out "$out/idle.md" --budget-s $((idle_box - 15)) 2>&1 | tee -a "$log" | tail -8
fi

if [ "$what" = all ] || [ "$what" = micro ]; then
  micro_box=60
  [ "$what" = micro ] && micro_box=$((budget - 10))
  echo "== HP hook path micro-benchmark (box ${micro_box}s) at $(elapsed)s" | tee -a "$log"
  # Its stdout and stderr both go to micro.txt: the 2026-11-21 run kept stdout alone, and its
  # preloaded runs vanished without a word.
  timeout --kill-after=10 "$micro_box" python3 "$repo/benchmarks/micro/run_hook_bench.py" \
    --build "$build" >"$out/micro.txt" 2>&1
  echo "micro exit $?:" | tee -a "$log"
  sed -n '/^## HP hook path/,$p' "$out/micro.txt" | tee -a "$log"
fi

if [ "$what" = all ] || [ "$what" = bench ]; then
  left=$(( budget - $(elapsed) - 20 ))
  echo "== benchmark (budget ${left}s) at $(elapsed)s" | tee -a "$log"
  timeout --kill-after=30 $((left + 15)) python3 "$repo/benchmarks/gpu/run_bench.py" --quick \
    --build "$build" --out "$out/bench" --budget-s "$left" "$@" 2>&1 | tee -a "$log" | tail -40
fi

case $what in run1a|run1b|run2|run3)
  tests_box=0  # run1b leaves 250 s to the GPU tests, unless FIKIT_SKIP_GPU_TESTS=1
  [ "$what" = run1b ] && [ "${FIKIT_SKIP_GPU_TESTS:-0}" != 1 ] && tests_box=250
  left=$(( budget - $(elapsed) - 20 - tests_box ))
  echo "== plan $what (budget ${left}s) at $(elapsed)s" | tee -a "$log"
  timeout --kill-after=30 $((left + 15)) python3 "$repo/benchmarks/gpu/campaign.py" "$what" \
    --build "$build" --out "$out/$what" --budget-s "$left" "$@" 2>&1 | tee -a "$log" | tail -40
  if [ "$tests_box" -gt 0 ]; then
    box=$(( budget - $(elapsed) - 15 ))
    echo "== GPU tests (box ${box}s) at $(elapsed)s" | tee -a "$log"
    timeout --kill-after=20 "$box" "$repo/tests/gpu/run-gpu-tests.sh" "$build" >"$out/gpu-tests.log" 2>&1
    echo "tests exit $?: $(tail -1 "$out/gpu-tests.log")" | tee -a "$log"
  fi
  ;;
esac

{
  echo "== $(date -Is) done after $(elapsed)s; GPU state after:"
  gpu_state
} >>"$log" 2>&1
tail -3 "$log"
