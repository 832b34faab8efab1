#!/usr/bin/env bash
# The Debian package: lintian reports no error; it installs with dpkg (groups fikit and fikit-hp
# created, nothing enabled); a broker and a tenant run from /usr/bin on the simulated driver; the
# installed unit verifies; `dpkg -r` removes it (the conffile stays), `dpkg -P` purges the rest.
# Needs root. It runs in a sandbox: a private mount namespace where /etc, /usr and /var are
# throw-away overlays of the machine's, so the package, its groups and the purge never reach the
# machine (and a fikit already there is hidden). Where that cannot be set up it runs on the
# machine itself, only if no fikit, /etc/fikit or /var/lib/fikit is there, and removes the groups
# it made. Run by `make test-deb`.
# Usage: deb_test.sh FIKIT.deb   (built by `make deb`; its build directory holds the sim driver)
set -euo pipefail
deb=$(realpath "$1")
build=$(dirname "$deb")
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "installs a package: run as root"

kNoSandbox=3
if [ -z "${FIKIT_DEB_TEST_SANDBOX:-}" ]; then
  if unshare --mount --propagation private true 2>/dev/null; then
    sandbox=$(mktemp -d)
    rc=0
    FIKIT_DEB_TEST_SANDBOX=$sandbox unshare --mount --propagation private -- bash "$0" "$@" || rc=$?
    rm -rf "$sandbox"
    [ $rc = $kNoSandbox ] || exit $rc
  fi
  echo "no sandbox (unshare or overlayfs unavailable): testing on the machine itself"
  if dpkg-query -W -f='${Status}' fikit 2>/dev/null | grep -q installed; then
    skip "fikit is installed on this machine; remove it first"
  fi
  # Purge removes /etc/fikit and /var/lib/fikit: never run where they hold someone's files.
  for d in /etc/fikit /var/lib/fikit; do
    [ ! -e $d ] || skip "$d exists; the purge would remove it"
  done
else
  for d in etc usr var; do
    mkdir -p "$FIKIT_DEB_TEST_SANDBOX/$d/upper" "$FIKIT_DEB_TEST_SANDBOX/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$FIKIT_DEB_TEST_SANDBOX/$d/upper,\
workdir=$FIKIT_DEB_TEST_SANDBOX/$d/work" "/$d" 2>/dev/null || exit $kNoSandbox
  done
  # Start from a machine without fikit: what the machine has of it is hidden, not touched.
  if dpkg-query -W fikit >/dev/null 2>&1; then dpkg -P fikit >/dev/null 2>&1 || true; fi
  rm -rf /etc/fikit /var/lib/fikit
  for g in fikit-hp fikit; do getent group $g >/dev/null && groupdel $g; done
  echo "sandbox: /etc, /usr and /var are overlays; the machine is not changed"
fi

tmp=$(mktemp -d)
gpu=/fikit-pkg-deb-$$
made_groups=()
for g in fikit fikit-hp; do getent group $g >/dev/null || made_groups+=("$g"); done
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  dpkg-query -W fikit >/dev/null 2>&1 && dpkg -P fikit >/dev/null 2>&1
  for g in "${made_groups[@]}"; do getent group "$g" >/dev/null && groupdel "$g"; done
  rm -rf "$tmp"
  rm -f "/dev/shm${gpu}"
}
trap cleanup EXIT

start=$(date +%s)
# Its temporary files (mldbm-elf-*) stay behind in TMPDIR: give it ours, which cleanup removes.
TMPDIR=$tmp lintian "$deb" >"$tmp/lintian" 2>&1 || true
grep '^E:' "$tmp/lintian" && fail "lintian reports errors (above)"
echo "lintian ($(($(date +%s) - start)) s): $(grep -c '^W:' "$tmp/lintian") warnings"
grep '^W:' "$tmp/lintian" || true

dpkg -i "$deb" >"$tmp/dpkg" 2>&1 || fail "dpkg -i: $(cat "$tmp/dpkg")"
for g in fikit fikit-hp; do getent group $g >/dev/null || fail "postinst did not create group $g"; done
for f in /usr/bin/fikit-broker /usr/bin/fikit-run /usr/bin/fikit-calibrate /usr/bin/fikit-top \
  /lib/systemd/system/fikit-broker.service /etc/fikit/broker.conf /usr/include/fikit/client.h \
  /usr/share/bash-completion/completions/fikit-run /usr/share/bash-completion/completions/fikit-top; do
  [ -e "$f" ] || fail "$f not installed"
done
# Minimal images tell dpkg not to unpack /usr/share/man (path-exclude): look in the package.
dpkg-deb -c "$deb" >"$tmp/contents"
for f in man8/fikit-broker.8.gz man1/fikit-run.1.gz man1/fikit-top.1.gz; do
  grep -q "usr/share/man/$f\$" "$tmp/contents" || fail "no $f in the package"
done
libfikit=$(dpkg -L fikit | grep '/libfikit\.so$')
[ -n "$libfikit" ] || fail "no libfikit.so in the package"
[ ! -e /etc/systemd/system/multi-user.target.wants/fikit-broker.service ] ||
  fail "the package enabled fikit-broker"
if [ -d /run/systemd/system ] && systemctl is-active --quiet fikit-broker; then
  fail "the package started fikit-broker"
fi
man_check=--man=no
[ ! -e /usr/share/man/man8/fikit-broker.8.gz ] || man_check=--man=yes
systemd-analyze verify $man_check /lib/systemd/system/fikit-broker.service >"$tmp/verify" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$tmp/verify")"

# A broker and a tenant from /usr/bin. fikit-run must find the packaged libfikit.so by itself;
# fikit-calibrate is the tenant (it makes CUDA calls, so it registers).
export LD_LIBRARY_PATH=$build/sim FIKIT_SIM_GPU=$gpu FIKIT_SIM_MODE=timeslice
unset FIKIT_LIB FIKIT_SOCKET
sock=$tmp/run/broker.sock
mkdir -m 0700 "$tmp/run"
fikit-broker start --foreground --socket "$sock" --substrate timeslice --switch-cost-us 200 \
  --profile-dir "$tmp/profiles" >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
up=0
for _ in $(seq 200); do
  kill -0 "$broker_pid" 2>/dev/null || fail "broker exited: $(cat "$tmp/broker.err")"
  if /usr/bin/fikit-broker status --socket "$sock" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
[ $up = 1 ] || fail "broker did not answer status in 20 s: $(cat "$tmp/broker.err")"
FIKIT_LOG=info /usr/bin/fikit-run --priority low --name pkg-deb --socket "$sock" -- \
  /usr/bin/fikit-calibrate --rounds 10 >"$tmp/tenant.out" 2>"$tmp/tenant.err" ||
  fail "tenant failed: $(cat "$tmp/tenant.err")"
grep -q "registered with the broker as tenant .* 'pkg-deb'" "$tmp/tenant.err" ||
  fail "the tenant did not register: $(cat "$tmp/tenant.err")"
/usr/bin/fikit-top --once --delay 0.2 --socket "$sock" >"$tmp/top.out" 2>&1 ||
  fail "fikit-top --once failed: $(cat "$tmp/top.out")"
grep -q "^fikit-top  broker pid $broker_pid" "$tmp/top.out" || fail "fikit-top: $(cat "$tmp/top.out")"
/usr/bin/fikit-broker stop --socket "$sock" >/dev/null 2>&1 || fail "fikit-broker stop failed"
wait "$broker_pid" || fail "broker exited with status $?: $(cat "$tmp/broker.err")"
broker_pid=""

dpkg -r fikit >"$tmp/dpkg" 2>&1 || fail "dpkg -r: $(cat "$tmp/dpkg")"
[ ! -e /usr/bin/fikit-broker ] && [ ! -e "$libfikit" ] || fail "dpkg -r left the programs"
[ -e /etc/fikit/broker.conf ] || fail "dpkg -r removed the conffile (only purge should)"
dpkg -P fikit >"$tmp/dpkg" 2>&1 || fail "dpkg -P: $(cat "$tmp/dpkg")"
[ ! -e /etc/fikit ] && [ ! -e /var/lib/fikit ] || fail "dpkg -P left /etc/fikit or /var/lib/fikit"
echo "ok: $(basename "$deb") linted, installed, ran, removed and purged"
