#!/usr/bin/env bash
# Run the GPU tests without ctest, for a GPU machine that cannot configure the project (it lacks
# the Debian packages the build needs: build elsewhere and bring the build directory).
#
#   tests/gpu/run-gpu-tests.sh [BUILD] [--policy P]
#
# Each test prints its own checks; the last line is "N passed, N failed, N skipped" and the exit
# status is 1 if any test failed. Without a GPU every test skips (exit 77 each).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd) || { echo "no build directory: ${1:-build}"; exit 2; }
shift || true
export FIKIT_BUILD_DIR=$build FIKIT_SOURCE_DIR=$(cd "$here/../.." && pwd) PYTHONUNBUFFERED=1
rt=$build/tests/gpu_runtime_launch
passed=0 failed=0 skipped=0 failures=""

run() {  # run NAME CMD...: one test, time-boxed
  local name=$1 rc
  shift
  echo "=== $name: $*"
  timeout --kill-after=30 1800 "$@"
  rc=$?
  case $rc in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failures="$failures $name" ;;
  esac
  echo "=== $name: exit $rc"
}

run gpu_runtime_launch_plain "$rt" --expect none
run gpu_runtime_launch python3 "$here/gpu_harness.py" --build "$build" "$@" -- "$rt" --expect connected
run gpu_runtime_launch_lp python3 "$here/gpu_harness.py" --build "$build" --priority low "$@" -- \
  "$rt" --expect connected
run gpu_runtime_launch_failopen python3 "$here/gpu_harness.py" --build "$build" --no-broker -- \
  "$rt" --expect failopen
run gpu_substrate_test python3 "$here/substrate_test.py" --build "$build"
run gpu_bpf_broker_test python3 "$here/bpf_broker_gpu_test.py" --build "$build" "$@"
run gpu_bpf_broker_mps_test python3 "$here/bpf_broker_gpu_test.py" --build "$build" --substrate mps "$@"
run gpu_coverage_test python3 "$here/coverage_test.py" --build "$build" "$@"
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
