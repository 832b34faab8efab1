#!/usr/bin/env python3
"""GPU test: libfikit sees every kernel launch of real programs, and changes no result.

    coverage_test.py [--build BUILD] [--policy P]   (exit 0 pass, 1 fail, 77 skip: no GPU or PyTorch)

With a private broker (policy fikit), the PyTorch workloads of coverage_child.py run three times:
without the library, as a high-priority tenant, and as a low-priority tenant (the path that waits
for the broker's grants; no HP runs, so each is granted). Checks, for each tenant run:
- eager inference (ResNet-50: cuDNN), eager training (ResNet-18: cuDNN backward, optimizer
  kernels), BERT (cuBLAS), Triton: launches the library saw == kernels the profiler saw in the same
  region of the same run, none passed through, and as many kernels as without the library;
- CUDA-graph replay (ResNet-50): one library launch per replay (a graph launch is one unit); in
  the capture window, the launches not passed through are exactly the ones torch.cuda.graph makes
  outside the capture (counted around a one-kernel capture), at least as many passed through as the
  captured graph has kernel nodes (where PyTorch exposes the graph), and an LP tenant waited for
  grants only for the launches outside the capture;
- outputs equal to the run without the library: bit for bit is expected; within 1e-6 relative
  (1e-5 for training, whose backward pass PyTorch does not make fully deterministic) passes;
- fikit-chain (driver API, its own kernels): launches the library saw (FIKIT_STATS_DUMP, written
  by libfikit_stats_dump.so at exit) grow by exactly the launches the extra requests made.
Prints one line per run: kernels, library launches, passed through, distinct kernel names (the
kernel keys the broker can tell apart), outputs; under the graph runs, a line on the capture.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

from gpu_harness import SKIP, Build, broker, skip_without_gpu

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "coverage_child.py")
MODES = ("eager-infer", "eager-train", "bert-eager", "graph", "triton")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return ok


def run_child(out_dir, tenant=None):
    """Run coverage_child.py for every mode (as a tenant if `tenant` is an argv prefix); return
    {mode: record}."""
    os.makedirs(out_dir, exist_ok=True)
    argv = (tenant or []) + [sys.executable, CHILD, out_dir] + list(MODES)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        check(False, f"{out_dir}: timed out after 1200 s")
        return {}
    recs = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            recs[rec["mode"]] = rec
    check(r.returncode == 0, f"{' '.join(argv)}: exited {r.returncode}:\n{r.stderr[-3000:]}")
    for mode in MODES:
        rec = recs.get(mode) or {"error": "no record"}
        if not check("error" not in rec, f"{mode} in {out_dir}: {rec.get('error')}"):
            recs.pop(mode, None)
    return recs


def same_outputs(mode, a, b):
    if a["sha256"] == b["sha256"]:
        return "identical"
    import torch

    ta, tb = torch.load(a["outputs"]), torch.load(b["outputs"])
    rel = float((ta.double() - tb.double()).norm() / max(float(tb.double().norm()), 1e-30))
    ok = rel <= (1e-5 if mode == "eager-train" else 1e-6)
    check(ok, f"{mode}: outputs differ from the run without the library (relative {rel:.3g})")
    return f"rel {rel:.2g}"


def capture_numbers(cap):
    """(launches gated in the capture window, the same for the one-kernel capture), or None."""
    win, base = cap.get("window") or {}, cap.get("baseline") or {}
    if "launches" not in win or "launches" not in base:
        return None
    return (win["launches"] - win["passed_through"], base["launches"] - base["passed_through"])


def check_capture(cap, label, lp):
    """Every launch captured into the graph passed through (was not gated); the launches that did
    not are exactly those PyTorch's torch.cuda.graph machinery makes outside the capture, counted
    around a one-kernel capture in the same process; an LP tenant waited for a grant for those
    alone."""
    nums = capture_numbers(cap)
    if not check(nums, f"{label}: no library counters for the capture window or the one-kernel "
                       f"capture: {cap}"):
        return
    (gated, outside), win, base = nums, cap["window"], cap["baseline"]
    check(win["launches"] > 0, f"{label}: the library saw no launch in the capture window: {win}")
    check(gated == outside,
          f"{label}: {gated} launches in the capture window were gated, expected {outside} (the "
          f"launches outside the capture, from a one-kernel capture); capture window {win}, "
          f"one-kernel capture {base}, captured graph {cap.get('kernel_nodes')} kernel nodes")
    nodes, base_nodes = cap.get("kernel_nodes"), cap.get("baseline_kernel_nodes")
    if nodes is not None:
        check(win["passed_through"] >= nodes,
              f"{label}: {win['passed_through']} launches passed through during the capture, "
              f"expected at least the captured graph's {nodes} kernel nodes: captured launches "
              f"were gated; capture window {win}")
    want = base_nodes if base_nodes is not None else cap.get("baseline_kernels", 1)
    check(base["passed_through"] >= want,
          f"{label}: the one-kernel capture passed through {base['passed_through']} launches, "
          f"expected {want}: {base}")
    if lp:
        check(win["lp_waits"] == outside,
              f"{label}: {win['lp_waits']} launches waited for a grant in the capture window, "
              f"expected {outside} (those outside the capture; a captured launch must not wait)")


def capture_line(cap):
    """One line on the capture for the table, or None."""
    nums = capture_numbers(cap)
    if not nums:
        return None
    win, base = cap["window"], cap["baseline"]
    nodes = cap.get("kernel_nodes")
    graph = (f"graph {nodes} kernel nodes" if nodes is not None
             else f"graph nodes not counted: {cap.get('note')}")
    return (f"  capture window: {win['launches']} launches, {win['passed_through']} passed "
            f"through, {nums[0]} gated, {win['lp_waits']} LP waits; {graph}; one-kernel capture: "
            f"{base['launches']} launches, {base['passed_through']} passed through, {nums[1]} "
            "gated")


def check_counts(mode, base, run, label, lp):
    d = run["fikit"]["delta"] or {}
    if not check(run["fikit"]["loaded"] and run["fikit"]["connected"],
                 f"{label}: library not loaded or not connected to the broker: {run['fikit']}"):
        return
    seen, passed = d.get("launches"), d.get("passed_through")
    if mode == "graph":
        check(seen == run["repeats"], f"{label}: library saw {seen} launches for {run['repeats']} "
                                      "graph replays")
        check_capture(run.get("capture") or {}, label, lp)
    else:
        check(seen == run["kernels"], f"{label}: library saw {seen} launches, the profiler "
                                      f"{run['kernels']} kernels")
        check(passed == 0, f"{label}: {passed} launches passed through while connected")
    check(run["kernels"] == base["kernels"], f"{label}: {run['kernels']} kernels with the library, "
                                             f"{base['kernels']} without")
    if mode == "triton":
        check(run.get("triton_correct"), f"{label}: the Triton kernel computed a wrong result")


def torch_workloads(build, sock, tmp):
    print(f"{'run':26s} {'kernels':>8s} {'library':>8s} {'passed':>7s} {'distinct':>9s}  outputs")
    base = run_child(os.path.join(tmp, "plain"))
    for prio, tag in (("high", "HP"), ("low", "LP")):
        runs = run_child(os.path.join(tmp, prio), build.tenant(prio, "cov-" + prio, sock, []))
        for mode in MODES:
            if mode not in base or mode not in runs:
                continue
            run, label = runs[mode], f"{mode} ({tag})"
            check_counts(mode, base[mode], run, label, lp=prio == "low")
            same = same_outputs(mode, base[mode], run)
            d = run["fikit"]["delta"] or {}
            print(f"{label:26s} {run['kernels']:8d} {d.get('launches', '-')!s:>8s} "
                  f"{d.get('passed_through', '-')!s:>7s} {run['distinct_kernels']:9d}  {same}", flush=True)
            if mode == "graph" and capture_line(run.get("capture") or {}):
                print(capture_line(run["capture"]), flush=True)


def chain_stats(build, sock, priority, args, tmp):
    """Run fikit-chain as a tenant; return the library's counters it dumped at exit."""
    dump = os.path.join(tmp, "chain.stats")
    if os.path.exists(dump):
        os.unlink(dump)
    env = dict(os.environ, LD_PRELOAD=build.stats_dump, FIKIT_STATS_DUMP=dump)
    r = subprocess.run(build.tenant(priority, "cov-chain", sock, [build.chain] + args), env=env,
                       capture_output=True, text=True, timeout=300)
    if not check(r.returncode == 0 and os.path.exists(dump),
                 f"fikit-chain {' '.join(args)}: exited {r.returncode}, no counters: {r.stderr[-2000:]}"):
        return None
    with open(dump) as f:
        return {k: int(v) for k, v in (t.split("=") for t in f.read().split())}


def chain_hp(requests):
    return ["hp", "--requests", str(requests), "--kernels", "10", "--kernel-us", "50", "--gap-us", "20",
            "--request-gap-us", "100"]


def chain_lp(kernels):
    return ["lp", "--kernels", str(kernels), "--kernel-us", "20"]


def chain_workloads(build, sock, tmp):
    """The program's warm-up and calibration launches are unknown here: compare two sizes."""
    for label, prio, small, large, extra in (
            ("fikit-chain hp (HP)", "high", chain_hp(10), chain_hp(30), 200),
            ("fikit-chain lp (LP)", "low", chain_lp(100), chain_lp(300), 200)):
        a, b = chain_stats(build, sock, prio, small, tmp), chain_stats(build, sock, prio, large, tmp)
        if not a or not b:
            continue
        seen = b["launches"] - a["launches"]
        check(seen == extra, f"{label}: the library saw {seen} more launches, the program made "
                             f"{extra} more")
        check(a["passed_through"] == 0 and b["passed_through"] == 0,
              f"{label}: launches passed through while connected: {a}, {b}")
        print(f"{label:26s} {extra:8d} {seen:8d} {b['passed_through']:7d} {'-':>9s}  (extra launches)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build")
    p.add_argument("--policy", default="fikit", help="the broker's policy")
    a = p.parse_args()
    skip_without_gpu()
    if importlib.util.find_spec("torch") is None:
        print("SKIP: this python3 has no PyTorch")
        return SKIP
    build = Build(a.build)
    build.require(build.lib, build.broker_bin, build.run_bin)
    with tempfile.TemporaryDirectory(prefix="fikit-coverage-") as tmp, broker(build, a.policy) as b:
        torch_workloads(build, b.socket, tmp)
        if check(os.path.exists(build.chain) and os.path.exists(build.stats_dump),
                 f"not built: {build.chain} or {build.stats_dump}"):
            chain_workloads(build, b.socket, tmp)
        status = b.status()
        print("broker status:", json.dumps(status)[:3000] if status else None)
    print(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failed check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
