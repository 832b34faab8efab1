#!/usr/bin/env python3
"""Pareto figure of the scenario benchmark's real-model rows: HP p99 slowdown against the LP's
share of its time-sliced throughput, one panel per HP/LP pair, Poisson arrivals filled and
periodic hollow. Reads {"rows": [...], "caption": "..."} (run_scenarios.py's model rows) on
stdin and writes the PNG named by its argument. Needs matplotlib.

  benchmarks/scenario/pareto_plot.py out.png < rows.json
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"alone": "black", "time-slice": "tab:gray", "MPS": "tab:red", "MPS prio": "tab:orange",
          "MPS LP cap": "tab:brown", "fikit TS": "tab:cyan", "fikit MPS": "tab:blue",
          "oracle MPS": "tab:green"}


def color(setting):
    for prefix in sorted(COLORS, key=len, reverse=True):
        if setting.startswith(prefix):
            return COLORS[prefix]
    return "tab:purple"


def main():
    data = json.load(sys.stdin)
    rows = data["rows"]
    pairs = sorted({r["pair"] for r in rows})
    fig, axes = plt.subplots(1, len(pairs), figsize=(7 * len(pairs), 5.5), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        ax.scatter([0], [1.0], color="black", marker="*", s=120, label="alone")
        for r in rows:
            if r["pair"] != pair or r["p99"] is None or r["lp_vs_ts"] is None:
                continue
            poisson = r["arrivals"] == "poisson"
            c = color(r["setting"])
            ax.scatter([r["lp_vs_ts"]], [r["p99"]], s=50, color=c if poisson else "none",
                       edgecolors=c, label=r["setting"] if poisson else None)
            if poisson:
                ax.annotate(r["setting"].replace("fikit MPS ", ""), (r["lp_vs_ts"], r["p99"]),
                            fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.axhline(1.10, color="tab:blue", linestyle=":", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("LP throughput / its time-sliced throughput")
        ax.set_ylabel("HP p99 latency / alone (log)")
        ax.set_title("%s (filled: Poisson, hollow: periodic)" % pair, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("fikit scenario benchmark, simulated driver: " + data.get("caption", ""),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[1], dpi=110)


if __name__ == "__main__":
    main()
