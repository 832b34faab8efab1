"""Metrics of one scenario run, from the simulated driver's kernel traces, the workload's result
lines and the broker's log (Python standard library only).

Definitions (benchmarks/scenario/README.md):
  HP slowdown   co-located / alone, for the job (JCT) and the p50 and p99 request latency.
  LP harvest    LP busy time / HP idle time: the nominal GPU time of the LP kernels that ran inside
                HP's co-located run (prorated at its edges), over the GPU time HP leaves idle alone
                (its trace window minus its kernel time).
  hit rate      gaps of the HP tenant that lasted at least as long as predicted, of those predicted
                (the policy's own counters, logged by the broker when the tenant leaves).
"""

import glob
import json
import re

STATS_RE = re.compile(r'tenant \d+ \(pid \d+, "([^"]*)"\) policy stats: (\{.*\})\s*$')


def parse_kv(text):
    """The last key=value result line of a workload's output, as a dict of strings."""
    for line in reversed(text.splitlines()):
        if "=" in line:
            return dict(f.split("=", 1) for f in line.split() if "=" in f)
    return {}


def read_trace(prefix):
    """Kernels of every process traced under `prefix`: list of (tag, start_ns, end_ns)."""
    out = []
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5:
                    out.append((int(parts[2]), int(parts[3]), int(parts[4])))
    return out


def window(kernels):
    """(first start, last end) of a list of traced kernels, or None."""
    if not kernels:
        return None
    return min(k[1] for k in kernels), max(k[2] for k in kernels)


def lp_busy_in(kernels, durations_us, win):
    """Nominal GPU time (ns) of LP kernels inside `win`; kernel with tag n (from 1) runs
    durations_us[(n - 1) % len]; a kernel crossing an edge counts for the part inside."""
    lo, hi = win
    busy = 0.0
    for tag, start, end in kernels:
        if end <= lo or start >= hi or tag < 1:
            continue
        nominal = durations_us[(tag - 1) % len(durations_us)] * 1000.0
        span = max(end - start, 1)
        inside = min(end, hi) - max(start, lo)
        busy += nominal * min(1.0, inside / span)
    return busy


def policy_stats(log_text, tenant):
    """The last policy-stats object the broker logged for `tenant`, or {}."""
    found = {}
    for line in log_text.splitlines():
        m = STATS_RE.search(line)
        if m and m.group(1) == tenant:
            try:
                found = json.loads(m.group(2))
            except ValueError:
                pass
    return found


def ratio(a, b):
    return a / b if b else float("nan")


def lp_shares(busy, levels):
    """(Jain's index, least / equal share) of the LP tenants' GPU time `busy` when two or more
    share one level (`levels`: each tenant's priority), else (None, None)."""
    if len(busy) < 2 or len(set(levels)) != 1 or sum(busy) <= 0:
        return None, None
    n = len(busy)
    jain = sum(busy) ** 2 / (n * sum(b * b for b in busy))
    return jain, min(busy) / (sum(busy) / n)


def run_metrics(alone, coloc):
    """Compare a co-located run with the alone run of the same workload.

    alone, coloc: dicts with 'kv' (HP result line), 'hp_trace', and for coloc 'lp' (list of
    (trace kernels, durations_us)) and 'stats' (HP policy stats, maybe {}).
    """
    a, c = alone["kv"], coloc["kv"]
    busy_ns = float(a["busy_us"]) * 1000.0
    a_win = window(alone["hp_trace"])
    c_win = window(coloc["hp_trace"])
    idle_ns = (a_win[1] - a_win[0]) - busy_ns if a_win else 0.0
    busy = [lp_busy_in(k, d, c_win) if c_win else 0.0 for k, d in coloc["lp"]]
    lp_ns = sum(busy)
    jain, least = lp_shares(busy, coloc.get("lp_levels", []))
    st = coloc.get("stats") or {}
    scored = st.get("gap_hits", 0) + st.get("gap_misses", 0)
    return {
        "jct": ratio(float(c["jct_ms"]), float(a["jct_ms"])),
        "p50": ratio(float(c["p50_us"]), float(a["p50_us"])),
        "p99": ratio(float(c["p99_us"]), float(a["p99_us"])),
        "harvest": ratio(lp_ns, idle_ns),
        "lp_busy_ms": lp_ns / 1e6,
        "hp_idle_ms": idle_ns / 1e6,
        "hit": ratio(st.get("gap_hits", 0), scored) if scored else None,
        "gaps": st.get("gaps"),
        "fill_misses": st.get("fill_misses"),
        "gaps_filled": st.get("gaps_filled"),
        "jain": jain,
        "least_share": least,
    }


def median_metrics(runs):
    """Per metric, the median over runs (ignoring missing values)."""
    out = {}
    for key in runs[0]:
        vals = sorted(r[key] for r in runs if r.get(key) is not None and r[key] == r[key])
        out[key] = vals[len(vals) // 2] if vals else None
    return out


def fmt(v, spec):
    if v is None or v != v:  # None or NaN
        return "-"
    return format(v, spec)


def table(rows):
    """Markdown table of result rows (dicts with mode, workload, policy and run_metrics keys)."""
    head = ("| substrate | workload | policy | HP JCT x | HP p50 x | HP p99 x | LP harvest "
            "| vs oracle | hit rate | gaps filled | fill misses | LP Jain | LP least share |")
    lines = [head, "|" + "---|" * 13]
    oracle = {(r["mode"], r["workload"]): r["harvest"] for r in rows if r["policy"] == "oracle"}
    for r in rows:
        o = oracle.get((r["mode"], r["workload"]))
        # Below 0.5% the oracle found next to nothing to fill: a ratio would mean nothing.
        ok = o is not None and o == o and o > 0.005 and r["harvest"] == r["harvest"]
        rel = r["harvest"] / o if ok else None
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["mode"], r["workload"], r["policy"], fmt(r["jct"], ".3f"), fmt(r["p50"], ".3f"),
            fmt(r["p99"], ".3f"), fmt(r["harvest"], ".1%"), fmt(rel, ".0%"),
            fmt(r["hit"], ".1%"), fmt(r["gaps_filled"], "d"), fmt(r["fill_misses"], "d"),
            fmt(r.get("jain"), ".2f"), fmt(r.get("least_share"), ".2f")))
    return "\n".join(lines)


def targets(rows):
    """Lines checking the fikit rows against issue 3's targets: MPS: p50 <= 1.05, p99 <= 1.10,
    harvest >= 70% of the oracle's; time-slicing: JCT <= 1.15 and harvest > 0."""
    oracle = {(r["mode"], r["workload"]): r["harvest"] for r in rows if r["policy"] == "oracle"}
    out = []
    for r in rows:
        if r["policy"] != "fikit":
            continue
        checks = []
        if r["mode"] == "mps":
            o = oracle.get((r["mode"], r["workload"]))
            checks.append(("p50 <= 1.05", r["p50"] <= 1.05))
            checks.append(("p99 <= 1.10", r["p99"] <= 1.10))
            if o is not None and o == o:
                checks.append(("harvest >= 0.7 x oracle", r["harvest"] >= 0.7 * o))
        else:
            checks.append(("JCT <= 1.15", r["jct"] <= 1.15))
            checks.append(("harvest > 0", r["harvest"] > 0))
        # Fairness within one LP level (issue 16).
        if r.get("jain") is not None and r["workload"] == "fair-same":
            checks.append(("LP Jain >= 0.95", r["jain"] >= 0.95))
        if r.get("least_share") is not None:
            checks.append(("LP least share >= 0.5", r["least_share"] >= 0.5))
        verdict = ", ".join("%s %s" % (name, "met" if ok else "MISSED") for name, ok in checks)
        out.append("- %s / %s: %s" % (r["mode"], r["workload"], verdict))
    return "\n".join(out)
