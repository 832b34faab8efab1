#!/usr/bin/env bash
# Install the Debian packages fikit builds with, if any is missing. Needs root (or sudo) only when installing.
set -euo pipefail
pkgs=(nlohmann-json3-dev cmake g++ make pkg-config liburing-dev libgtest-dev libbenchmark-dev libbpf-dev bpftool
      clang llvm libelf-dev zlib1g-dev libcli11-dev prometheus python3-prometheus-client
      libncurses-dev tmux python3-matplotlib)
# Packaging (cmake/FikitInstall.cmake, tests/packaging/): man pages, completions, systemd-analyze,
# and for `make deb`/`make test-deb` dpkg-shlibdeps (dpkg-dev, file) and lintian.
pkgs+=(help2man gzip man-db bash-completion systemd dpkg-dev file lintian)
# ccache: the plain, package and sanitizer builds compile the same sources (Makefile).
pkgs+=(ccache)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
