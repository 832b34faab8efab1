#!/usr/bin/env bash
# systemd-analyze verify on the installed fikit-broker.service (works without systemd as PID 1).
# verify wants ExecStart's program and the Documentation= man page to exist: the unit is
# installed into a DESTDIR and checked with ExecStart pointing into it and MANPATH at its pages.
# Also: the settings issue 13 asks for are there, and the exposure that `systemd-analyze security`
# computes stays "OK" or better (at most 5.0; it was 4.6 when the unit was written).
# Usage: unit_test.sh BUILD_DIR CONFIGURED_UNIT
set -euo pipefail
build=$1 unit=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

root=$tmp/root
DESTDIR=$root cmake --install "$build" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$tmp/install.log")"
installed=$(find "$root" -name fikit-broker.service)
[ -n "$installed" ] || fail "no fikit-broker.service installed"
cmp -s "$installed" "$unit" || fail "installed unit differs from $unit"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$installed")
[ -x "$root$exec_start" ] || fail "ExecStart=$exec_start is not the installed broker"

mkdir "$tmp/check"
sed "s|^ExecStart=|ExecStart=$root|" "$installed" >"$tmp/check/fikit-broker.service"
# Builds without man pages (no help2man, sanitizer builds) leave Documentation= unchecked.
page=$(find "$root" -name 'fikit-broker.8*' | head -n1)
man_check=(--man=no)
[ -z "$page" ] || man_check=(--man=yes)
MANPATH=$(dirname "$(dirname "${page:-/x/y}")") \
  systemd-analyze verify "${man_check[@]}" "$tmp/check/fikit-broker.service" >"$tmp/verify" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$tmp/verify")"
[ ! -s "$tmp/verify" ] || fail "systemd-analyze verify warns: $(cat "$tmp/verify")"

for setting in Type=notify RuntimeDirectory=fikit StateDirectory=fikit Restart=on-failure \
  NoNewPrivileges=yes ProtectSystem=strict; do
  grep -qx "$setting" "$installed" || fail "the unit lacks $setting"
done
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$installed")
for cap in CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE; do
  grep -qw "$cap" <<<"$caps" || fail "CapabilityBoundingSet lacks $cap"
done
for cap in CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_SYS_MODULE; do
  ! grep -qw "$cap" <<<"$caps" || fail "CapabilityBoundingSet gives $cap"
done

security=$(systemd-analyze security --offline=yes "$tmp/check/fikit-broker.service" 2>&1 | tail -n1)
level=$(sed -n 's/.*exposure level for fikit-broker.service: \([0-9.]*\).*/\1/p' <<<"$security")
[ -n "$level" ] || fail "no exposure level in: $security"
awk -v l="$level" 'BEGIN { exit !(l <= 5.0) }' || fail "exposure grew above 5.0: $security"
echo "ok: verified; $security"
