#!/bin/sh
# Run each libFuzzer target of BUILD_DIR (built from tests/fuzz with clang) for SECONDS, starting
# from its committed seed corpus. New inputs go to BUILD_DIR/corpus/<target>/ (the committed corpus
# is only read); a crash leaves BUILD_DIR/crash-* and fails the run. Usage: run-fuzz.sh BUILD_DIR
# SECONDS
set -eu
build=$1
seconds=$2
src=$(dirname "$0")
status=0
for target in fuzz_register fuzz_ring fuzz_name fuzz_key_name; do
  mkdir -p "$build/corpus/$target"
  echo "== $target: $seconds s"
  if ! "$build/$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$build/" \
      "$build/corpus/$target" "$src/corpus/$target" 2>"$build/$target.log"; then
    tail -n 40 "$build/$target.log"
    status=1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/$target.log" || true
done
exit $status
