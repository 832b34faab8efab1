#!/usr/bin/env python3
"""The fikit GPU benchmark: one command on a GPU machine.

    python3 benchmarks/gpu/run_bench.py --build build --out benchmarks/results/gpu-DATE --quick
    python3 benchmarks/gpu/run_bench.py --dry-run --quick     # the plan: exact commands, env, order

For each pair of HP inference workloads and an LP (PyTorch training, or the chain program's burn
kernels) it runs: HP alone; HP alone with the library (overhead); LP alone; default time-slicing;
MPS; MPS with the LP at CUDA_MPS_CLIENT_PRIORITY=1; fikit on time-slicing; fikit on MPS; in that
order, for each repeat. docs/GPU.md explains each setting and each number.

Output in --out (4 files, so that --out "$OUT" works on the lent GPU machine): results.csv (one row
per HP workload and setting and repeat, appended as each step ends), raw.jsonl (the run's metadata,
then one record per step: commands, per-request latencies, broker status, output tails),
results.md (tables and targets, rewritten after each step) and results.png (after each repeat).
A run that is killed leaves what it finished; --resume continues it.

Every step is time-boxed; --budget-s drops repeats (and, if need be, the last steps) to fit. The
runner never changes a GPU setting: no compute mode, clocks, MIG or reset.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import fikit_proc
import report
from execute import run_step
from plan import (SETTINGS, BrokerCaps, Paths, commands, describe, estimate_s, full_plan, hp_workloads,
                  quick_plan, rep_list, steps)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK_PREFIX = "fikit-bench-"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="about 8 minutes of GPU time (default)")
    g.add_argument("--full", action="store_true", help="about 1.5 hours: more models, LPs, repeats")
    p.add_argument("--build", default=os.path.join(REPO, "build"), help="fikit build directory")
    p.add_argument("--out", help="output directory (created)")
    p.add_argument("--budget-s", type=float, default=0, help="wall-time budget; 0: none")
    p.add_argument("--repeats", type=int, help="override the preset's repeats")
    p.add_argument("--requests", type=int, help="override requests per HP workload")
    p.add_argument("--gap-dist", choices=("exp", "fixed"),
                   help="HP think time between requests: exponential (the preset's) or fixed")
    p.add_argument("--arrivals", help="comma-separated HP arrival processes served by each HP step in\n"
                   "turn (exp,fixed): one start-up for both; workloads get an @exp/@fixed suffix")
    p.add_argument("--settings",
                   help="comma-separated settings, run in this order, from: " + ",".join(SETTINGS))
    p.add_argument("--reps", help="comma-separated repeat indices to run (default: 0..repeats-1), so that\n"
                   "two calls can share the repeats of one plan")
    p.add_argument("--once", help="comma-separated settings run only in the first repeat of --reps")
    p.add_argument("--warmup", type=int, help="override warm-up requests per HP workload")
    p.add_argument("--lp-alone-s", type=float, help="override the LP-alone measurement (seconds)")
    p.add_argument("--no-plot", action="store_true", help="no results.png (draw it where the results land)")
    p.add_argument("--sim", action="store_true",
                   help="dry run on the simulated driver: sim_workload.py stands in for the PyTorch\n"
                        "workloads, sim/ stubs for nvidia-cuda-mps-control and nvidia-smi")
    p.add_argument("--lps", help="comma-separated subset of the preset's LP names")
    p.add_argument("--workloads", help="comma-separated PyTorch HP workloads (MODEL:MODE:BATCH)")
    p.add_argument("--policy", default="fikit", help="broker policy of the fikit settings (default fikit)")
    p.add_argument("--policy-opts", default="", help="the broker's --policy-opts in the fikit settings,\n"
                   "e.g. risk_residual=0 (docs/POLICY.md, Parameters)")
    p.add_argument("--mps-by", choices=("auto", "runner", "broker"), default="auto",
                   help="who runs MPS for fikit-mps: broker (--substrate mps) or this runner;\n"
                        "auto: the broker if its --help lists --substrate")
    p.add_argument("--commit", help="commit to report (default: $FIKIT_COMMIT, else git rev-parse HEAD)")
    p.add_argument("--work-dir", help="scratch directory (default: a new /tmp/fikit-bench-*)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch directory")
    p.add_argument("--resume", action="store_true", help="skip steps already ok in --out")
    p.add_argument("--dry-run", action="store_true", help="print the plan; start nothing")
    a = p.parse_args(argv)
    if not a.dry_run and not a.out:
        p.error("--out is required (except with --dry-run)")
    return a


def build_plan(args):
    plan = full_plan() if args.full else quick_plan()
    if args.repeats:
        plan.repeats = args.repeats
    if args.requests:
        plan.requests = args.requests
    if args.gap_dist:
        plan.gap_dist = args.gap_dist
    if args.warmup is not None:
        plan.warmup = args.warmup
    if args.lp_alone_s:
        plan.lp_alone_s = args.lp_alone_s
    if args.arrivals:
        plan.arrivals = args.arrivals.split(",")
        bad = [a for a in plan.arrivals if a not in ("exp", "fixed")]
        if bad:
            sys.exit(f"unknown arrivals {bad}: choose from exp, fixed")
        plan.gap_dist = plan.arrivals[0]
    if args.reps:
        plan.reps = [int(x) for x in args.reps.split(",")]
        plan.repeats = max(plan.repeats, max(plan.reps) + 1)
    plan.policy = args.policy
    plan.policy_opts = args.policy_opts
    plan.sim = args.sim
    if args.settings:
        wanted = args.settings.split(",")
        bad = [s for s in wanted if s not in SETTINGS]
        if bad:
            sys.exit(f"unknown settings {bad}: choose from {', '.join(SETTINGS)}")
        plan.settings = wanted
    if args.once:
        plan.once = tuple(args.once.split(","))
    if args.lps:
        wanted = args.lps.split(",")
        bad = [l for l in wanted if l not in [lp.name for lp in plan.lps]]
        if bad:
            sys.exit(f"unknown LPs {bad}: choose from {', '.join(lp.name for lp in plan.lps)}")
        plan.lps = [lp for lp in plan.lps if lp.name in wanted]
    if args.workloads:
        plan.hp_sets[0].workloads = args.workloads.split(",")
    return plan


def missing_parts(step, paths, have_torch, caps=None):
    """What the step needs and this machine lacks (empty: runnable)."""
    miss = []
    s = step.setting
    if s.needs and caps is not None and not getattr(caps, s.needs):
        miss.append(f"fikit-broker --{s.needs.replace('_', '-')} (not in its --help)")
    if s.fikit:
        miss += [p for p in (paths.bin("fikit-broker"), paths.bin("fikit-run"),
                             os.path.join(paths.build, "lib", "libfikit.so")) if not os.path.exists(p)]
    if s.mps and not shutil.which("nvidia-cuda-mps-control"):
        miss.append("nvidia-cuda-mps-control")
    kinds = {step.lp.kind} if step.lp else set()
    kinds |= {step.hp_set.kind} if step.hp_set else set()
    if "chain" in kinds and not os.path.exists(paths.bin("fikit-chain")):
        miss.append(paths.bin("fikit-chain"))
    if "torch" in kinds and not have_torch:
        miss.append("python3 with torch")
    return miss


def _run(argv, timeout=30):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.stdout.strip() if r.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def collect_meta(args, plan):
    """GPU, driver, CUDA, PyTorch, commit, date: read only, nothing is changed."""
    m = {"type": "meta", "date": datetime.datetime.now().isoformat(timespec="seconds"),
         "preset": plan.preset, "repeats": plan.repeats, "budget_s": args.budget_s,
         "hp_think": {"dist": plan.gap_dist, "mean_ms": plan.gap_ms},
         "argv": " ".join(sys.argv), "host": socket.gethostname()}
    q = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_mode,memory.total",
              "--format=csv,noheader"]).splitlines()
    if q:
        parts = [x.strip() for x in q[0].split(",")]
        m.update(zip(("gpu", "driver", "compute_mode", "memory"), parts))
        m["gpus"] = len(q)
    cv = re.search(r"CUDA Version:\s*([\d.]+)", _run(["nvidia-smi"]))
    m["cuda_driver"] = cv.group(1) if cv else None
    t = _run([sys.executable, "-c", "import torch, json; print(json.dumps([torch.__version__, "
              "torch.version.cuda, torch.cuda.is_available()]))"], timeout=120)
    if t:
        m["torch"], m["cuda_torch"], m["torch_sees_gpu"] = json.loads(t.splitlines()[-1])
    commit = args.commit or os.environ.get("FIKIT_COMMIT")
    m["commit"] = commit or _run(["git", "-C", REPO, "rev-parse", "HEAD"]) or "unknown"
    if not commit and _run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"]):
        m["commit"] += "-dirty"
    return m


def broker_caps(broker_bin, mps_by):
    """Read what the broker offers from its --help; decide who runs MPS for fikit-mps."""
    text = fikit_proc.broker_help(broker_bin) if os.path.exists(broker_bin) else ""
    caps = BrokerCaps(substrate="--substrate" in text, switch_cost="--switch-cost-us" in text,
                      hp_budget="--hp-budget" in text)
    caps.mps_by_broker = mps_by == "broker" or (mps_by == "auto" and caps.substrate)
    return caps


def budget_fallback(plan, caps):
    """Without --hp-budget in the broker, the budget settings are skipped: run plain fikit on MPS
    in their place (the broker's own default), and say so. Returns the note, or None."""
    budgeted = [s for s in plan.settings if SETTINGS[s].needs == "hp_budget"]
    if not budgeted or caps.hp_budget:
        return None
    if "fikit-mps" not in plan.settings:
        plan.settings.insert(plan.settings.index(budgeted[0]), "fikit-mps")
    return (f"fikit-broker --help has no --hp-budget: {', '.join(budgeted)} skipped, fikit-mps "
            "(the broker's default) run in their place")


def dry_run(plan, paths, caps):
    note = budget_fallback(plan, caps)
    if note:
        print("note: " + note)
    print(f"preset {plan.preset}: repeats {rep_list(plan)}; settings {', '.join(plan.settings)}"
          + (f"; only in the first repeat: {', '.join(plan.once)}" if plan.once else ""))
    print(f"build {paths.build}; broker: {caps}; fikit-mps: MPS run by "
          f"{'the broker' if caps.mps_by_broker else 'this runner'}")
    print("every command runs with the runner's environment minus LD_PRELOAD, FIKIT_* and CUDA_MPS_*,"
          " plus the variables shown")
    total, first = 0.0, True
    for rep in rep_list(plan):
        for step in steps(plan, rep):
            total += estimate_s(plan, step)
            if not first:
                continue
            c = commands(plan, step, paths, caps)
            miss = missing_parts(step, paths, True, caps)
            print()
            print("\n".join(describe(plan, step, c)))
            if miss:
                print("  would be skipped here: missing " + ", ".join(miss))
        first = False
    print(f"\nestimated {total:.0f} s for repeats {rep_list(plan)} (commands shown for the first; later "
          "repeats run the same steps in the same order, less the --once settings)")
    return 0


def sim_setup(paths, create=True):
    """--sim: the stubs in sim/ come first on PATH (an MPS daemon that only keeps its pipe, an
    nvidia-smi that reports it), with their marker directory in the scratch directory."""
    paths.sim_root = os.path.join(paths.work, "sim")
    if create:
        os.makedirs(paths.sim_root, exist_ok=True)
    os.environ["PATH"] = os.path.join(paths.bench, "sim") + os.pathsep + os.environ["PATH"]
    os.environ["FIKIT_BENCH_SIM_ROOT"] = paths.sim_root


def _on_signal(signum, frame):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # let the clean-up finish
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _done_steps(out):
    path = os.path.join(out, "results.csv")
    if not os.path.exists(path):
        return set()
    return {r["step"] for r in report.read_rows(path) if r["status"] == "ok"}


def write_report(out, with_plot):
    """Regenerate results.md (and .png); a failure here must never stop the measurements."""
    try:
        report.write(out, with_plot=with_plot)
    except Exception as e:
        print(f"warning: failed to write the report in {out}: {type(e).__name__}: {e}", flush=True)


def _log_row(row):
    def f(k):
        v = row.get(k)
        return "-" if v in (None, "") else (f"{v:.2f}" if isinstance(v, float) else str(v))
    print(f"  {row['hp'] or '(LP only)':22s} {row['status']:8s} p50={f('p50_ms')} p99={f('p99_ms')} "
          f"jct={f('jct_ms')} lp={f('lp_rate')} {row.get('note') or ''}", flush=True)


class Runner:
    """Runs the plan's steps in order under the budget, writing results as it goes."""

    def __init__(self, args, plan, paths, caps):
        self.args, self.plan, self.paths, self.caps = args, plan, paths, caps
        self.t0 = time.monotonic()
        self.measured = {}  # (setting, lp, hp set) -> seconds the step took last time
        os.makedirs(args.out, exist_ok=True)
        self.csv = os.path.join(args.out, "results.csv")
        self.raw = os.path.join(args.out, "raw.jsonl")

    def note(self, text):
        print(f"note: {text}", flush=True)
        self.write_raw({"type": "note", "text": text})

    def write_raw(self, rec):
        with open(self.raw, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def left_s(self):
        return self.args.budget_s - (time.monotonic() - self.t0) if self.args.budget_s else float("inf")

    def estimate(self, step):
        k = (step.setting.name, step.lp.name if step.lp else "", step.hp_set.name if step.hp_set else "")
        return self.measured.get(k, estimate_s(self.plan, step)), k

    def skip(self, step, status, why):
        hps = hp_workloads(self.plan, step.hp_set) if step.hp_set and step.hp_set.kind == "torch" else \
            ([step.hp_set.name] if step.hp_set else [""])
        rows = [{"date": datetime.datetime.now().isoformat(timespec="seconds"), "step": step.key,
                 "rep": step.rep, "setting": step.setting.name, "lp": step.lp.name if step.lp else "",
                 "hp": hp, "status": status, "note": why} for hp in hps]
        report.append_rows(self.csv, rows)
        print(f"[{step.key}] {status}: {why}", flush=True)

    def run_step(self, step, have_torch, done):
        if step.key in done:
            return
        miss = missing_parts(step, self.paths, have_torch, self.caps)
        if miss:
            return self.skip(step, "skipped", "missing " + ", ".join(miss))
        est, k = self.estimate(step)
        if self.left_s() < 0.8 * est:
            return self.skip(step, "skipped", f"budget: needs ~{est:.0f} s, {self.left_s():.0f} s left")
        c = commands(self.plan, step, self.paths, self.caps)
        timebox = max(30.0, min(c.timeout_s, self.left_s() - 5))
        print(f"[{step.key}] {step.setting.label} (~{est:.0f} s, box {timebox:.0f} s, "
              f"{time.monotonic() - self.t0:.0f} s elapsed)", flush=True)
        rows, raw = run_step(self.plan, step, c, timebox)
        self.measured[k] = raw["step_s"]
        report.append_rows(self.csv, rows)
        self.write_raw(raw)
        for r in rows:
            _log_row(r)
        write_report(self.args.out, with_plot=False)

    def run(self, have_torch):
        done = _done_steps(self.args.out) if self.args.resume else set()
        reps = rep_list(self.plan)
        for i, rep in enumerate(reps):
            todo = [s for s in steps(self.plan, rep) if s.key not in done]
            need = sum(self.estimate(s)[0] for s in todo)
            if i > 0 and need > self.left_s():
                self.note(f"dropped repeats {reps[i:]}: one needs ~{need:.0f} s, "
                          f"{self.left_s():.0f} s of the budget left")
                break
            for step in todo:
                self.run_step(step, have_torch, done)
            write_report(self.args.out, with_plot=not self.args.no_plot)


def main():
    args = parse_args()
    plan = build_plan(args)
    work = args.work_dir or (tempfile.mkdtemp(prefix=WORK_PREFIX) if not args.dry_run else
                             os.path.join(tempfile.gettempdir(), WORK_PREFIX + "DRYRUN"))
    paths = Paths(build=os.path.abspath(args.build), work=os.path.abspath(work))
    if args.sim:
        sim_setup(paths, create=not args.dry_run)
    longest = max(len(os.path.join(paths.step_dir(s), "mps-pipe", "control")) for s in steps(plan, 0))
    if longest > 100:
        sys.exit(f"--work-dir is too long for unix socket paths ({longest} > 100 bytes): use a shorter one")
    caps = broker_caps(paths.bin("fikit-broker"), args.mps_by)
    if args.dry_run:
        return dry_run(plan, paths, caps)
    fallback = budget_fallback(plan, caps)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    fikit_proc.quit_stale_mps(os.path.join(tempfile.gettempdir(), WORK_PREFIX + "*", "*", "mps-pipe",
                                           "control"))
    runner = Runner(args, plan, paths, caps)
    meta = collect_meta(args, plan)
    meta.update(broker_caps=vars(caps), build=paths.build, work=paths.work)
    runner.write_raw(meta)
    if fallback:
        runner.note(fallback)
    print(f"{meta.get('gpu', 'no GPU found')}, driver {meta.get('driver')}, torch {meta.get('torch')}, "
          f"commit {meta['commit']}", flush=True)
    try:
        runner.run(have_torch=args.sim or bool(meta.get("torch")))
    except KeyboardInterrupt as e:
        runner.note(f"interrupted ({e}); results so far are kept")
    finally:
        fikit_proc.stop_all()
        write_report(args.out, with_plot=not args.no_plot)
        if not args.keep_work:
            shutil.rmtree(paths.work, ignore_errors=True)
    md = os.path.join(args.out, "results.md")
    if os.path.exists(md):
        with open(md) as f:
            print(f.read().split("## How to read")[0], flush=True)
    files = [f for f in ("results.csv", "raw.jsonl", "results.md", "results.png")
             if os.path.exists(os.path.join(args.out, f))]
    print(f"results in {args.out}: {' '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
