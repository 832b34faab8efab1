#!/usr/bin/env python3
"""Scenario benchmark: replay HP/LP workloads on the simulated driver under each broker policy, on
both substrates (time-slicing and MPS-like), and print one table of HP slowdown, LP harvest and
prediction hit rate (benchmarks/scenario/README.md). Python standard library only.

examples:
  make bench-scenario
  benchmarks/scenario/run_scenarios.py --build build --out benchmarks/results/scenario-$(date +%F).md
  benchmarks/scenario/run_scenarios.py --modes mps --workloads fixed --policies fikit,oracle
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_scenarios as ms  # noqa: E402
import scenario_metrics as sm  # noqa: E402

# A request of 10 kernels of 200 us, each its own kernel key (as a model's layers are), 2 ms
# between requests.
HP = ["--kernels", "10", "--kernel-us", ",".join(["200"] * 10), "--request-gap-us", "2000"]

# name -> HP arguments (fikit-chain hp, besides --requests) and LP tenants (name, priority, us).
WORKLOADS = {
    "fixed": (HP + ["--gap-us", "300"], [("lp-low", "low", [50])]),
    "jitter": (HP + ["--gap-us", "300", "--gap-jitter", "0.3"], [("lp-low", "low", [50, 200])]),
    # One key followed by 100 us or (30%) 1.5 ms gaps, and by the requests' 2 ms gaps.
    "bimodal": (["--kernels", "10", "--kernel-us", "200", "--request-gap-us", "2000",
                 "--gap-us", "100", "--gap-bimodal", "0.3:1500"], [("lp-low", "low", [100])]),
    # Three keys with their own gaps; two LP tenants of different priority.
    "multikey": (["--kernels", "9", "--kernel-us", "150,300,100", "--gap-us", "60,500,250",
                  "--request-gap-us", "3000"],
                 [("lp-normal", "normal", [80]), ("lp-low", "low", [400])]),
    "long-lp": (HP + ["--gap-us", "300"], [("lp-low", "low", [1000])]),
    # Fairness within one LP level (issue 16): the same kernels, then short against long ones.
    "fair-same": (HP + ["--gap-us", "300"], [("lp-a", "low", [50]), ("lp-b", "low", [50])]),
    "fair-long": (HP + ["--gap-us", "500"], [("lp-short", "low", [40]), ("lp-long", "low", [400])]),
}
POLICIES = ["none", "priority", "fikit", "oracle"]
MODES = ["timeslice", "mps"]


class Runner:
    def __init__(self, args, tmp):
        self.a = args
        self.bin = os.path.join(os.path.abspath(args.build), "bin")
        self.sim = os.path.join(os.path.abspath(args.build), "sim")
        self.tmp = tmp
        self.n = 0
        # The brokers' own simulated GPU (their CUDA device list): named for this run, so that it
        # can be removed after it, not the user's default /fikit-sim-gpu-<uid>, which was left in
        # /dev/shm by every run.
        self.broker_gpu = "/fikit-scn-%d-broker" % os.getpid()
        help_text = subprocess.run([self.exe("fikit-broker"), "--help"], capture_output=True,
                                   text=True).stdout
        self.no_bpf = ["--no-bpf"] if "--no-bpf" in help_text else []

    def renice(self):
        if self.a.nice:
            os.nice(self.a.nice)

    def exe(self, name):
        return os.path.join(self.bin, name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def sim_env(self, mode, gpu, trace):
        env = dict(os.environ)
        env.update({"LD_LIBRARY_PATH": self.sim, "FIKIT_SIM_GPU": gpu, "FIKIT_SIM_MODE": mode,
                    "FIKIT_SIM_SWITCH_US": str(self.a.switch_us), "FIKIT_SIM_TRACE": trace})
        return env

    def hp_args(self, workload):
        gap = ["--gap-sleep"] if self.a.host_gaps == "sleep" else []
        return ["hp", "--requests", str(self.a.requests)] + WORKLOADS[workload][0] + gap

    def run_alone(self, mode, workload, gpu):
        tag = self.tag("alone")
        out = subprocess.run([self.exe("fikit-chain")] + self.hp_args(workload),
                             env=self.sim_env(mode, gpu, self.path(tag + "-hp")),
                             capture_output=True, text=True, timeout=600,
                             preexec_fn=self.renice)
        if out.returncode != 0:
            raise RuntimeError("HP alone failed: " + out.stderr)
        return {"kv": sm.parse_kv(out.stdout), "hp_trace": sm.read_trace(self.path(tag + "-hp"))}

    def tag(self, what):
        self.n += 1
        return "%03d-%s" % (self.n, what)

    def status(self, sock):
        r = subprocess.run([self.exe("fikit-broker"), "status", "--socket", sock, "--json"],
                           capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else ""

    def wait_for(self, cond, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for " + what)

    def start_broker(self, policy, mode, tag, extra=()):
        sock = self.path(tag + ".sock")
        log = self.path(tag + "-broker.log")
        switch = self.a.switch_us if mode == "timeslice" else 0
        cmd = [self.exe("fikit-broker"), "start", "--foreground", "--socket", sock, "--policy",
               policy, "--log", log, "--profile-dir", self.path(tag + "-profiles"),
               "--switch-cost-us", str(switch)] + self.no_bpf + list(extra)
        if self.a.spin_us is not None:
            cmd += ["--spin-us", str(self.a.spin_us)]
        if self.a.policy_opts and policy in ("fikit", "oracle"):
            cmd += ["--policy-opts", self.a.policy_opts]
        if self.a.hp_budget:
            cmd += ["--hp-budget", self.a.hp_budget]
        # The broker sees the simulated GPUs, as its tenants do, also on a host with real ones
        # (device-sim.sh): CUDA's list from the simulated driver, not the NVIDIA driver's.
        env = dict(os.environ, LD_LIBRARY_PATH=self.sim, FIKIT_NVIDIA_GPUS_DIR=self.path("no-gpus"),
                   FIKIT_SIM_GPU=self.broker_gpu)
        os.makedirs(env["FIKIT_NVIDIA_GPUS_DIR"], exist_ok=True)
        if self.a.keep:  # each broker's decision trace beside its log (overlap_report.py)
            env["FIKIT_TRACE"] = self.path(tag + "-decisions.csv")
        cmd += ["--substrate", "timeslice"]  # never the host's MPS daemon
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, preexec_fn=self.renice)
        self.wait_for(lambda: proc.poll() is not None or self.status(sock), "the broker")
        if proc.poll() is not None:
            raise RuntimeError("broker failed to start: " + open(log).read()[-2000:])
        return proc, sock, log

    def tenant(self, sock, prio, name, args, env):
        cmd = [self.exe("fikit-run"), "--priority", prio, "--name", name, "--socket", sock, "--",
               self.exe("fikit-chain")] + args
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=self.renice)

    def stop_tenants(self, lps, sock, tag):
        """SIGTERM the LP tenants (each stops after its current batch); one still running after
        20 s (a launch waiting for a grant that does not come) is reported and killed."""
        for p, _, _ in lps:
            p.send_signal(signal.SIGTERM)
        for p, name, _ in lps:
            try:
                p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                print("%s: LP tenant %s did not stop in 20 s; broker status: %s; killed" %
                      (tag, name, self.status(sock)), file=sys.stderr, flush=True)
                p.kill()
                p.communicate()

    def run_coloc(self, mode, workload, policy, gpu):
        tag = self.tag(policy)
        broker, sock, log = self.start_broker(policy, mode, tag)
        lps = []
        try:
            for name, prio, us in WORKLOADS[workload][1]:
                env = self.sim_env(mode, gpu, self.path(tag + "-" + name))
                args = ["lp", "--seconds", "600", "--kernel-us", ",".join(map(str, us))]
                lps.append((self.tenant(sock, prio, name, args, env), name, us))
            names = [n for _, n, _ in lps]
            self.wait_for(lambda: all('"name":"%s"' % n in self.status(sock) for n in names),
                          "the LP tenants to register")
            time.sleep(0.2)  # let LP reach its steady state
            cpu0, t0 = sched_cpu(self.status(sock)), time.monotonic()
            hp = self.tenant(sock, "high", "hp", self.hp_args(workload) + ["--hint-idle"],
                             self.sim_env(mode, gpu, self.path(tag + "-hp")))
            hp_out, hp_err = hp.communicate(timeout=600)
            if hp.returncode != 0:
                raise RuntimeError("HP under %s failed: %s" % (policy, hp_err))
            st = self.status(sock)
            cpu = (sched_cpu(st) - cpu0) / max(time.monotonic() - t0, 1e-9)
            print("%s: scheduler CPU %.1f%% of a core while the HP ran; LP grant latency p99 %s"
                  % (tag, 100 * cpu, grant_p99(st)), file=sys.stderr, flush=True)
        finally:
            self.stop_tenants(lps, sock, tag)
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=60)
        lp = [(sm.read_trace(self.path(tag + "-" + n)), us) for _, n, us in lps]
        log_text = open(log).read()
        return {"kv": sm.parse_kv(hp_out), "hp_trace": sm.read_trace(self.path(tag + "-hp")),
                "lp": lp, "lp_levels": [prio for _, prio, _ in WORKLOADS[workload][1]],
                "stats": sm.policy_stats(log_text, "hp")}


def sched_cpu(status_text):
    """The broker's scheduler CPU seconds from `status --json` (0 if unreadable)."""
    try:
        return json.loads(status_text)["broker"]["scheduler_cpu_s"]
    except (ValueError, KeyError, TypeError):
        return 0.0


def grant_p99(status_text):
    """The p99 of the LP tenants' grant latency (status histograms, merged), as the upper
    bound of its bucket."""
    try:
        tenants = json.loads(status_text)["tenants"]
    except (ValueError, KeyError, TypeError):
        return "unknown"
    le, cum, total = None, None, 0
    for t in tenants:
        h = t.get("grant_latency")
        if not h:
            continue
        le, total = h["le_s"], total + h["count"]
        cum = h["cumulative"] if cum is None else [x + y for x, y in zip(cum, h["cumulative"])]
    if not cum or total == 0:
        return "unknown"
    for bound, c in zip(le, cum):
        if c >= 0.99 * total:
            return "<= %g us" % (bound * 1e6)
    return "> %g us" % (le[-1] * 1e6)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d cores, %s, kernel %s" % (os.cpu_count() or 0, cpu, platform.release())


def commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "") if rev else "unknown"
    except OSError:
        return "unknown"


def run_workload(r, a, mode, wl):
    """Rows (one per policy) for one workload on one substrate: each repetition runs HP alone,
    then beside LP under every policy; a row holds the medians over repetitions of the metrics
    of each co-located run against the alone run of its repetition."""
    runs = {p: [] for p in a.policies}
    gpu = "/fikit-scn-%d-%s-%s" % (os.getpid(), mode, wl)
    try:
        for rep in range(a.repeat):
            alone = r.run_alone(mode, wl, gpu)
            for policy in a.policies:
                m = sm.run_metrics(alone, r.run_coloc(mode, wl, policy, gpu))
                runs[policy].append(m)
                print("%-9s %-8s %-8s #%d JCT %.3fx p50 %.3fx p99 %.3fx harvest %s hit %s"
                      % (mode, wl, policy, rep + 1, m["jct"], m["p50"], m["p99"],
                         sm.fmt(m["harvest"], ".1%"), sm.fmt(m["hit"], ".1%")),
                      file=sys.stderr, flush=True)
    finally:
        try:
            os.unlink("/dev/shm" + gpu)
        except OSError:
            pass
    rows = []
    for policy in a.policies:
        m = sm.median_metrics(runs[policy])
        m.update(mode=mode, workload=wl, policy=policy)
        rows.append(m)
    return rows


def log(line):
    print(line, file=sys.stderr, flush=True)


def run_all(a):
    rows, models = [], None
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fikit-scenario-", dir=a.keep) as tmp:
        r = Runner(a, tmp)
        try:
            if a.suite in ("all", "synthetic"):
                for mode in a.modes:
                    for wl in a.workloads:
                        rows += run_workload(r, a, mode, wl)
            if a.suite in ("all", "models"):
                models = ms.run_models(r, a, log)
        finally:
            try:
                os.unlink("/dev/shm" + r.broker_gpu)
            except OSError:
                pass
        if a.keep:  # the brokers' logs and profiles, for a look afterwards
            kept = os.path.join(a.keep, "run-%d" % os.getpid())
            shutil.copytree(tmp, kept, ignore=shutil.ignore_patterns("*.sock"))
            print("logs and profiles kept in %s" % kept, file=sys.stderr)
    return rows, models


def load():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def report(a, rows, models, started, load_before):
    lines = [
        "# fikit scenario benchmark (simulated driver)",
        "",
        "date: %s" % started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit: %s" % commit(),
        "machine: %s; load average (1, 5, 15 min) %s at the start, %s at the end" % (
            machine(), load_before, load()),
        "command: %s" % " ".join(sys.argv),
        "settings: %d HP requests per run, medians of %d repetitions; sim switch %d us (broker --switch-cost-us %d on "
        "time-slicing, 0 on MPS); broker --spin-us %s; HP host gaps %s; nice %d%s" % (
            a.requests, a.repeat, a.switch_us, a.switch_us,
            "default" if a.spin_us is None else a.spin_us, a.host_gaps, a.nice,
            "; --policy-opts " + a.policy_opts if a.policy_opts else ""),
    ]
    if rows:
        lines += ["", "Workloads (fikit-chain hp / lp):"]
    for wl in a.workloads if rows else []:
        hp, lps = WORKLOADS[wl]
        lp = "; ".join("%s (%s) %s us" % (n, p, ",".join(map(str, us))) for n, p, us in lps)
        hp_text = " ".join(hp).replace(",".join(["200"] * 10), "200,...(x10)")
        lines.append("- %s: HP `%s`; LP %s" % (wl, hp_text, lp))
    if rows:
        lines += ["", sm.table(rows), "", "Targets (issues 3 and 16):", sm.targets(rows), ""]
    if models:
        mrows, lp_alone, budget_flag = models
        lines += [
            "", "## Real-model mixes (fikit-chain model-hp / model-lp)", "",
            "HP: one CUDA graph per request (benchmarks/workload/mixes/), think time %d us "
            "between requests (poisson: exponential; periodic: fixed), %d requests, medians of "
            "%d; LP: ResNet-50 training b64 (resnet50-train-b64.mix). Simulated GPU: %s (time-"
            "slicing), %s (MPS). Harvest: LP GPU time inside the HP's run over the HP's idle GPU "
            "time there (the physical bound is 100%%); vs oracle: of the oracle's harvest.%s" % (
                a.think_us, a.model_requests, a.repeat_models,
                " ".join("%s=%s" % kv for kv in ms.SIM_TIMESLICE.items()),
                " ".join("%s=%s" % kv for kv in ms.SIM_MPS.items()),
                "" if budget_flag else " The broker has no --hp-budget: one fikit point, "
                "marked budget n/a."),
            "", ms.table(mrows, lp_alone), "", "Targets (issue 15, Poisson arrivals):",
            ms.targets(mrows), "", "The broker's view (policy statistics of the HP and LP "
            "tenants as they left; held: the LP's waiting time by reason):", "",
            ms.diag_table(mrows), ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build", help="build directory (default: build)")
    p.add_argument("--out", help="also write the report (markdown) to this file")
    p.add_argument("--requests", type=int, default=100, help="HP requests per run (default 100)")
    p.add_argument("--repeat", type=int, default=3,
                   help="repetitions; the table shows medians (default 3)")
    p.add_argument("--modes", default=",".join(MODES), help="timeslice,mps")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=",".join(WORKLOADS))
    p.add_argument("--policies", default=",".join(POLICIES), help=",".join(POLICIES))
    p.add_argument("--switch-us", type=int, default=200,
                   help="simulated context-switch cost, and the broker's --switch-cost-us on "
                   "time-slicing (default 200)")
    p.add_argument("--policy-opts", default="", help="--policy-opts for fikit and oracle")
    p.add_argument("--hp-budget", default="",
                   help="the broker's --hp-budget (default: its own, p99=1.10)")
    p.add_argument("--host-gaps", choices=("sleep", "busy"), default="sleep",
                   help="HP host gaps sleep (default: leaves the CPU to the LP tenants, the "
                   "broker and the simulated GPU on small machines) or busy-wait")
    p.add_argument("--spin-us", type=int,
                   help="the broker's --spin-us (default: its own, but 0 on machines with fewer "
                   "than 4 CPUs, where a spinning broker takes a core from the tenants and the "
                   "simulated GPU's threads)")
    p.add_argument("--nice", type=int, default=0,
                   help="run every process of the benchmark at this nice value (negative: ahead "
                   "of other work on a shared machine; needs root)")
    p.add_argument("--suite", choices=("all", "synthetic", "models"), default="all",
                   help="synthetic chain workloads, real-model mixes, or both (default)")
    p.add_argument("--quick", action="store_true",
                   help="fewer requests and one repetition (a smoke run of a few minutes)")
    p.add_argument("--pairs", default=",".join(ms.PAIRS), help=",".join(ms.PAIRS))
    p.add_argument("--arrivals", default=",".join(ms.ARRIVALS), help=",".join(ms.ARRIVALS))
    p.add_argument("--budgets", default=",".join("%g" % b for b in ms.BUDGETS),
                   help="fikit's --hp-budget p99 values, where the broker has the flag")
    p.add_argument("--fikit-lp-caps", default="",
                   help="also run fikit at the first budget with the LP tenant's "
                        "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE at each of these (e.g. 30,50)")
    p.add_argument("--fikit-lp-prio", action="store_true",
                   help="also run fikit at the first budget with the LP's CUDA_MPS_CLIENT_PRIORITY=1")
    p.add_argument("--settings", default="",
                   help="model rows: only the settings whose label starts with one of these "
                        "(comma-separated, e.g. 'fikit MPS,MPS LP cap')")
    p.add_argument("--lp-cap-pct", type=int, default=30,
                   help="CUDA_MPS_ACTIVE_THREAD_PERCENTAGE of the LP in the capped MPS setting")
    p.add_argument("--think-us", type=int, default=3000,
                   help="mean HP think time between requests of the model mixes (default 3000)")
    p.add_argument("--model-requests", type=int, default=200,
                   help="HP requests per model run (default 200; --quick 100)")
    p.add_argument("--repeat-models", type=int, default=1,
                   help="repetitions of the model runs (default 1)")
    p.add_argument("--keep", help="keep the brokers' logs and the profiles they saved in a "
                   "folder under this one (default: removed)")
    p.add_argument("--figure", help="write the Pareto figure (PNG) of the model rows here "
                   "(default: next to --out)")
    a = p.parse_args()
    if a.quick:
        a.requests, a.repeat, a.model_requests, a.repeat_models = 50, 1, 100, 1
    a.pairs = a.pairs.split(",")
    a.arrivals = a.arrivals.split(",")
    a.budgets = [float(x) for x in a.budgets.split(",")]
    a.fikit_lp_caps = [int(x) for x in a.fikit_lp_caps.split(",") if x]
    a.settings = [x for x in a.settings.split(",") if x]
    a.modes = a.modes.split(",")
    a.workloads = a.workloads.split(",")
    a.policies = a.policies.split(",")
    for what, got, known in (("mode", a.modes, MODES), ("workload", a.workloads, WORKLOADS),
                             ("policy", a.policies, POLICIES), ("pair", a.pairs, ms.PAIRS),
                             ("arrivals", a.arrivals, ms.ARRIVALS)):
        bad = [x for x in got if x not in known]
        if bad:
            p.error("unknown %s %s (choose from %s)" % (what, ",".join(bad), ",".join(known)))
    if a.spin_us is None and (os.cpu_count() or 1) < 4:
        a.spin_us = 0
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load()
    rows, models = run_all(a)
    figure = a.figure or (os.path.splitext(a.out)[0] + "-pareto.png" if a.out and models else None)
    text = report(a, rows, models, started, load_before)
    if models and figure:
        text += "\n" + pareto(models[0], figure, "; ".join(text.splitlines()[2:4])) + "\n"
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump({"synthetic": rows, "models": models[0] if models else []}, f, indent=1)
        print("report written to %s" % a.out, file=sys.stderr)


def pareto(mrows, path, caption):
    """Draw the Pareto figure with pareto_plot.py (matplotlib): under this interpreter if it has
    matplotlib, else the system's python3 (Debian's python3-matplotlib). Return a report line."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pareto_plot.py")
    data = json.dumps({"rows": mrows, "caption": caption})
    for py in (sys.executable, "/usr/bin/python3"):
        r = subprocess.run([py, script, path], input=data, capture_output=True, text=True)
        if r.returncode == 0:
            return "Pareto figure: %s" % os.path.basename(path)
    return "Pareto figure: not drawn (%s)" % (r.stderr.strip().splitlines() or ["no matplotlib"])[-1]


if __name__ == "__main__":
    main()
