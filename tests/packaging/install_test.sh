#!/usr/bin/env bash
# Install into a DESTDIR, check the installed file list against the one CMake expects, then run a
# broker and a tenant from the installed tree (not from the build tree) on the simulated driver.
# Usage: install_test.sh BUILD_DIR EXPECTED_FILE_LIST BINDIR   (BINDIR: the configured full bindir)
set -euo pipefail
build=$1 expected=$2 bindir=$3

fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
gpu=/fikit-pkg-install-$$
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$tmp"
  rm -f "/dev/shm${gpu}"
}
trap cleanup EXIT

root=$tmp/root
DESTDIR=$root cmake --install "$build" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$tmp/install.log")"

# The installed files are exactly the expected ones.
(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | sort) >"$tmp/installed"
sort "$expected" >"$tmp/expected"
diff -u "$tmp/expected" "$tmp/installed" >"$tmp/diff" ||
  fail "installed files differ from $expected (- expected, + installed):
$(cat "$tmp/diff")"
for p in fikit-broker fikit-run fikit-calibrate; do
  [ -x "$root$bindir/$p" ] || fail "$root$bindir/$p is not executable"
done

# A broker and a tenant from the installed tree. The simulated driver is the build's (it is not
# installed); everything fikit is the DESTDIR's: fikit-run must find the installed libfikit.so and
# the broker the installed fikit-calibrate (it calibrates on timeslice).
export LD_LIBRARY_PATH=$build/sim FIKIT_SIM_GPU=$gpu FIKIT_SIM_MODE=timeslice
unset FIKIT_LIB FIKIT_SOCKET
bin=$root$bindir
sock=$tmp/run/broker.sock
mkdir -m 0700 "$tmp/run"
"$bin/fikit-broker" start --foreground --socket "$sock" --substrate timeslice \
  --profile-dir "$tmp/profiles" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
up=0
for _ in $(seq 200); do
  kill -0 "$broker_pid" 2>/dev/null || fail "installed broker exited: $(cat "$tmp/broker.err")"
  if "$bin/fikit-broker" status --socket "$sock" >"$tmp/status" 2>&1; then up=1; break; fi
  sleep 0.1
done
[ $up = 1 ] || fail "installed broker did not answer status in 20 s: $(cat "$tmp/broker.err")"
grep -q "calibrat\|switch-back" "$tmp/broker.err" ||
  fail "the broker logged no calibration (installed fikit-calibrate not run?): $(cat "$tmp/broker.err")"

FIKIT_LOG=info "$bin/fikit-run" --priority low --name pkg-install --socket "$sock" -- \
  "$build/bin/fikit-chain" lp --kernels 50 --kernel-us 20 >"$tmp/tenant.out" 2>"$tmp/tenant.err" ||
  fail "tenant failed (exit $?): $(cat "$tmp/tenant.err")"
grep -q "registered with the broker as tenant .* 'pkg-install'" "$tmp/tenant.err" ||
  fail "the tenant did not register with the installed broker: $(cat "$tmp/tenant.err")"
if [ -e "$bin/fikit-top" ]; then
  "$bin/fikit-top" --once --delay 0.2 --socket "$sock" >"$tmp/top.out" 2>&1 ||
    fail "installed fikit-top --once failed: $(cat "$tmp/top.out")"
  grep -q "^fikit-top  broker pid $broker_pid" "$tmp/top.out" ||
    fail "installed fikit-top did not show the broker: $(cat "$tmp/top.out")"
fi

"$bin/fikit-broker" stop --socket "$sock" >/dev/null 2>"$tmp/stop.err" ||
  fail "installed fikit-broker stop failed: $(cat "$tmp/stop.err")"
for _ in $(seq 100); do
  kill -0 "$broker_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$broker_pid" 2>/dev/null; then fail "broker still runs 10 s after stop"; fi
wait "$broker_pid" || fail "broker exited with status $?: $(cat "$tmp/broker.err")"
broker_pid=""
echo "ok: $(wc -l <"$tmp/installed") files installed; broker and tenant ran from $bin"
