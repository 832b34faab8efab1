#!/usr/bin/env python3
"""Report of the GPU benchmark: results.csv (+ raw.jsonl) -> results.md and results.png.

    python3 report.py OUT_DIR        # regenerate OUT_DIR/results.md and OUT_DIR/results.png

results.csv has one row per measured thing (an HP workload in a setting, or an LP alone) and
repeat, with raw numbers only; everything relative is computed here:
- slowdown: a statistic of the HP co-located over the same statistic of the HP alone (medians over
  repeats; p50 and p99 are taken over the pooled per-request latencies of all repeats when
  raw.jsonl has them).
- overhead: the HP alone with the library (alone-fikit) over the HP alone.
- LP vs alone: LP iterations/s inside the HP's measurement window over LP iterations/s alone.
  The chain LP only reports a count for its whole run; its rate inside the HP window is estimated
  by assuming it ran at its alone rate whenever the HP was not running (shown as "—" when that
  estimate falls outside 0..1.2 x the alone rate).
- harvest: LP work done inside the HP window, in seconds of GPU time the LP needs alone (LP
  iterations / LP-alone rate), over the HP's idle GPU time in that window (window - requests x GPU
  busy time per request, the latter profiled with the HP alone). 1.0 means the LP used all the HP's
  idle time; above 1.0 the LP also ran beside HP kernels (MPS shares SMs), not only in gaps.
Settings: "fikit alone" is the HP alone as a fikit tenant (the overhead); "time-slice" runs HP and LP
as two plain CUDA processes, which the driver time-slices; "MPS" makes both clients of one MPS
server; "MPS prio" also sets CUDA_MPS_CLIENT_PRIORITY=1 for the LP; "fikit TS" and "fikit MPS" run
both as tenants of a fikit broker, without and with MPS. "probe x" is the HP slowdown the probe
measured for the same chain workload (shared/reference/gpu-probe-results.md; the fikit rows show
its oracle gap filler, the bar to approach).
"""

import csv
import json
import math
import os
import re
import statistics
import sys

from plan import SETTINGS

FIELDS = ["date", "step", "rep", "setting", "lp", "hp", "status", "requests", "jct_ms", "mean_ms",
          "p50_ms", "p99_ms", "gpu_busy_ms", "kernels_per_req", "launches_per_req", "outputs_match",
          "lp_rate", "lp_unit", "lp_scope", "lp_units", "lp_run_s", "broker_cpu_pct", "substrate",
          "step_s", "note"]
NUMERIC = ("requests", "jct_ms", "mean_ms", "p50_ms", "p99_ms", "gpu_busy_ms", "kernels_per_req",
           "launches_per_req", "lp_rate", "lp_units", "lp_run_s", "broker_cpu_pct", "step_s")
# Every setting that runs an HP beside an LP, in plan order: the core five, then fikit on MPS at
# each budget, then the MPS lever matrix (plan.py).
COLOCATED = tuple(s.name for s in SETTINGS.values() if s.hp and s.lp)
LEVERS = tuple(s.name for s in SETTINGS.values() if s.lp_env)
SHORT = {"alone-fikit": "fikit alone", "alone-mps": "MPS alone", "timeslice": "time-slice",
         "mps": "MPS", "mps-prio": "MPS prio", "fikit-ts": "fikit TS", "fikit-mps": "fikit MPS"}
for _name in COLOCATED:  # fikit-mps-b1.05 -> "fikit MPS b1.05", mps-t50-p1 -> "MPS t50 p1"
    if _name not in SHORT:
        _head = "fikit MPS" if _name.startswith("fikit-mps-") else "MPS"
        SHORT[_name] = _head + " " + _name.split("mps-", 1)[1].replace("-", " ")


def budget_of(setting):
    """The p99 budget a fikit-on-MPS setting ran at (None: the broker's default)."""
    m = re.match(r"fikit-mps-b([\d.]+)$", setting)
    return float(m.group(1)) if m else None
# HP slowdown of the same chain workload in shared/reference/gpu-probe-results.md (burn kernels unless
# noted); the fikit rows compare with the probe's oracle gap filler, the bar fikit must approach.
PROBE = {("timeslice", 50): (2.14, "time-sliced"), ("timeslice", 500): (7.5, "time-sliced, spin"),
         ("fikit-ts", 50): (1.68, "oracle, time-sliced"), ("mps", 50): (1.04, "MPS"),
         ("mps", 500): (1.65, "MPS"), ("mps-prio", 500): (1.67, "MPS prio"),
         ("fikit-mps", 50): (0.98, "oracle on MPS")}
TARGETS = {"p50": 1.05, "p99": 1.10, "lp_vs_ts": 0.5, "overhead": 1.01}


# ---- CSV -------------------------------------------------------------------------------------------

def append_rows(path, rows):
    """Append rows to the CSV (writing the header first if new), flushed to disk at once."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        for r in rows:
            w.writerow({k: _fmt_csv(r.get(k)) for k in FIELDS})
        f.flush()
        os.fsync(f.fileno())


def _fmt_csv(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in NUMERIC:
            try:
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
            except ValueError:
                r[k] = None
        r["rep"] = int(r["rep"]) if r.get("rep") not in (None, "") else 0
    return rows


def read_raw(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


# ---- aggregation -----------------------------------------------------------------------------------

def nearest_rank(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))]


def _median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def pooled_latencies(raw):
    """(lp, hp, setting) -> all per-request latencies of its successful repeats, from raw.jsonl."""
    pooled = {}
    for rec in raw:
        if rec.get("type") != "step":
            continue
        for hp in rec.get("hp_records") or []:
            if hp.get("error") or not hp.get("lat_ms"):
                continue
            key = (rec.get("lp", ""), hp["workload"], rec["setting"])
            pooled.setdefault(key, []).extend(hp["lat_ms"])
    return pooled


def aggregate(rows, raw):
    """(lp, hp, setting) -> medians over successful repeats, p50/p99 pooled where possible."""
    groups = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["lp"], r["hp"], r["setting"]), []).append(r)
    pooled = pooled_latencies(raw)
    agg = {}
    for key, rs in groups.items():
        a = {k: _median([r[k] for r in rs]) for k in NUMERIC}
        a["n"] = len(rs)
        a["lp_unit"] = rs[0]["lp_unit"]
        a["lp_scope"] = rs[0]["lp_scope"]
        a["substrate"] = ",".join(sorted({r["substrate"] for r in rs if r["substrate"]}))
        om = [r["outputs_match"] for r in rs if r["outputs_match"] not in ("", None)]
        a["outputs"] = "" if not om else ("ok" if all(x == "True" for x in om) else "DIFFER")
        lat = sorted(pooled.get(key, []))
        if lat:
            a["p50_ms"], a["p99_ms"], a["pooled"] = nearest_rank(lat, 0.5), nearest_rank(lat, 0.99), len(lat)
        agg[key] = a
    return agg


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def lp_window_rate(a, lp_alone_rate):
    """LP rate inside the HP window; for a whole-run count (chain LP), the estimate in the docstring."""
    if a.get("lp_rate") is None:
        return None
    if a.get("lp_scope") != "run":
        return a["lp_rate"]
    w = (a.get("jct_ms") or 0) / 1e3
    if not w or lp_alone_rate is None or a.get("lp_run_s") is None:
        return None
    est = (a["lp_units"] - lp_alone_rate * max(0.0, a["lp_run_s"] - w)) / w
    # Outside [0, 1.2 x alone] the assumption failed (start-up, drift): no estimate.
    return est if 0.0 <= est <= 1.2 * lp_alone_rate else None


def derive(agg):
    """Add slowdowns, LP ratios and harvest to each co-located and HP-only group."""
    for (lp, hp, s), a in agg.items():
        if s == "lp-alone":
            continue
        alone = agg.get(("", hp, "alone"))
        if alone and s != "alone":
            for k in ("p50", "p99", "mean", "jct"):
                a[f"slow_{k}"] = _ratio(a.get(f"{k}_ms"), alone.get(f"{k}_ms"))
        if s not in COLOCATED:
            continue
        la = agg.get((lp, "", "lp-alone"), {}).get("lp_rate")
        a["lp_win"] = lp_window_rate(a, la)
        a["lp_vs_alone"] = _ratio(a["lp_win"], la)
        ts = agg.get((lp, hp, "timeslice"))
        a["lp_vs_ts"] = _ratio(a["lp_win"], lp_window_rate(ts, la) if ts else None)
        busy = alone.get("gpu_busy_ms") if alone else None
        w = (a.get("jct_ms") or 0) / 1e3
        if busy is not None and w and a.get("requests") and a["lp_win"] is not None and la:
            idle = w - a["requests"] * busy / 1e3
            a["harvest"] = (a["lp_win"] * w / la) / idle if idle > 0 else None
        m = re.search(r"(\d+)us", lp)
        if hp == "chain" and m and (s, int(m.group(1))) in PROBE:
            a["probe"] = PROBE[(s, int(m.group(1)))]
    return agg


def targets(agg):
    """The issue's targets, each as (ok, text)."""
    out = []
    for (lp, hp, s), a in sorted(agg.items()):
        if s == "fikit-mps" or budget_of(s):
            # At a budget below 1.10 the harvest issue asks less of the LP (35% at 1.05).
            b = budget_of(s) or TARGETS["p99"]
            p99, lp_min = min(b, TARGETS["p99"]), (TARGETS["lp_vs_ts"] if b >= TARGETS["p99"] else 0.35)
            ok = all(v is not None for v in (a.get("slow_p50"), a.get("slow_p99"), a.get("lp_vs_ts")))
            ok = ok and a["slow_p50"] <= TARGETS["p50"] and a["slow_p99"] <= p99 and a["lp_vs_ts"] >= lp_min
            floor = agg.get(("", hp, "alone-mps"), {}).get("slow_p50")
            floor = f"; HP alone on MPS: p50 {_x(floor)}" if floor is not None else ""
            name = "fikit on MPS" + (f" at budget p99={budget_of(s)}" if budget_of(s) else "")
            out.append((ok, f"{name}, {hp} with {lp}: p50 {_x(a.get('slow_p50'))} (<= 1.05), "
                            f"p99 {_x(a.get('slow_p99'))} (<= {p99:.2f}), LP {_pct(a.get('lp_vs_ts'))} of "
                            f"time-sliced (>= {lp_min:.0%}){floor}"))
        if s == "fikit-ts":
            ts = agg.get((lp, hp, "timeslice"), {})
            mine, theirs = a.get("slow_jct"), ts.get("slow_jct")
            ok = mine is not None and theirs is not None and mine < theirs
            out.append((ok, f"fikit on time-slicing beats time-slicing, {hp} with {lp}: JCT "
                            f"{_x(mine)} vs {_x(theirs)}"))
        if s == "alone-fikit":
            v = a.get("slow_mean")
            out.append((v is not None and v <= TARGETS["overhead"],
                        f"overhead alone, {hp}: mean latency {_f(v, '{:.3f}x')} (<= 1.01), "
                        f"p99 {_x(a.get('slow_p99'))}"))
    return out


# ---- markdown --------------------------------------------------------------------------------------

def _f(v, fmt="{:.2f}"):
    return "—" if v is None else fmt.format(v)


def _x(v):
    return _f(v, "{:.2f}x")


def _pct(v):
    return "—" if v is None else f"{100 * v:.0f}%"


def _think(meta):
    t = meta.get("hp_think")
    if not t:
        return "?"
    kind = {"exp": "exponential (Poisson arrivals)", "fixed": "fixed (periodic arrivals)"}
    return f"{kind.get(t['dist'], t['dist'])}, mean {t['mean_ms']} ms"


def _meta_lines(raw):
    metas = [r for r in raw if r.get("type") == "meta"]
    m = metas[-1] if metas else {}
    lines = [f"- GPU: {m.get('gpu', '?')}; driver {m.get('driver', '?')}; CUDA {m.get('cuda_driver', '?')} "
             f"(driver), {m.get('cuda_torch', '?')} (PyTorch {m.get('torch', '?')})",
             f"- commit: {m.get('commit', '?')}; date: {m.get('date', '?')}; preset: {m.get('preset', '?')}; "
             f"host: {m.get('host', '?')}",
             f"- HP think time between requests: {_think(m)}",
             f"- compute mode: {m.get('compute_mode', '?')} (left as found); command: `{m.get('argv', '?')}`"]
    notes = [r["text"] for r in raw if r.get("type") == "note"]
    lines += [f"- note: {n}" for n in notes]
    return lines


def _one_line(text, limit=240):
    text = " ".join((text or "").split()).replace("|", "/")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cells(values):
    return "| " + " | ".join(str(v) for v in values) + " |"


def _seconds(ms):
    return None if ms is None else ms / 1e3


def _pair_table(lp, agg):
    head = ["HP", "setting", "n", "p50 ms", "p99 ms", "JCT s", "p50 ×", "p99 ×", "JCT ×", "LP rate",
            "LP vs alone", "LP vs TS", "harvest", "broker CPU", "substrate", "outputs", "probe ×"]
    lines = [_cells(head), "|" + "---|" * len(head)]
    for hp in sorted({hp for (l, hp, s) in agg if l == lp and hp}):
        for s in COLOCATED:
            a = agg.get((lp, hp, s))
            if not a:
                continue
            probe = a.get("probe")
            lines.append(_cells([
                hp, SHORT[s], a["n"], _f(a["p50_ms"]), _f(a["p99_ms"]), _f(_seconds(a["jct_ms"])),
                _x(a.get("slow_p50")), _x(a.get("slow_p99")), _x(a.get("slow_jct")),
                f"{_f(a.get('lp_win'))} {a.get('lp_unit') or ''}", _pct(a.get("lp_vs_alone")),
                _pct(a.get("lp_vs_ts")), _f(a.get("harvest")), _f(a.get("broker_cpu_pct"), "{:.0f}%"),
                a["substrate"] or "—", a["outputs"] or "—",
                f"{probe[0]} ({probe[1]})" if probe else "—"]))
    return lines


def _alone_table(agg):
    head = ["HP", "n", "p50 ms", "p99 ms", "JCT s", "GPU busy ms/req", "kernels/req",
            "library launches/req", "fikit alone mean ×", "p99 ×", "MPS alone p50 ×"]
    lines = [_cells(head), "|" + "---|" * len(head)]
    for (lp, hp, s), a in sorted(agg.items()):
        if s != "alone":
            continue
        fk = agg.get(("", hp, "alone-fikit"), {})
        mp = agg.get(("", hp, "alone-mps"), {})
        lines.append(_cells([
            hp, a["n"], _f(a["p50_ms"]), _f(a["p99_ms"]), _f(_seconds(a["jct_ms"])),
            _f(a["gpu_busy_ms"], "{:.3f}"), _f(a["kernels_per_req"], "{:.1f}"),
            _f(fk.get("launches_per_req"), "{:.1f}"), _f(fk.get("slow_mean"), "{:.3f}x"),
            _x(fk.get("slow_p99")), _x(mp.get("slow_p50"))]))
    lp_lines = ["| LP | n | rate alone |", "|---|---|---|"]
    for (lp, hp, s), a in sorted(agg.items()):
        if s == "lp-alone":
            lp_lines.append(_cells([lp, a["n"], f"{_f(a['lp_rate'])} {a['lp_unit'] or ''}"]))
    return lines, lp_lines


def markdown(rows, raw):
    agg = derive(aggregate(rows, raw))
    out = ["# fikit GPU benchmark", ""] + _meta_lines(raw) + [""]
    t = targets(agg)
    if t:
        out += ["## Targets", ""] + [f"- {'PASS' if ok else 'MISS'}: {txt}" for ok, txt in t] + [""]
    alone, lp_alone = _alone_table(agg)
    out += ["## HP alone, and with the library alone (overhead)", ""] + alone + [""]
    out += ["## LP alone", ""] + lp_alone + [""]
    for lp in sorted({l for (l, hp, s) in agg if l and s in COLOCATED}):
        out += [f"## Pair: LP {lp}", ""] + _pair_table(lp, agg) + [""]
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        out += ["## Steps that did not complete", "", "| step | HP | status | note |", "|---|---|---|---|"]
        out += [_cells([r["step"], r["hp"] or "—", r["status"], _one_line(r["note"])]) for r in bad]
        out += [""]
    out += ["## How to read this", ""] + [l.strip() for l in __doc__.split("\n\n", 2)[2].splitlines()]
    return "\n".join(out) + "\n", agg


# ---- figure ----------------------------------------------------------------------------------------

def _slowdown_axis(ax, values):
    """Log scale with plain labels (1x, 1.5x, 2x...) over the range of the values."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    vals = [v for v in values if v == v] or [1.0]
    lo, hi = min(min(vals), 1.0) / 1.08, max(max(vals), TARGETS["p99"]) * 1.15
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    steps = (0.9, 1.0, 1.05, 1.1, 1.25, 1.5, 2, 3) if hi / lo < 4 else (1.0, 1.5, 2, 3, 5, 7.5, 10, 20, 50)
    ticks = [t for t in steps if lo <= t <= hi]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1.0, color="gray", lw=1)
    ax.axhline(TARGETS["p99"], color="gray", lw=0.8, ls=":")


def _plot_pair(ax_hp, ax_lp, lp, agg, settings):
    """One LP's row of the figure: HP slowdown per setting and workload, and LP throughput."""
    from matplotlib.lines import Line2D

    hps = sorted({hp for (l, hp, s) in agg if l == lp and hp})
    width = 0.8 / max(1, len(hps))
    nan = float("nan")
    seen = []
    for i, hp in enumerate(hps):
        xs = [j + (i - (len(hps) - 1) / 2) * width for j in range(len(settings))]
        grp = [agg.get(("" if s == "alone-fikit" else lp, hp, s), {}) for s in settings]
        p50 = [g.get("slow_p50") or nan for g in grp]
        p99 = [g.get("slow_p99") or nan for g in grp]
        lpv = [nan if g.get("lp_vs_alone") is None else g["lp_vs_alone"] for g in grp]
        seen += p50 + p99
        bars = ax_hp.bar(xs, p50, width, label=hp)
        ax_hp.scatter(xs, p99, marker="_", s=200, color="black", zorder=3)
        ax_lp.bar(xs, lpv, width, color=bars.patches[0].get_facecolor())
        if len(hps) <= 4:
            for x, v in zip(xs, p50):
                if v == v:
                    ax_hp.text(x, v, f"{v:.2f}", ha="center", va="bottom", fontsize=6)
            for x, v in zip(xs, lpv):
                if v == v:
                    ax_lp.text(x, v, f"{v:.0%}", ha="center", va="bottom", fontsize=6)
    _slowdown_axis(ax_hp, seen)
    ax_hp.set_ylabel("HP slowdown vs alone")
    ax_lp.set_ylabel("LP throughput vs LP alone")
    ax_lp.axhline(1.0, color="gray", lw=1)
    ax_lp.set_ylim(0, 1.2)
    ax_lp.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    for ax in (ax_hp, ax_lp):
        ax.set_xticks(range(len(settings)), [SHORT[s] for s in settings], fontsize=8)
        ax.set_xlim(-0.6, len(settings) - 0.4)
        ax.set_title(f"LP: {lp}", fontsize=9)
    handles, _ = ax_hp.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", marker="_", ls="", markersize=12, label="p99"))
    ax_hp.legend(handles=handles, fontsize=7, loc="upper left", title="bars: p50", title_fontsize=7)


def plot(agg, path, title):
    """One PNG: per LP, HP slowdown (p50 bars, p99 ticks) and LP throughput vs alone per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lps = sorted({l for (l, hp, s) in agg if l and s in COLOCATED})
    if not lps:
        return False
    # The lever matrix has a table of its own (compare.py); here the settings of the main matrix.
    present = {s for (l, hp, s) in agg}
    core = ("timeslice", "mps", "mps-prio", "fikit-ts", "fikit-mps")
    settings = ["alone-fikit"] + [s for s in COLOCATED if s not in LEVERS and (s in present or s in core)]
    fig, axes = plt.subplots(len(lps), 2, figsize=(13, 3.3 * len(lps) + 0.8), squeeze=False)
    for row, lp in enumerate(lps):
        _plot_pair(axes[row][0], axes[row][1], lp, agg, settings)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(out_dir, with_plot=True):
    """Regenerate results.md (and results.png) in out_dir; return the aggregate."""
    rows = read_rows(os.path.join(out_dir, "results.csv"))
    raw = read_raw(os.path.join(out_dir, "raw.jsonl"))
    text, agg = markdown(rows, raw)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    if with_plot:
        metas = [r for r in raw if r.get("type") == "meta"]
        m = metas[-1] if metas else {}
        title = (f"fikit GPU benchmark: {m.get('gpu', '?')}, {m.get('date', '?')}, "
                 f"commit {m.get('commit', '?')[:10]}")
        try:
            plot(agg, os.path.join(out_dir, "results.png"), title)
        except ImportError:
            print("matplotlib is missing: results.png not written", file=sys.stderr)
    return agg


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py OUT_DIR (with results.csv and raw.jsonl)")
    write(sys.argv[1])
    print(f"wrote {os.path.join(sys.argv[1], 'results.md')}")
