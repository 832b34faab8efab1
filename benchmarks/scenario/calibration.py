#!/usr/bin/env python3
"""Simulator against the H200: the scenario benchmark's real-model rows (Poisson arrivals) beside
the same settings measured on an NVIDIA H200, HP slowdown and LP share side by side, with the
simulator's deviation. Reads the JSON that run_scenarios.py writes next to its report.

  benchmarks/scenario/run_scenarios.py --suite models --arrivals poisson --out /tmp/s.md
  benchmarks/scenario/calibration.py /tmp/s.json --out benchmarks/results/sim-calibration-DATE.md
"""

import argparse
import json
import sys

# HP p50 x, p99 x, LP vs alone, LP vs time-slice, per pair and setting, from
# benchmarks/results/gpu-h200-2026-11-22-abad16f/results.md (two repeats) and
# gpu-h200-2026-12-02-e39daf5/results.md (one repeat): Poisson arrivals, mean think 3 ms,
# LP ResNet-50 training b64.
GPU_RUNS = ("abad16f", "e39daf5")
GPU = {
    ("bert-train", "time-slice"): [(1.48, 1.81, 0.66, 1.00), (1.43, 1.78, 0.68, 1.00)],
    ("bert-train", "MPS"): [(3.18, 3.70, 0.92, 1.39), (2.91, 3.67, 0.86, 1.26)],
    ("bert-train", "MPS prio"): [(2.27, 2.83, 0.87, 1.32), (2.22, 2.83, 0.88, 1.29)],
    ("bert-train", "fikit TS"): [(0.88, 0.98, 0.02, 0.02), (0.87, 0.96, 0.03, 0.05)],
    ("bert-train", "fikit MPS"): [(1.00, 1.07, 0.11, 0.16), (1.00, 1.11, 0.13, 0.19)],
    ("resnet-train", "time-slice"): [(1.62, 1.93, 0.70, 1.00), (1.59, 1.97, 0.73, 1.00)],
    ("resnet-train", "MPS"): [(3.12, 3.98, 0.92, 1.32), (2.97, 3.96, 0.94, 1.29)],
    ("resnet-train", "MPS prio"): [(2.22, 2.74, 0.90, 1.28), (2.17, 2.77, 0.91, 1.23)],
    ("resnet-train", "fikit TS"): [(0.90, 1.04, 0.03, 0.05), (0.88, 1.02, 0.04, 0.05)],
    ("resnet-train", "fikit MPS"): [(0.99, 1.08, 0.12, 0.17), (0.96, 1.05, 0.12, 0.17)],
}
HP_NAMES = {"bert-train": "BERT-base graph b8", "resnet-train": "ResNet-50 graph b8"}


def sim_setting(setting):
    """The GPU setting a simulator row stands for (fikit MPS at the default budget)."""
    if setting.startswith("fikit MPS"):
        return "fikit MPS" if ("n/a" in setting or "1.10" in setting) else None
    return setting


def dev(sim, gpu):
    return "%+.0f%%" % (100.0 * (sim / gpu - 1.0)) if sim is not None and gpu else "-"


def mean(xs):
    return sum(xs) / len(xs)


def table(rows):
    head = ("| HP (beside ResNet-50 train b64) | setting | HP p50 x GPU / sim (dev) "
            "| HP p99 x GPU / sim (dev) | LP vs alone GPU / sim (dev) "
            "| LP vs time-slice GPU / sim (dev) |")
    out = [head, "|" + "---|" * 6]
    within, total = 0, 0
    for r in rows:
        if r["arrivals"] != "poisson":
            continue
        key = (r["pair"], sim_setting(r["setting"]))
        if key not in GPU:
            continue
        g = [mean([run[i] for run in GPU[key]]) for i in range(4)]
        s = [r["p50"], r["p99"], r["lp_vs_alone"], r["lp_vs_ts"]]
        cells = []
        for i, (gv, sv) in enumerate(zip(g, s)):
            fmt = "%.2f" if i < 2 else "%.0f%%"
            scale = 1 if i < 2 else 100
            cells.append("%s / %s (%s)" % (fmt % (gv * scale), "-" if sv is None else
                                           fmt % (sv * scale), dev(sv, gv)))
            if sv is not None and gv and i != 3:
                total += 1
                within += abs(sv / gv - 1.0) <= 0.25
        out.append("| %s | %s | %s |" % (HP_NAMES[r["pair"]], r["setting"], " | ".join(cells)))
    out.append("")
    out.append("Within +-25%% of the GPU: %d of %d cells (HP p50, HP p99, LP vs alone)." %
               (within, total))
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", help="the .json run_scenarios.py wrote next to its --out report")
    p.add_argument("--out", help="write the table here too")
    p.add_argument("--header", default="", help="text put above the table (machine, commit)")
    a = p.parse_args()
    with open(a.json) as f:
        rows = json.load(f)["models"]
    text = (a.header + "\n\n" if a.header else "") + table(rows) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
