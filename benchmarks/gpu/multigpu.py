#!/usr/bin/env python3
"""Run 3 of issue 17: fikit on a node of two GPUs (device kind nvidia-h200-x2), one broker for both.

    multigpu.py --build BUILD --out DIR [--budget-s S] [--sim] [--dry-run]

Cases, in order (each plain baseline first, so the ratios come from one call):
  hp-alone-0, hp-alone-1   the HP (BERT-base graph b8, Poisson arrivals) alone on GPU 0, on GPU 1
  lp-alone-1, lp-alone-0   the LP (ResNet-50 training b64) alone on GPU 1, on GPU 0
  split-index              fikit, --substrate timeslice: HP on GPU 0, LP on GPU 1, chosen with
                           CUDA_VISIBLE_DEVICES=0 / =1. The LP should keep its alone rate (>= 95%):
                           it shares no GPU with the HP. The broker measures the switch-back cost
                           of each GPU at start, before any tenant (its log and status are kept).
                           While it runs, a second broker is started on the same run directory and
                           on another one: both must be refused, naming the first broker.
  split-uuid               the same on MPS (--substrate mps), the GPUs named by UUID
                           (CUDA_VISIBLE_DEVICES=GPU-...), as read with cuDeviceGetUuid
  both                     fikit on MPS: an HP process on each GPU and an LP process on each GPU
                           (CUDA_VISIBLE_DEVICES by index): each LP waits only for its own GPU's HP
Writes DIR/multigpu.md (tables, what the broker's status showed per GPU, the refusals) and
DIR/raw.jsonl (every command, output tail, broker status and log tail). The status is read as
the multi-GPU issue (12) shapes it ("gpus": [{"index", "uuid", "name", ..., "tenants": [...]}]);
where the broker predates it, the tables say so instead of failing.

--sim: on the simulated driver with FIKIT_SIM_DEVICES=2 (a build whose sim has it, issue 12) and
the stand-in workloads (sim_workload.py): the plumbing only, never numbers about fikit.
Nothing here changes a GPU setting.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import execute
import fikit_proc
import report
from plan import Cmd

HERE = os.path.dirname(os.path.abspath(__file__))
HP_WORKLOAD = "bert-base:graph:8"
UUID_QUERY = r"""
import ctypes, json
cu = ctypes.CDLL("libcuda.so.1")
assert cu.cuInit(0) == 0
n = ctypes.c_int(); cu.cuDeviceGetCount(ctypes.byref(n)); out = []
for i in range(n.value):
    d = ctypes.c_int(); cu.cuDeviceGet(ctypes.byref(d), i); u = (ctypes.c_ubyte * 16)()
    f = getattr(cu, "cuDeviceGetUuid_v2", None) or cu.cuDeviceGetUuid
    f(u, d); h = bytes(u).hex()
    out.append("GPU-%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
print(json.dumps(out))
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", required=True)
    p.add_argument("--out", help="output directory (required unless --dry-run)")
    p.add_argument("--budget-s", type=float, default=520)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--sim", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print the cases and commands; start nothing")
    a = p.parse_args()
    if not a.dry_run and not a.out:
        p.error("--out is required")
    return a


class Node:
    """Paths, the environment every process gets, and the GPUs' UUIDs."""

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.build = os.path.abspath(args.build)
        self.env = {"PYTHONUNBUFFERED": "1"}
        if args.sim:
            self.env.update(LD_LIBRARY_PATH=os.path.join(self.build, "sim"), FIKIT_SIM_DEVICES="2",
                            FIKIT_SIM_MODE="mps", FIKIT_SIM_GPU=f"/fikit-multigpu-{os.getpid()}",
                            FIKIT_BENCH_SIM_ROOT=os.path.join(work, "sim"))
            os.environ["PATH"] = os.path.join(HERE, "sim") + os.pathsep + os.environ["PATH"]
            os.environ["FIKIT_BENCH_SIM_ROOT"] = self.env["FIKIT_BENCH_SIM_ROOT"]
        self.uuids = []

    def bin(self, name):
        return os.path.join(self.build, "bin", name)

    def query_uuids(self):
        try:
            r = subprocess.run([sys.executable, "-c", UUID_QUERY], env=dict(execute.clean_env(), **self.env),
                               capture_output=True, text=True, timeout=60)
            self.uuids = json.loads(r.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as e:
            self.uuids = []
            return f"cuDeviceGetUuid query failed: {e}"
        return None

    def workload(self, kind, d, name):
        script = [sys.executable, os.path.join(HERE, "sim_workload.py"), kind] if self.args.sim else \
            [sys.executable, os.path.join(HERE, "hp_infer.py" if kind == "hp" else "lp_train.py")]
        if kind == "hp":
            return script + ["--workload", HP_WORKLOAD, "--requests", str(self.args.requests),
                             "--warmup", "20", "--gap-ms", "3", "--gap-dist", "exp", "--deadline-s", "40",
                             "--check-requests", "0", "--out-jsonl", os.path.join(d, f"{name}.jsonl")]
        return script + ["--model", "resnet50", "--mode", "train", "--batch", "64", "--seconds", "120",
                         "--progress", os.path.join(d, f"{name}.progress"),
                         "--ready", os.path.join(d, f"{name}.ready")]


# A case: which processes on which GPU (by "index" or "uuid"), under a broker or not.
CASES = [
    dict(name="hp-alone-0", procs=[("hp", 0)]),
    dict(name="hp-alone-1", procs=[("hp", 1)]),
    dict(name="lp-alone-1", procs=[("lp", 1)], lp_alone_s=8),
    dict(name="lp-alone-0", procs=[("lp", 0)], lp_alone_s=8),
    dict(name="split-index", procs=[("lp", 1), ("hp", 0)], fikit="timeslice", second_broker=True),
    dict(name="split-uuid", procs=[("lp", 1), ("hp", 0)], fikit="mps", by="uuid"),
    dict(name="both", procs=[("lp", 0), ("lp", 1), ("hp", 0), ("hp", 1)], fikit="mps"),
]


def visible(node, gpu, by):
    if by == "uuid" and len(node.uuids) > gpu:
        return node.uuids[gpu]
    return str(gpu)


def case_cmds(node, case, d):
    """[(name, Cmd)] for a case: LPs first (the HPs wait for them to be ready)."""
    out = []
    readies = []
    for kind, gpu in case["procs"]:
        name = f"{kind}{gpu}"
        argv = node.workload(kind, d, name)
        if kind == "hp" and readies:
            argv += ["--wait-for", readies[0]]
        if kind == "lp":
            readies.append(os.path.join(d, f"{name}.ready"))
        if case.get("fikit"):
            argv = [node.bin("fikit-run"), "--priority", "high" if kind == "hp" else "low", "--name",
                    name, "--socket", os.path.join(d, "broker.sock"), "--"] + argv
        env = dict(node.env, CUDA_VISIBLE_DEVICES=visible(node, gpu, case.get("by", "index")))
        out.append((name, Cmd(argv, env)))
    return out


def broker_args(node, case):
    extra = ["--substrate", case["fikit"]]
    if node.args.sim:
        extra += ["--no-bpf", "--profile-dir", ""]
    return extra


def second_broker(node, d):
    """Start another broker on the same GPUs while the first runs: on its run directory (another
    socket), and on a run directory of its own. Both must be refused; returns what each said."""
    out = {}
    for label, run_dir in (("same run dir", d), ("other run dir", os.path.join(node.work, "second"))):
        os.makedirs(run_dir, exist_ok=True)
        argv = [node.bin("fikit-broker"), "start", "--socket", os.path.join(run_dir, "second.sock"),
                "--run-dir", run_dir, "--foreground", "--policy", "fikit", "--substrate", "timeslice",
                "--log", os.path.join(run_dir, "second.log")]
        argv += ["--no-bpf", "--profile-dir", ""] if node.args.sim else []
        try:
            p = subprocess.Popen(argv, env=dict(os.environ, **node.env), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, process_group=0)
            try:
                text, _ = p.communicate(timeout=10)
                out[label] = {"refused": p.returncode != 0, "rc": p.returncode, "output": text[-1500:]}
            except subprocess.TimeoutExpired:  # it started: that is the failure; stop it
                subprocess.run([node.bin("fikit-broker"), "stop", "--socket",
                                os.path.join(run_dir, "second.sock")], capture_output=True, timeout=15)
                execute.stop_group(p, signal.SIGTERM, 10)
                out[label] = {"refused": False, "rc": None, "output": "still running after 10 s: NOT refused"}
        except OSError as e:
            out[label] = {"refused": None, "rc": None, "output": f"could not run: {e}"}
        try:
            with open(os.path.join(run_dir, "second.log"), errors="replace") as f:
                out[label]["log"] = f.read()[-1500:]
        except OSError:
            pass
    return out


def run_case(node, case, deadline):
    d = os.path.join(node.work, case["name"])
    os.makedirs(d, exist_ok=True)
    rec = {"type": "case", "name": case["name"],
           "date": datetime.datetime.now().isoformat(timespec="seconds")}
    cmds = case_cmds(node, case, d)
    rec["commands"] = {n: c.shell() for n, c in cmds}
    broker, procs = None, {}
    t0 = time.monotonic()
    try:
        if case.get("fikit"):
            broker = fikit_proc.Broker(node.bin("fikit-broker"), d, extra_args=broker_args(node, case),
                                       extra_env=node.env).start()
            rec["broker_argv"] = broker.argv()
        for n, c in cmds:
            procs[n] = execute.spawn(c, os.path.join(d, f"{n}.out"))
        hps = [n for n in procs if n.startswith("hp")]
        if case.get("second_broker"):
            time.sleep(2)
            rec["second_broker"] = second_broker(node, d)
        if hps:
            for n in hps:
                left = max(1.0, deadline - time.monotonic())
                try:
                    procs[n].wait(timeout=left)
                except subprocess.TimeoutExpired:
                    rec["timed_out"] = True
                    execute.stop_group(procs[n])
        else:  # LP alone: from its warm-up's end, for lp_alone_s
            ready = [os.path.join(d, f"{n}.ready") for n in procs]
            fikit_proc.wait_until(lambda: all(os.path.exists(r) for r in ready), 180, 0.1)
            time.sleep(case.get("lp_alone_s", 8))
        if broker:
            rec["status"] = broker.status()
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        for n, p in procs.items():
            execute.stop_group(p, signal.SIGTERM if n.startswith("lp") else signal.SIGKILL, 20)
        if broker:
            broker.stop()
            rec["status_last"] = broker.last_status
            rec["broker_log"] = broker.output_tail(4000)
            rec["broker_cpu_pct"] = broker.cpu_percent(t0, time.monotonic())
    rec["step_s"] = time.monotonic() - t0
    for n in procs:
        rec[f"{n}_tail"] = execute.tail(os.path.join(d, f"{n}.out"), 1500)
        if n.startswith("hp"):
            hp = execute.read_jsonl(os.path.join(d, f"{n}.jsonl"))
            rec[n] = {k: hp[0].get(k) for k in ("p50_ms", "p99_ms", "mean_ms", "requests", "error", "t_start",
                                               "t_end", "fikit")} if hp else None
            if hp:
                rec[n]["lat_ms"] = hp[0].get("lat_ms")
        else:
            times = execute.read_times(os.path.join(d, f"{n}.progress"))
            rec[n] = {"iters": len(times), "times": times}
    return rec


def lp_rate(rec, name, window=None):
    """The LP's iterations/s: over its whole progress, or inside window (t0, t1)."""
    t = (rec.get(name) or {}).get("times")
    if t is None:
        return None
    if window:  # iterations completed inside the HP's window, 0 if none
        return sum(1 for x in t if window[0] <= x <= window[1]) / (window[1] - window[0])
    return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else None


def hp_window(rec, names):
    ws = [(rec[n]["t_start"], rec[n]["t_end"]) for n in names if rec.get(n) and rec[n].get("t_start")]
    return (min(w[0] for w in ws), max(w[1] for w in ws)) if ws else None


def gpus_of_status(status):
    """[(index, uuid, [tenant names], other fields)] from status["gpus"] (tenants by id there,
    named from status["tenants"]), or None where the status has no such list."""
    if not status or not isinstance(status.get("gpus"), list):
        return None
    names = {t.get("id"): t.get("name") for t in status.get("tenants") or [] if isinstance(t, dict)}
    out = []
    for g in status["gpus"]:
        ts = [t.get("name") if isinstance(t, dict) else names.get(t, str(t)) for t in g.get("tenants") or []]
        rest = {k: v for k, v in g.items()
                if k not in ("index", "uuid", "tenants") and not isinstance(v, (list, dict))}
        out.append((g.get("index"), g.get("uuid"), ts, rest))
    return out


def write_md(out_dir, node, recs, metas):
    by = {r["name"]: r for r in recs}
    lines = ["# fikit on two GPUs (issue 17, run 3)", ""]
    m = metas
    lines += [f"- GPUs: {m.get('gpus', '?')}; UUIDs (cuDeviceGetUuid): {', '.join(node.uuids) or 'unknown'}"
              + (f" ({m['uuid_error']}: split-uuid used indices)" if m.get("uuid_error") else ""),
              f"- commit {m.get('commit')}; date {m.get('date')}; HP {HP_WORKLOAD} (Poisson, mean 3 ms), "
              "LP ResNet-50 train b64; " + ("SIMULATED driver: plumbing only" if node.args.sim
                                             else "real GPUs"), ""]
    alone = {g: (by.get(f"hp-alone-{g}") or {}).get("hp0" if g == 0 else "hp1") for g in (0, 1)}
    lp_alone = {g: lp_rate(by.get(f"lp-alone-{g}") or {}, f"lp{g}") for g in (0, 1)}
    head = ["case", "HP on GPU 0 p50 / p99 (x alone)", "HP on GPU 1 p50 / p99 (x alone)",
            "LP on GPU 0 (vs alone)", "LP on GPU 1 (vs alone)", "broker CPU", "notes"]
    lines += [report._cells(head), "|" + "---|" * len(head)]
    for r in recs:
        cells = [r["name"]]
        hps = [n for n in ("hp0", "hp1") if n in r]
        win = hp_window(r, hps)
        for g in (0, 1):
            h, a = r.get(f"hp{g}"), alone.get(g)
            if not h or h.get("p50_ms") is None:
                cells.append("—")
                continue
            x = ""
            if a and a.get("p50_ms"):
                x = f" ({h['p50_ms'] / a['p50_ms']:.2f}x / {h['p99_ms'] / a['p99_ms']:.2f}x)"
            cells.append(f"{h['p50_ms']:.2f} / {h['p99_ms']:.2f} ms{x}")
        for g in (0, 1):
            rate = lp_rate(r, f"lp{g}", win)
            if rate is None:
                cells.append("—")
                continue
            share = lp_alone[g] and "alone" not in r["name"]
            cells.append(f"{rate:.1f} it/s" + (f" ({rate / lp_alone[g]:.0%})" if share else ""))
        cells.append("—" if r.get("broker_cpu_pct") is None else f"{r['broker_cpu_pct']:.0f}%")
        notes = [r[k] if isinstance(r.get(k), str) else k for k in ("error", "timed_out") if r.get(k)]
        cells.append("; ".join(notes) or "")
        lines.append(report._cells(cells))
    lines += ["", "## What the broker saw, per GPU", ""]
    for r in recs:
        if "broker_argv" not in r:
            continue
        st = r.get("status_last") or r.get("status")  # the sample with the most tenants
        g = gpus_of_status(st)
        if g is None:
            lines.append(f"- {r['name']}: status has no \"gpus\" list (a broker before issue 12?): "
                         f"tenants {[t.get('name') for t in (st or {}).get('tenants') or []]}")
        else:
            lines.append(f"- {r['name']}: " + "; ".join(
                f"GPU {i} {u or '(no uuid)'}: {', '.join(t) or 'no tenant'} {json.dumps(rest)}"
                for i, u, t, rest in g))
        cal = [l.strip() for l in (r.get("broker_log") or "").splitlines()
               if any(w in l.lower() for w in ("switch", "calibrat"))]
        lines += [f"  - log: `{report._one_line(l, 200)}`" for l in cal[-4:]]
    sb = (by.get("split-index") or {}).get("second_broker")
    if sb:
        lines += ["", "## A second broker on the same GPUs", ""]
        for label, v in sb.items():
            verdict = {True: "refused (PASS)", False: "NOT refused (FAIL)", None: "not run"}[v.get("refused")]
            said = report._one_line(v.get("output"), 300)
            lines.append(f"- {label}: {verdict}, exit {v.get('rc')}: `{said}`")
    lines += ["", "Targets (issues 12 and 17): the LP on a GPU without HP keeps >= 95% of its alone "
              "rate; the HP on its own GPU stays at its alone latency; a second broker is refused, "
              "naming the first.", ""]
    with open(os.path.join(out_dir, "multigpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    args = parse_args()
    work = tempfile.mkdtemp(prefix="fikit-mg-") if not args.dry_run else "/tmp/fikit-mg-DRYRUN"
    node = Node(args, work)
    if args.dry_run:
        for case in CASES:
            how = f" broker --substrate {case['fikit']}" if case.get("fikit") else " plain"
            print(f"[{case['name']}]{how}")
            for n, c in case_cmds(node, case, os.path.join(work, case["name"])):
                print(f"  {n}: {c.shell()}")
        return 0
    os.makedirs(args.out, exist_ok=True)
    if args.sim:
        os.makedirs(node.env["FIKIT_BENCH_SIM_ROOT"], exist_ok=True)
    t0 = time.monotonic()
    raw = os.path.join(args.out, "raw.jsonl")
    meta = {"type": "meta", "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "commit": os.environ.get("FIKIT_COMMIT") or "unknown", "sim": args.sim}
    q = subprocess.run(["nvidia-smi", "--query-gpu=index,name,uuid,driver_version", "--format=csv,noheader"],
                       capture_output=True, text=True) if shutil.which("nvidia-smi") else None
    meta["gpus"] = q.stdout.strip().replace("\n", "; ") if q and q.returncode == 0 else "?"
    meta["uuid_error"] = node.query_uuids()
    meta["uuids"] = node.uuids
    recs = []
    with open(raw, "w") as f:
        f.write(json.dumps(meta) + "\n")
    try:
        for case in CASES:
            left = args.budget_s - (time.monotonic() - t0)
            if left < 40:
                recs.append({"type": "case", "name": case["name"], "error": f"budget: {left:.0f} s left"})
                continue
            print(f"[{case['name']}] {left:.0f} s left", flush=True)
            rec = run_case(node, case, time.monotonic() + min(150, left - 10))
            recs.append(rec)
            with open(raw, "a") as f:
                f.write(json.dumps(rec, default=str) + "\n")
    except KeyboardInterrupt:
        pass
    finally:
        fikit_proc.stop_all()
        if args.sim:
            fikit_proc.remove_sim_gpu(node.env["FIKIT_SIM_GPU"])
        write_md(args.out, node, recs, meta)
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(args.out, "multigpu.md")) as f:
        print(f.read(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
