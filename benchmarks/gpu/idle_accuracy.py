#!/usr/bin/env python3
"""HP idleness accuracy on a GPU (issue 4): how much of an HP task's true GPU idle time the broker
recognizes as drained, and how late, on real models. About a minute.

For each HP workload (hp_infer.py MODEL:MODE:BATCH, one process each, and the synthetic chain) a
broker runs with --hp-marker-every 1: the HP tenant puts a completion marker after every launch,
so the broker sees when the GPU really finished each kernel. It splits the HP timeline into GPU
idle gaps (marker of the last kernel -> next launch) and notes when the host's synchronizing calls
drained them (status "hp_idle", broker/idle_meter.h). Two status snapshots, when the server is
warmed up and when it is done, give the numbers of the measured requests alone (the lateness from
the difference of the cumulative histograms, so percentiles are bucket upper edges, 19% apart).
The same workload then runs under a broker without markers: the markers' cost is the ratio of
the request latencies.

  python3 benchmarks/gpu/idle_accuracy.py --build build --out idle.md
  python3 benchmarks/gpu/idle_accuracy.py --dry-run     # the commands only

Output: one markdown file (table, then the raw records as JSON lines); the table is printed too.
Nothing here changes a GPU setting. Exit 77 without a GPU (nvidia-smi finds none).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fikit_proc import Broker, broker_help, stop_all, wait_until  # noqa: E402

DEFAULT_WORKLOADS = "resnet50:eager:1,bert-base:graph:8"
CHAIN = ["hp", "--requests", "200", "--kernels", "10", "--kernel-us", "200", "--gap-us", "100",
         "--request-gap-us", "2000", "--kernel", "burn", "--warmup", "20"]
COUNTS = ("gaps", "idle_ms", "drained_gaps", "recognized_ms", "long_gaps", "long_idle_ms",
          "long_drained_gaps", "long_recognized_ms", "lost_records")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default="build", help="fikit build directory (bin/, lib/)")
    p.add_argument("--out", default="idle.md", help="markdown file to write")
    p.add_argument("--workloads", default=DEFAULT_WORKLOADS, help="MODEL:MODE:BATCH,... ('' for none)")
    p.add_argument("--no-chain", action="store_true", help="leave out the synthetic chain")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--gap-ms", type=float, default=3.0, help="mean idle time between requests")
    p.add_argument("--marker-every", type=int, default=1, help="broker --hp-marker-every")
    p.add_argument("--no-baseline", action="store_true", help="skip the runs without markers")
    p.add_argument("--budget-s", type=float, default=120, help="skip what would not fit")
    p.add_argument("--work-dir", help="scratch directory (default: a new one in /tmp)")
    p.add_argument("--dry-run", action="store_true")
    return p.parse_args(argv)


# ---- numbers -------------------------------------------------------------------------------------

def hist_percentile(counts, edges, q):
    """Upper edge (us) of the bucket holding quantile q of a lateness histogram (status hp_idle:
    bucket 0 negative, edge 0; the last bucket has no edge: its lower edge is returned). None if
    the histogram is empty."""
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen = max(1, int(q * total + 0.999999)), 0
    for i, c in enumerate(counts):
        seen += c
        if seen >= rank:
            return edges[i] if i < len(edges) else edges[-1]
    return edges[-1]


def window(before, after, wait_ms=0.0):
    """The hp_idle numbers between two status snapshots (before may be None: from the start).
    wait_ms: a drained gap of about this length inside the window that is no part of the request
    stream (the server waiting for its start signal), taken out again."""
    before = before or {}
    w = {k: after.get(k, 0) - before.get(k, 0) for k in COUNTS}
    if wait_ms > 0 and w["drained_gaps"] > 0:
        for k in ("gaps", "drained_gaps", "long_gaps", "long_drained_gaps"):
            w[k] -= 1
        for k in ("idle_ms", "recognized_ms", "long_idle_ms", "long_recognized_ms"):
            w[k] = max(0.0, w[k] - wait_ms)
    for k in ("idle_ms", "recognized_ms", "long_idle_ms", "long_recognized_ms"):
        w[k] = round(w[k], 4)
    w["recognized_share"] = w["recognized_ms"] / w["idle_ms"] if w["idle_ms"] > 0 else None
    w["long_recognized_share"] = (w["long_recognized_ms"] / w["long_idle_ms"]
                                  if w["long_idle_ms"] > 0 else None)
    w["drained_share"] = w["drained_gaps"] / w["gaps"] if w["gaps"] else None
    a, b = after.get("late_hist") or [], before.get("late_hist") or []
    counts = [x - (b[i] if i < len(b) else 0) for i, x in enumerate(a)]
    edges = after.get("late_hist_edges_us") or []
    for q in (50, 90, 99):
        w[f"late_p{q}_us"] = hist_percentile(counts, edges, q / 100) if edges else None
    w["marker_every"] = after.get("marker_every")
    return w


def chain_latency(text):
    """fikit-chain's key=value line -> latency in ms (p50, p99, mean)."""
    kv = {}
    for line in text.splitlines():
        if line.startswith("mode=hp"):
            kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    if not kv:
        return None
    return {"p50_ms": float(kv["p50_us"]) / 1e3, "p99_ms": float(kv["p99_us"]) / 1e3,
            "mean_ms": float(kv["mean_us"]) / 1e3, "requests": int(kv["requests"])}


def torch_latency(jsonl):
    """hp_infer.py's record -> latency in ms (p50, p99, mean), requests and the start-signal wait."""
    try:
        with open(jsonl) as f:
            rec = json.loads(f.readlines()[-1])
    except (OSError, IndexError, ValueError):
        return None
    out = {k: rec.get(k) for k in ("p50_ms", "p99_ms", "mean_ms", "requests", "error")}
    if rec.get("t_waiting") and rec.get("t_start"):
        out["wait_ms"] = (rec["t_start"] - rec["t_waiting"]) * 1e3
    return out


# ---- runs ----------------------------------------------------------------------------------------

def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("LD_PRELOAD", "FIKIT_", "CUDA_MPS_"))}


def hp_command(args, build, workload, d):
    run = [os.path.join(build, "bin", "fikit-run"), "--priority", "high", "--name", "hp",
           "--socket", os.path.join(d, "broker.sock"), "--"]
    if workload == "chain":
        return run + [os.path.join(build, "bin", "fikit-chain")] + CHAIN
    return run + [sys.executable, os.path.join(HERE, "hp_infer.py"), "--workload", workload,
                  "--requests", str(args.requests), "--warmup", str(args.warmup), "--gap-ms",
                  str(args.gap_ms), "--check-requests", "0", "--deadline-s", "60", "--out-jsonl",
                  os.path.join(d, "hp.jsonl"), "--waiting-file", os.path.join(d, "waiting"),
                  "--wait-for", os.path.join(d, "go")]


def broker_args(markers):
    return ["--substrate", "timeslice", "--switch-cost-us", "0", "--hp-marker-every", str(markers)]


def run_one(args, build, workload, markers, d):
    """One workload under one broker. Return a record (latency, hp_idle window, notes)."""
    os.makedirs(d, exist_ok=True)
    rec = {"workload": workload, "marker_every": markers}
    cmd = hp_command(args, build, workload, d)
    with Broker(os.path.join(build, "bin", "fikit-broker"), d, policy="none",
                extra_args=broker_args(markers)) as broker:
        before = None
        with open(os.path.join(d, "hp.log"), "w") as log:
            p = subprocess.Popen(cmd, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                                 process_group=0)
        try:
            if workload != "chain":
                wait_until(lambda: os.path.exists(os.path.join(d, "waiting")) or p.poll() is not None,
                           240, 0.05)
                before = (broker.status() or {}).get("hp_idle")
                open(os.path.join(d, "go"), "w").close()
            p.wait(timeout=240)
        except subprocess.TimeoutExpired:
            rec["note"] = "timed out"
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        after = (broker.status() or {}).get("hp_idle")
        rec["substrate"] = ((broker.status() or {}).get("substrate") or {}).get("kind")
    with open(os.path.join(d, "hp.log"), errors="replace") as f:
        out = f.read()
    rec["exit"] = p.returncode
    rec["latency"] = chain_latency(out) if workload == "chain" else torch_latency(
        os.path.join(d, "hp.jsonl"))
    if markers and after:
        rec["hp_idle"] = window(before, after, (rec["latency"] or {}).get("wait_ms", 0.0))
    if p.returncode != 0:
        rec["output_tail"] = out[-1500:]
    return rec


# ---- report --------------------------------------------------------------------------------------

def fmt(v, spec="{:.1f}", none="-"):
    return none if v is None else spec.format(v)


def table(records):
    head = ("| HP workload | requests | gaps | true idle ms | recognized | drained gaps | lateness "
            "p50 / p90 / p99 us (<=) | gaps >= 50 us: recognized | lost | p50 ms markers / plain | "
            "marker cost (mean) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows, by = [], {}
    for r in records:
        by.setdefault(r["workload"], {})[bool(r["marker_every"])] = r
    for w, pair in by.items():
        m, plain = pair.get(True, {}), pair.get(False, {})
        h, lm, lp = m.get("hp_idle") or {}, m.get("latency") or {}, plain.get("latency") or {}
        cost = (lm["mean_ms"] / lp["mean_ms"] if lm.get("mean_ms") and lp.get("mean_ms") else None)
        lat = " / ".join(fmt(h.get(f"late_p{q}_us")) for q in (50, 90, 99))
        rows.append(
            f"| {w} | {lm.get('requests', '-')} | {h.get('gaps', '-')} | {fmt(h.get('idle_ms'))} | "
            f"{fmt(h.get('recognized_share'), '{:.1%}')} | {h.get('drained_gaps', '-')} | {lat} | "
            f"{fmt(h.get('long_recognized_share'), '{:.1%}')} ({h.get('long_gaps', '-')}) | "
            f"{h.get('lost_records', '-')} | {fmt(lm.get('p50_ms'), '{:.3f}')} / "
            f"{fmt(lp.get('p50_ms'), '{:.3f}')} | {fmt(cost, '{:.3f}x')} |")
    return head + "\n".join(rows) + "\n"


def write_report(path, meta, records):
    text = ["# HP idleness as the broker sees it", "",
            f"{meta.get('gpu', '?')}, driver {meta.get('driver', '?')}, commit {meta.get('commit', '?')}, "
            f"{meta.get('date', '')}; marker after 1 in {meta.get('marker_every')} HP launches; "
            f"{meta.get('requests')} requests per workload, mean gap {meta.get('gap_ms')} ms.", "",
            table(records),
            "true idle: GPU idle time of the HP task between the marker of its last kernel and its next "
            "launch; recognized: the part after the host's synchronizing calls drained it (what the "
            "broker can fill); lateness: drain time - marker time per drained gap (histogram bucket "
            "upper edges; 0 = the host saw it first); marker cost: mean request latency with markers "
            "after every launch over without (both as HP tenants).", "", "## Raw records", "",
            "```json", json.dumps(meta)] + [json.dumps(r) for r in records] + ["```", ""]
    with open(path, "w") as f:
        f.write("\n".join(text))


def gpu_meta():
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": os.environ.get("FIKIT_COMMIT", "")}
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode == 0 and r.stdout.strip():
            meta["gpu"], meta["driver"] = [x.strip() for x in r.stdout.splitlines()[0].split(",")][:2]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return meta


def main():
    args = parse_args()
    build = os.path.abspath(args.build)
    workloads = [w for w in args.workloads.split(",") if w] + ([] if args.no_chain else ["chain"])
    plan = [(w, m) for w in workloads for m in ([args.marker_every] + ([] if args.no_baseline else [0]))]
    if args.dry_run:
        for w, m in plan:
            print(f"[{w}, markers {m}] broker {' '.join(broker_args(m))}; HP: "
                  f"{' '.join(hp_command(args, build, w, '$DIR'))}")
        return 0
    if "--hp-marker-every" not in broker_help(os.path.join(build, "bin", "fikit-broker")):
        sys.exit(f"{build}/bin/fikit-broker has no --hp-marker-every: rebuild it")
    meta = gpu_meta()
    if "gpu" not in meta:
        print("no GPU found (nvidia-smi): skipped")
        return 77
    meta.update(marker_every=args.marker_every, requests=args.requests, gap_ms=args.gap_ms)
    work = args.work_dir or tempfile.mkdtemp(prefix="fikit-idle-")
    records, start = [], time.monotonic()
    try:
        for i, (w, m) in enumerate(plan):
            need = 5 if w == "chain" else 25
            if time.monotonic() - start + need > args.budget_s:
                records.append({"workload": w, "marker_every": m, "note": "skipped: budget"})
                continue
            rec = run_one(args, build, w, m, os.path.join(work, f"{i}-{w.replace(':', '-')}-{m}"))
            records.append(rec)
            print(json.dumps({k: rec.get(k) for k in ("workload", "marker_every", "exit", "latency")}),
                  flush=True)
            write_report(args.out, meta, records)
    finally:
        stop_all()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    write_report(args.out, meta, records)
    print(table(records))
    return 0 if all(r.get("exit") == 0 for r in records if "exit" in r) else 1


if __name__ == "__main__":
    sys.exit(main())
