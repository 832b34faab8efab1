#!/usr/bin/env python3
"""The named plans of the H200 measurement (issue 17), each one call of the device tool.

    campaign.py NAME --build BUILD --out DIR --budget-s S [--sim] [--dry-run] [-- run_bench.py options]
    campaign.py --list

NAME is one of PLANS below. run1a and run1b together are run 1 (three repeats of the co-located
fikit settings, both arrival processes); run2 is the MPS lever matrix; run3 the multi-GPU checks
(multigpu.py, for nvidia-h200-x2). Each writes at most 4 files into DIR (results.csv, raw.jsonl,
results.md; multigpu.md for run3), so that DIR under $OUT fits what the device tool brings back.
The figures are drawn where the results land (compare.py), not on the GPU host.

--sim runs the same plan on the simulated driver with the stand-in workloads (sim_workload.py),
fewer requests and no eager gaps to wait for: a check that every step starts, is managed and
reports, before device time is spent. Its numbers say nothing about fikit.
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_WORKLOADS = "resnet50:eager:1,resnet50:graph:8,bert-base:graph:8"
RUN1_SETTINGS = ["alone", "alone-fikit", "alone-mps", "lp-alone", "timeslice", "mps", "mps-prio",
                 "fikit-ts", "fikit-mps-b1.10", "fikit-mps-b1.05"]
LEVERS = [f"{kind}-t{pct}-p{prio}" for pct in (100, 50, 25, 75) for prio in (1, 0)
          for kind in ("mps", "fikit-mps")]

# Each plan: run_bench.py arguments (or the multi-GPU script), what it is for, and its cuts.
PLANS = {
    "run1a": dict(
        args=["--lps", "resnet50-train-b64", "--workloads", TORCH_WORKLOADS, "--arrivals", "exp,fixed",
              "--requests", "200", "--warmup", "20", "--lp-alone-s", "6", "--reps", "0,1",
              "--settings", ",".join(RUN1_SETTINGS),
              "--once", "alone-mps,alone-fikit,lp-alone,timeslice,mps,mps-prio"],
        what="run 1, repeats 0 and 1: every setting once, then again those whose p99 is reported "
             "(alone, fikit TS, fikit MPS at budgets 1.10 and 1.05); Poisson and "
             "periodic arrivals served by the same HP process one after the other"),
    "run1b": dict(
        args=["--lps", "resnet50-train-b64", "--workloads", TORCH_WORKLOADS, "--arrivals", "exp,fixed",
              "--requests", "200", "--warmup", "20", "--lp-alone-s", "6", "--reps", "2",
              "--settings", "alone,alone-fikit,lp-alone,timeslice,fikit-ts,fikit-mps-b1.10,fikit-mps-b1.05"],
        what="run 1, repeat 2 of the p99 settings with their references (alone, fikit alone, LP "
             "alone, time-slice); device-run.sh then runs the GPU tests (issue 17 item 4) in the "
             "call's last 250 s"),
    "run2": dict(
        args=["--lps", "resnet50-train-b64", "--workloads", "resnet50:graph:8,bert-base:graph:8",
              "--arrivals", "exp", "--requests", "200", "--warmup", "20", "--repeats", "1",
              "--settings", ",".join(["alone", "timeslice"] + LEVERS)],
        what="run 2, the lever matrix on MPS: LP CUDA_MPS_ACTIVE_THREAD_PERCENTAGE 100/50/25/75 x "
             "LP client priority 1/0 x without/with fikit, one repeat, Poisson arrivals, the two "
             "CUDA-graph HP models; 75% runs last, so a short call loses it first"),
    "run3": dict(
        script="multigpu.py",
        what="run 3 (nvidia-h200-x2): HP on GPU 0 with LP on GPU 1, HP and LP on both, "
             "CUDA_VISIBLE_DEVICES by index and by UUID, calibration per GPU, a second broker"),
}
SIM_ARGS = ["--sim", "--requests", "30", "--warmup", "5", "--lp-alone-s", "2"]


def command(name, build, out, budget_s, sim, extra):
    plan = PLANS[name]
    if "script" in plan:
        argv = [sys.executable, os.path.join(HERE, plan["script"]), "--build", build] + \
            (["--out", out] if out else []) + ["--budget-s", str(budget_s)] + (["--sim"] if sim else [])
        return argv + extra
    argv = [sys.executable, os.path.join(HERE, "run_bench.py"), "--quick", "--build", build] + \
        (["--out", out] if out else []) + ["--budget-s", str(budget_s), "--no-plot"] + plan["args"]
    return argv + (SIM_ARGS if sim else []) + extra


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("name", nargs="?", choices=sorted(PLANS))
    p.add_argument("--build", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build"))
    p.add_argument("--out", help="output directory (required unless --dry-run or --list)")
    p.add_argument("--budget-s", type=float, default=520)
    p.add_argument("--sim", action="store_true", help="on the simulated driver (a dry run that runs)")
    p.add_argument("--dry-run", action="store_true", help="print the plan's steps and commands")
    p.add_argument("--list", action="store_true", help="list the plans")
    a, extra = p.parse_known_args()  # the rest goes to run_bench.py (or multigpu.py)
    if a.list or not a.name:
        for n, plan in PLANS.items():
            print(f"{n}: {plan['what']}")
        return 0
    extra = [x for x in extra if x != "--"]
    if a.dry_run:
        extra = extra + ["--dry-run"]
    elif not a.out:
        p.error("--out is required")
    argv = command(a.name, a.build, a.out, a.budget_s, a.sim, extra)
    print(f"== {a.name}: {PLANS[a.name]['what']}", flush=True)
    print("   " + " ".join(argv), flush=True)
    return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main())
