#!/usr/bin/env bash
# The unit's capability set is enough, and each tested capability is needed: the broker runs as
# systemd would run it (root, CapabilityBoundingSet= from the installed unit, NoNewPrivileges=),
# emulated with setpriv, on the simulated driver:
#   - with the unit's capabilities: the eBPF GPU-driver observer loads, and a tenant of another
#     uid registers (its segment is fchown'ed to it);
#   - without CAP_BPF and CAP_PERFMON: the observer does not load (the broker runs without it);
#   - without CAP_CHOWN: the other uid's tenant is not admitted (it runs unmanaged).
# MPS's CAP_SETUID/SETGID/KILL need a GPU and nvidia-cuda-mps-control: not checked here.
# Needs root (it creates a user, removed after) and an eBPF-capable kernel (else exit 77).
# Usage: caps_test.sh BUILD_DIR CONFIGURED_UNIT
set -euo pipefail
build=$1 unit=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (it runs the broker as its unit would, and creates a user)"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"

tmp=$(mktemp -d)
chmod 0755 "$tmp"
gpu=/fikit-pkg-caps-$$
user=fikit-caps-$$
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  id "$user" >/dev/null 2>&1 && userdel "$user"
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
  rm -f "/dev/shm${gpu}"
}
trap cleanup EXIT
# Other tests add users too: useradd fails while another holds /etc/passwd's lock.
for _ in 1 2 3 4 5; do
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user" 2>"$tmp/useradd" && break
  sleep 1
done
uid=$(id -u "$user") || fail "useradd $user: $(cat "$tmp/useradd")"
setpriv --reuid="$uid" --regid="$uid" --clear-groups -- test -r "$build/lib/libfikit.so" ||
  skip "the build is not readable by other users (the test's tenant runs as uid $uid)"
# The socket may be for group fikit only (the broker's tenant group, where it exists).
getent group fikit >/dev/null && usermod -a -G fikit "$user"

# CapabilityBoundingSet=CAP_BPF CAP_PERFMON ... -> bpf perfmon ...
unit_caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr '[:upper:]' '[:lower:]' | sed 's/cap_//g')
[ -n "$unit_caps" ] || fail "no CapabilityBoundingSet= in $unit"

export LD_LIBRARY_PATH=$build/sim FIKIT_SIM_GPU=$gpu FIKIT_SIM_MODE=timeslice
unset FIKIT_LIB FIKIT_SOCKET

# run_broker NAME CAP... : start the broker with only these capabilities; log in $tmp/NAME.log.
run_broker() {
  local name=$1 bounding=-all
  shift
  for c in "$@"; do bounding+=",+$c"; done
  local run=$tmp/$name
  mkdir -m 0755 "$run"
  setpriv --no-new-privs --inh-caps=-all --bounding-set="$bounding" -- \
    "$build/bin/fikit-broker" start --foreground --socket "$run/broker.sock" \
    --substrate timeslice --switch-cost-us 200 --profile-dir "$run/profiles" \
    >"$tmp/$name.out" 2>"$tmp/$name.log" &
  broker_pid=$!
  for _ in $(seq 200); do
    kill -0 "$broker_pid" 2>/dev/null || fail "broker ($name) exited: $(cat "$tmp/$name.log")"
    "$build/bin/fikit-broker" status --socket "$run/broker.sock" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "broker ($name) did not answer status in 20 s: $(cat "$tmp/$name.log")"
}
stop_broker() {
  "$build/bin/fikit-broker" stop --socket "$tmp/$1/broker.sock" >/dev/null 2>&1 ||
    fail "fikit-broker stop ($1) failed"
  wait "$broker_pid" || fail "broker ($1) exited with status $?: $(cat "$tmp/$1.log")"
  broker_pid=""
}
# tenant NAME: an LP tenant of the test user; return whether it registered.
tenant() {
  FIKIT_LOG=info setpriv --reuid="$uid" --regid="$uid" --init-groups -- \
    "$build/bin/fikit-run" --priority low --name "caps-$1" --socket "$tmp/$1/broker.sock" -- \
    "$build/bin/fikit-chain" lp --kernels 20 --kernel-us 20 >"$tmp/$1.tenant" 2>&1 ||
    fail "tenant ($1) failed: $(cat "$tmp/$1.tenant")"
  grep -q "registered with the broker as tenant .* 'caps-$1'" "$tmp/$1.tenant"
}
observer_loaded() { grep -q "GPU-driver observer loaded" "$tmp/$1.log"; }

# shellcheck disable=SC2086
run_broker unit $unit_caps
bpf=yes
if ! observer_loaded unit; then
  # Not the capabilities' fault if full root cannot load it either (no BTF, no eBPF).
  stop_broker unit
  # shellcheck disable=SC2046
  run_broker root-all $(setpriv --list-caps)
  observer_loaded root-all && fail "the observer loads as root, not with the unit's capabilities \
($unit_caps): $(grep -i observer "$tmp/unit.log")"
  stop_broker root-all
  bpf=no
  run_broker unit $unit_caps
fi
tenant unit || fail "a uid-$uid tenant was not admitted with the unit's capabilities: \
$(cat "$tmp/unit.tenant") / $(tail -n5 "$tmp/unit.log")"
stop_broker unit

if [ $bpf = yes ]; then
  no_bpf=$(sed 's/\<bpf\>//; s/\<perfmon\>//' <<<"$unit_caps")
  # shellcheck disable=SC2086
  run_broker no-bpf $no_bpf
  ! observer_loaded no-bpf || fail "the observer loaded without CAP_BPF and CAP_PERFMON"
  stop_broker no-bpf
fi

no_chown=$(sed 's/\<chown\>//' <<<"$unit_caps")
# shellcheck disable=SC2086
run_broker no-chown $no_chown
! tenant no-chown || fail "a uid-$uid tenant was admitted without CAP_CHOWN (is it still needed?)"
stop_broker no-chown

[ $bpf = yes ] && echo "ok: unit capabilities ($unit_caps) suffice; CAP_BPF+CAP_PERFMON and" \
  "CAP_CHOWN are each needed" && exit 0
echo "ok (no eBPF on this machine, observer not checked): CAP_CHOWN needed and enough for tenants"
