#!/usr/bin/env bash
# Pack what a GPU call needs from a build directory into DEST (default .gpu-build in the repo,
# which .gitignore names), with debug info stripped, so that it fits the device
# tool's 64 MiB carry limit (the broker alone is ~38 MB with its debug info).
#
#   benchmarks/gpu/pack-build.sh [BUILD] [DEST]
#
# DEST gets bin/ (fikit-broker, fikit-run, fikit-calibrate, fikit-chain), lib/ (libfikit.so),
# sim/ (the simulated driver, for `--sim` and the hook micro-benchmark) and tests/ (the GPU tests'
# programs), and the commit it was built from in DEST/COMMIT. The build's targets are made first
# (ccache makes that quick when they are up to date).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
dest=${2:-$repo/.gpu-build}
targets="fikit-broker fikit-run fikit-calibrate fikit-chain fikit fikit_simcuda"
targets="$targets $(cmake --build "$build" --target help 2>/dev/null |
  grep -oE '(gpu_runtime_launch|fikit_bpf_gpu_workload|fikit_bench_hook)' | sort -u | tr '\n' ' ')"
cmake --build "$build" -j2 --target $targets
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/sim" "$dest/tests"
cp -a "$build"/bin/. "$dest/bin/"
cp -a "$build"/lib/. "$dest/lib/"
cp -a "$build"/sim/libcuda.so* "$dest/sim/" 2>/dev/null || true
for t in gpu_runtime_launch fikit_bpf_gpu_workload; do
  [ -e "$build/tests/$t" ] && cp -a "$build/tests/$t" "$dest/tests/"
done
[ -e "$build/benchmarks/micro/fikit_bench_hook" ] && mkdir -p "$dest/benchmarks/micro" &&
  cp -a "$build/benchmarks/micro/fikit_bench_hook" "$dest/benchmarks/micro/"
find "$dest" -type f -perm -u+x -o -name '*.so*' -type f | while read -r f; do
  objcopy --strip-debug "$f" 2>/dev/null || true
done
git -C "$repo" rev-parse --short HEAD >"$dest/COMMIT" 2>/dev/null || echo unknown >"$dest/COMMIT"
du -sh "$dest"
