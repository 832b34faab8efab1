#!/usr/bin/env python3
"""Issue 17's report: the H200 runs side by side with an earlier run, and the Pareto figure.

    compare.py --run1 DIR [DIR ...] [--run2 DIR] [--prev DIR [DIR ...]] --out DIR

--run1: the folders of run1a and run1b (campaign.py), pooled: their repeats together.
--run2: the lever matrix. --prev: an earlier run to set beside it, such as
benchmarks/results/gpu-h200-2026-11-22-abad16f and its periodic/ (one folder per arrival process;
the arrival is read from each folder's metadata, or from the @exp/@fixed suffix of the new runs).
Writes comparison.md and pareto.png (HP p99 slowdown against the LP's share of its time-sliced
throughput, one panel per arrival process, plus the levers) into --out. Draw it where the results
were fetched to: the GPU host may lack matplotlib (here: /usr/bin/python3 has it).

Numbers are computed as in report.py (slowdown: a statistic over the same statistic alone, p50
and p99 pooled over all repeats' requests; LP vs TS: LP iterations/s in the HP's window over the
LP's under time-slicing). "p99 by repeat" is each repeat's p99 over the pooled alone p99: how far
one repeat's tail moves.
"""

import argparse
import math
import os
import re
import sys

import report

ARRIVALS = {"exp": "Poisson arrivals (exponential think time, mean 3 ms)",
            "fixed": "periodic arrivals (fixed 3 ms think time)"}
MAIN = ["timeslice", "mps", "mps-prio", "fikit-ts", "fikit-mps", "fikit-mps-b1.10", "fikit-mps-b1.05"]
FIKIT = [s for s in MAIN if s.startswith("fikit")]


def load(dirs):
    rows, raw = [], []
    for d in dirs:
        if os.path.exists(os.path.join(d, "results.csv")):
            rows += report.read_rows(os.path.join(d, "results.csv"))
            raw += report.read_raw(os.path.join(d, "raw.jsonl"))
    return rows, raw


def meta(raw):
    m = [r for r in raw if r.get("type") == "meta"]
    return m[-1] if m else {}


def split_hp(hp, default_arrival):
    """'bert-base:graph:8@fixed' -> ('bert-base:graph:8', 'fixed')."""
    if "@" in hp:
        base, arr = hp.split("@", 1)
        return base, arr
    return hp, default_arrival


def by_arrival(dirs):
    """{(arrival, base hp, lp, setting): aggregate}, {(arrival, base, setting): [p99 ratio per rep]},
    metadata of each folder."""
    out, reps, metas = {}, {}, []
    for d in dirs:
        rows, raw = load([d])
        if not rows:
            continue
        m = meta(raw)
        metas.append((d, m))
        default = (m.get("hp_think") or {}).get("dist", "exp")
        agg = report.derive(report.aggregate(rows, raw))
        for (lp, hp, s), a in agg.items():
            if hp:
                base, arr = split_hp(hp, default)
                out[(arr, base, lp, s)] = a
        _rep_p99(raw, agg, default, reps)
    return out, reps, metas


def pooled(dirs):
    """As by_arrival, but all folders pooled first (run1a + run1b: their repeats together)."""
    rows, raw = load(dirs)
    out, reps = {}, {}
    if not rows:
        return out, reps
    m = meta(raw)
    default = (m.get("hp_think") or {}).get("dist", "exp")
    agg = report.derive(report.aggregate(rows, raw))
    for (lp, hp, s), a in agg.items():
        if hp:
            base, arr = split_hp(hp, default)
            out[(arr, base, lp, s)] = a
    _rep_p99(raw, agg, default, reps)
    return out, reps


def _rep_p99(raw, agg, default, reps):
    for rec in raw:
        if rec.get("type") != "step" or rec.get("setting") not in FIKIT + ["timeslice", "alone-fikit"]:
            continue
        for h in rec.get("hp_records") or []:
            if h.get("error") or not h.get("lat_ms"):
                continue
            alone = agg.get(("", h["workload"], "alone"), {}).get("p99_ms")
            p99 = report.nearest_rank(sorted(h["lat_ms"]), 0.99)
            if alone:
                base, arr = split_hp(h["workload"], default)
                reps.setdefault((arr, base, rec["setting"]), []).append(p99 / alone)


def _x(v):
    return "—" if v is None else f"{v:.2f}x"


def _pct(v):
    return "—" if v is None else f"{100 * v:.0f}%"


def cell(a, s):
    if not a:
        return "—"
    if s in ("timeslice", "mps", "mps-prio"):
        return f"{_x(a.get('slow_p50'))} / {_x(a.get('slow_p99'))}"
    return f"{_x(a.get('slow_p50'))} / {_x(a.get('slow_p99'))}, LP {_pct(a.get('lp_vs_ts'))}"


def main_tables(new, new_reps, prev, label_new, label_prev):
    out = []
    for arr in ("exp", "fixed"):
        hps = sorted({k[1] for k in list(new) + list(prev) if k[0] == arr})
        lps = sorted({k[2] for k in list(new) + list(prev) if k[0] == arr and k[2]})
        if not hps:
            continue
        for lp in lps:
            cols = [s for s in MAIN if any((arr, hp, lp, s) in new or (arr, hp, lp, s) in prev for hp in hps)]
            out += [f"### {ARRIVALS[arr]}, LP {lp}", "",
                    "p50 / p99 slowdown against HP alone (LP: its share of its time-sliced throughput); "
                    "MPS alone is the HP alone as an MPS client.", ""]
            head = ["HP", "run", "n"] + [report.SHORT[s] for s in cols] + ["MPS alone p50", "broker CPU"]
            out += [report._cells(head), "|" + "---|" * len(head)]
            for hp in hps:
                for label, agg in ((label_new, new), (label_prev, prev)):
                    if not any((arr, hp, lp, s) in agg for s in cols):
                        continue
                    n = max((agg.get((arr, hp, lp, s)) or {}).get("n", 0) for s in cols)
                    mps_alone = (agg.get((arr, hp, "", "alone-mps")) or {}).get("slow_p50")
                    cpu = [(agg.get((arr, hp, lp, s)) or {}).get("broker_cpu_pct") for s in FIKIT]
                    cpu = [c for c in cpu if c is not None]
                    cells = [cell(agg.get((arr, hp, lp, s)), s) for s in cols]
                    out.append(report._cells([hp, label, n] + cells +
                                             [_x(mps_alone), f"{max(cpu):.0f}%" if cpu else "—"]))
            out.append("")
        spread = [(hp, s, v) for (a, hp, s), v in sorted(new_reps.items()) if a == arr and s in FIKIT]
        if spread:
            out += [f"p99 by repeat ({label_new}, {ARRIVALS[arr]}): "
                    + "; ".join(f"{hp} {report.SHORT[s]} " + " ".join(f"{v:.2f}" for v in vals)
                                for hp, s, vals in spread), ""]
    return out


def overhead_table(new, prev, label_new, label_prev):
    out = ["### Overhead alone (HP alone as a tenant, mean latency over HP alone)", "",
           "| HP | arrivals | " + f"{label_new} | {label_prev} |", "|---|---|---|---|"]
    keys = sorted({(k[0], k[1]) for k in list(new) + list(prev) if k[3] == "alone-fikit"})
    for arr, hp in keys:
        def f(agg):
            a = agg.get((arr, hp, "", "alone-fikit"))
            return "—" if not a else f"{a.get('slow_mean') or float('nan'):.3f}x (n {a['n']})"
        out.append(report._cells([hp, arr, f(new), f(prev)]))
    return out + [""]


def broker_view(dirs):
    """What each fikit step's broker said of itself (the harvest issue's status members): the HP
    tenant's measured slowdown and where its alone latency came from, the LP's harvest ratio, the
    budget. Over the whole step (all HP workloads and both arrival processes), so it is a check of
    the broker's online measurement against the table above, not a result of its own."""
    _, raw = load(dirs)
    out = []
    for rec in raw:
        if rec.get("type") != "step" or not rec.get("setting", "").startswith("fikit"):
            continue
        st = (rec.get("broker") or {}).get("status") or {}
        ts = {t.get("name"): t for t in st.get("tenants") or [] if isinstance(t, dict)}
        hp, lp = ts.get("hp") or {}, ts.get("lp") or {}
        sd, al = hp.get("slowdown") or {}, hp.get("alone_latency") or {}
        if not (sd or al or "harvest_ratio" in lp or st.get("budget")):
            continue
        f = lambda v, fmt="{:.2f}": "—" if not isinstance(v, (int, float)) else fmt.format(v)
        out.append(report._cells([rec.get("key"), json_short(st.get("budget")), f(sd.get("p50"), "{:.2f}x"),
                                  f(sd.get("p99"), "{:.2f}x"), al.get("source", "—"),
                                  f(lp.get("harvest_ratio"))]))
    if not out:
        return ["(The brokers' status had no budget members: a broker before the harvest issue.)", ""]
    head = ["step", "budget", "HP slowdown p50 (broker)", "p99 (broker)", "alone from", "LP harvest ratio"]
    return [report._cells(head), "|" + "---|" * len(head)] + out + [""]


def json_short(v):
    if not isinstance(v, dict):
        return "—" if v is None else str(v)
    return ",".join(f"{k}={x}" for k, x in v.items() if x is not None) or "—"


def lever_name(s):
    m = re.match(r"(fikit-mps|mps)-t(\d+)-p(\d)$", s)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def lever_table(levers):
    out = ["## Run 2: the MPS levers (LP thread percentage x LP client priority, without and with fikit)", "",
           "p50 / p99 slowdown against HP alone; LP: its share of its time-sliced throughput "
           "(in brackets: of LP alone, where the run measured it).", ""]
    for hp in sorted({k[1] for k in levers}):
        for lp in sorted({k[2] for k in levers if k[1] == hp and k[2]}):
            head = ["LP threads", "MPS, LP prio 1", "MPS, LP prio 0", "fikit MPS, LP prio 1",
                    "fikit MPS, LP prio 0"]
            out += [f"### {hp}, LP {lp}", "", report._cells(head), "|" + "---|" * len(head)]
            for pct in (25, 50, 75, 100):
                cells = []
                for kind, prio in (("mps", 1), ("mps", 0), ("fikit-mps", 1), ("fikit-mps", 0)):
                    a = next((v for (arr, h, l, s), v in levers.items()
                              if h == hp and l == lp and lever_name(s) == (kind, pct, prio)), None)
                    alone = f" ({_pct(a['lp_vs_alone'])})" if a and a.get("lp_vs_alone") is not None else ""
                    cells.append("—" if not a else f"{_x(a.get('slow_p50'))} / {_x(a.get('slow_p99'))}, "
                                 f"LP {_pct(a.get('lp_vs_ts'))}{alone}")
                out.append(report._cells([f"{pct}%"] + cells))
            out.append("")
    # One line per cell for the simulator's calibration (the harvest issue's sim-vs-GPU table).
    out += ["Calibration rows (setting, HP, p50 x, p99 x, LP vs TS, LP vs alone):", "", "```"]
    for (arr, hp, lp, s), a in sorted(levers.items()):
        if lever_name(s) or s == "timeslice":
            out.append(f"{s},{hp},{_num(a.get('slow_p50'))},{_num(a.get('slow_p99'))},"
                       f"{_num(a.get('lp_vs_ts'))},{_num(a.get('lp_vs_alone'))}")
    return out + ["```", ""]


def _num(v):
    return "" if v is None else f"{v:.3f}"


def pareto(new, prev, levers, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [a for a in ("exp", "fixed") if any(k[0] == a for k in new)] + (["levers"] if levers else [])
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.2), squeeze=False)
    markers = {"timeslice": "s", "mps": "^", "mps-prio": "v", "fikit-ts": "D", "fikit-mps": "o",
               "fikit-mps-b1.10": "o", "fikit-mps-b1.05": "P"}
    hps = sorted({k[1] for k in list(new) + list(prev) + list(levers)})
    colors = {hp: plt.get_cmap("tab10")(i) for i, hp in enumerate(hps)}
    for ax, panel in zip(axes[0], panels):
        ys = []
        if panel == "levers":
            for (arr, hp, lp, s), a in levers.items():
                ln = lever_name(s)
                x, y = a.get("lp_vs_ts"), a.get("slow_p99")
                if ln is None or x is None or y is None:
                    continue
                ax.scatter(x, y, color=colors[hp], marker="o" if ln[0] == "fikit-mps" else "^",
                           facecolors=colors[hp] if ln[2] else "none", s=40)
                ax.annotate(str(ln[1]), (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
                ys.append(y)
            ax.set_title("run 2 levers: ^ MPS, o fikit MPS; filled: LP prio 1; label: LP thread %",
                         fontsize=8)
        else:
            for src, agg, hollow in ((new, new, False), (prev, prev, True)):
                for (arr, hp, lp, s), a in agg.items():
                    x, y = a.get("lp_vs_ts"), a.get("slow_p99")
                    if arr != panel or s not in markers or x is None or y is None:
                        continue
                    ax.scatter(x, y, marker=markers[s], s=45, color=colors[hp],
                               facecolors="none" if hollow else colors[hp])
                    if not hollow:
                        ax.annotate(report.SHORT[s], (x, y), fontsize=6, xytext=(3, 2),
                                    textcoords="offset points")
                    ys.append(y)
            ax.set_title(f"{ARRIVALS[panel]}; hollow: the earlier run", fontsize=8)
        ax.axvline(report.TARGETS["lp_vs_ts"], color="gray", ls=":", lw=1)
        report._slowdown_axis(ax, [y for y in ys if y and math.isfinite(y)])
        shares = [a.get("lp_vs_ts") or 0 for a in list(new.values()) + list(levers.values())]
        ax.set_xlim(-0.03, max(1.3, max(shares + [0]) * 1.05))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_xlabel("LP throughput, share of its time-sliced rate")
        ax.set_ylabel("HP p99 slowdown vs alone")
    handles = [plt.Line2D([], [], color=colors[hp], marker="o", ls="", label=hp) for hp in hps]
    axes[0][0].legend(handles=handles, fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def describe(metas):
    out = []
    for d, m in metas:
        out.append(f"- `{d}`: {m.get('gpu', '?')}, driver {m.get('driver', '?')}, "
                   f"CUDA {m.get('cuda_driver', '?')}, PyTorch {m.get('torch', '?')}, "
                   f"commit {m.get('commit', '?')}, {m.get('date', '?')}, "
                   f"repeats {m.get('repeats', '?')}")
        out += [f"  - note: {r}" for r in m.get("notes", [])]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run1", nargs="+", default=[], help="run1a and run1b folders (pooled)")
    p.add_argument("--run2", help="the lever matrix's folder")
    p.add_argument("--prev", nargs="*", default=[],
                   help="the earlier run's folders (one per arrival process)")
    p.add_argument("--label-prev", default="abad16f")
    p.add_argument("--label-new", default="new")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    new, new_reps = pooled(a.run1)
    prev, _, prev_metas = by_arrival(a.prev)
    levers, _ = pooled([a.run2]) if a.run2 else ({}, {})
    metas = [(d, meta(load([d])[1])) for d in a.run1 + ([a.run2] if a.run2 else [])] + prev_metas
    for d, m in metas:
        m["notes"] = [r["text"] for r in load([d])[1] if r.get("type") == "note"]
    lines = ["# H200: fikit within the HP budget, and the MPS levers (issue 17)", "",
             "Generated by `benchmarks/gpu/compare.py` from:", ""] + describe(metas) + [""]
    if new or prev:
        lines += ["## Run 1: beside the earlier run", ""] + \
            main_tables(new, new_reps, prev, a.label_new, a.label_prev) + \
            overhead_table(new, prev, a.label_new, a.label_prev) + \
            ["### The broker's own view (status at the end of each fikit step)", ""] + broker_view(a.run1)
    if levers:
        lines += lever_table(levers)
    title = "HP p99 slowdown vs LP share of its time-sliced throughput: " + \
        ", ".join(sorted({str(m.get('gpu')) for _, m in metas if m}))
    try:
        drawn = pareto(new, prev, levers, os.path.join(a.out, "pareto.png"), title)
        lines += ["![Pareto](pareto.png)", ""] if drawn else []
    except ImportError:
        print("matplotlib is missing: pareto.png not drawn (use /usr/bin/python3)", file=sys.stderr)
    with open(os.path.join(a.out, "comparison.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {os.path.join(a.out, 'comparison.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
