#!/usr/bin/env python3
"""Why HP requests were slow: each co-located model run kept by `run_scenarios.py --keep DIR`,
read from the simulated driver's kernel traces (what the GPU ran, when) and the broker's decision
trace (what the policy saw and granted, when; both on CLOCK_MONOTONIC). Python standard library
only.

For every run: the HP requests' GPU-timed latency (from their first kernel's start: a request
whose think time was under 50 us merges with the next, 2x and no LP) over the alone run's median, and for the
requests over the budget where the time went: LP work already queued on the GPU when the HP came
back (granted before the return, still to run: by verdict), LP work granted after the return
(the broker saw the HP late), and how late the broker's record of the HP's first launch was.

examples:
  benchmarks/scenario/run_scenarios.py --suite models --pairs bert-train --settings \\
      'fikit MPS,time-slice' --keep /tmp/keep
  benchmarks/scenario/overlap_report.py /tmp/keep/run-*
"""

import argparse
import bisect
import glob
import os
import re
import statistics

REQUEST_GAP_NS = 50_000  # HP kernels further apart than this start a new request
VERDICTS = {0: "fit", 1: "measure", 2: "risky", 5: "budget", 6: "burst"}


def kernels(path):
    """(start_ns, end_ns) of every kernel in one process's sim trace, by start."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 5:
                out.append((int(p[3]), int(p[4])))
    return sorted(out)


def requests(ks):
    """(start, end) of each burst of kernels closer than REQUEST_GAP_NS: the HP's requests."""
    out = []
    for a, b in ks:
        if out and a - out[-1][1] <= REQUEST_GAP_NS:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(r) for r in out]


def decisions(path):
    """The broker's decision trace: HP records (t), LP grants (t, verdict) and LP completions
    (issue, done), matched in ring order (one LP stream)."""
    hp_seen, grants, done = [], [], []
    tenants = {}
    with open(path) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 7 or not p[0].isdigit():
                continue
            t, kind, tenant = int(p[0]), p[1], p[2]
            tenants.setdefault(tenant, set()).add(kind)
            if kind == "S":
                hp_seen.append((tenant, t))
            elif kind == "G":
                grants.append((tenant, t, int(p[4])))
            elif kind == "C":
                done.append((tenant, int(p[5]), int(p[6])))
    # The HP tenant submits without grants; the LP one is granted.
    lp = {g[0] for g in grants}
    hp = [t for t, kinds in tenants.items() if "S" in kinds and t not in lp]
    hp_times = sorted(t for ten, t in hp_seen if ten in hp)
    lp_grants = [(t, v) for ten, t, v in grants if ten in lp]
    lp_done = [(i, d) for ten, i, d in done if ten in lp]
    return hp_times, lp_grants, lp_done


def run_report(prefix, alone_p50, budget, out):
    hp_path = glob.glob(prefix + "-hp.*")
    lp_path = glob.glob(prefix + "-lp.*")
    dec_path = glob.glob(prefix + "-decisions.csv*")
    if not hp_path or not lp_path:
        return
    reqs = requests(kernels(hp_path[0]))
    lp = kernels(lp_path[0])
    lp_starts = [k[0] for k in lp]
    slow = sorted(((e - s) / alone_p50, s, e, i) for i, (s, e) in enumerate(reqs))
    p50 = slow[len(slow) // 2][0]
    p99 = slow[min(len(slow) - 1, int(0.99 * len(slow)))][0]
    over = [r for r in slow if r[0] > budget]
    out.append("## %s\n" % os.path.basename(prefix))
    out.append("- %d HP requests, alone p50 %.0f us: GPU-timed slowdown p50 %.2f, p99 %.2f; "
               "%d over %.2f" % (len(reqs), alone_p50 / 1e3, p50, p99, len(over), budget))
    hp_seen, grants, done = decisions(dec_path[0]) if dec_path else ([], [], [])
    grant_t = [g[0] for g in grants]
    late = []
    for s, e in reqs:
        i = bisect.bisect_left(hp_seen, s - 1_000_000)
        if i < len(hp_seen) and hp_seen[i] < e:
            late.append(hp_seen[i] - s)
    if late:
        late.sort()
        out.append("- broker's record of a request's first launch after its first kernel began, "
                   "us: p50 %.0f, p90 %.0f, p99 %.0f" % tuple(
                       late[min(len(late) - 1, int(q * len(late)))] / 1e3 for q in (.5, .9, .99)))
    out.append("")
    out.append("| request | slowdown | LP on GPU during it, us | LP kernels started in it | queued at the "
               "return: grants (verdicts) | granted after the return | first launch seen after, us |")
    out.append("|---|---|---|---|---|---|---|")
    for x, s, e, index in sorted(over, reverse=True)[:12]:
        j = bisect.bisect_left(lp_starts, s - 50_000_000)
        overlap = started = 0
        for a, b in lp[j:]:
            if a > e:
                break
            overlap += max(0, min(b, e) - max(a, s))
            started += s < a < e
        # Grants made before the return whose launch completed after it (FIFO: the k-th grant is
        # the k-th completion), and grants made during the request.
        queued = {}
        n = min(len(grants), len(done))
        k = bisect.bisect_left(grant_t, s - 50_000_000)
        after = 0
        for g in range(k, n):
            t, v = grants[g]
            if t >= e:
                break
            if t < s and done[g][1] > s:
                queued[VERDICTS.get(v, str(v))] = queued.get(VERDICTS.get(v, str(v)), 0) + 1
            elif t >= s:
                after += 1
        i = bisect.bisect_left(hp_seen, s - 1_000_000)
        seen = "%.0f" % ((hp_seen[i] - s) / 1e3) if i < len(hp_seen) and hp_seen[i] < e else "-"
        q = ", ".join("%s %d" % kv for kv in sorted(queued.items())) or "none"
        out.append("| %d | %.2f | %.0f | %d | %d (%s) | %d | %s |" % (
            index + 1, x, overlap / 1e3, started, sum(queued.values()), q, after, seen))
    out.append("")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kept", nargs="+", help="run-PID folders that --keep wrote")
    p.add_argument("--budget", type=float, default=1.10, help="slowdown that counts as over "
                   "(default 1.10)")
    a = p.parse_args()
    out = []
    for d in a.kept:
        alone = None
        names = sorted(os.listdir(d))
        for name in names:
            m = re.match(r"(\d+)-model-alone\.\d+$", name)
            if m:
                lats = [e - s for s, e in requests(kernels(os.path.join(d, name)))]
                alone = statistics.median(lats) if lats else None
            m = re.match(r"(\d+-model)-hp\.\d+$", name)
            if m and alone:
                run_report(os.path.join(d, m.group(1)), alone, a.budget, out)
    print("\n".join(out) if out else "no co-located model runs with an alone run before them")


if __name__ == "__main__":
    main()
