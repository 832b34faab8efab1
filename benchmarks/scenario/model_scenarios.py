"""Real-model scenarios of the scenario benchmark (benchmarks/scenario/README.md): an inference
server replaying BERT-base or ResNet-50 (CUDA graphs, batch 8) beside ResNet-50 training (batch
64), kernel mixes from benchmarks/workload/mixes/, with Poisson or periodic HP arrivals, in the
settings of the H200 benchmark (time-slice, MPS, MPS prio, MPS with the LP capped, fikit at
several HP budgets, the oracle) on the simulated driver. Python standard library only.
"""

import glob
import json
import os
import signal
import subprocess
import time

import scenario_metrics as sm

MIXES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workload", "mixes")
PAIRS = {
    "bert-train": ("bert-base-graph-b8.mix", "resnet50-train-b64.mix"),
    "resnet-train": ("resnet50-graph-b8.mix", "resnet50-train-b64.mix"),
}
ARRIVALS = ["poisson", "periodic"]
BUDGETS = [1.02, 1.05, 1.10, 1.20]

# Simulated GPU settings calibrated against the H200 (benchmarks/results/sim-calibration-*.md).
SIM_TIMESLICE = {"FIKIT_SIM_TIMESLICE_US": "2000", "FIKIT_SIM_SLICE_CLOCK": "1"}
SIM_MPS = {"FIKIT_SIM_MPS_SLOTS": "2", "FIKIT_SIM_MPS_BW_PCT": "40"}


def read_mix(name):
    """Kernel durations (us) of a mix file in launch order (the format of fikit-chain --help)."""
    out, block, repeat = [], [], 0
    with open(os.path.join(MIXES, name)) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "repeat":
                repeat = int(words[1])
            elif words[0] == "end":
                out += block * repeat
                block, repeat = [], 0
            else:
                (block if repeat else out).extend([float(words[1])] * int(words[0]))
    return out


def settings(a, budget_flag):
    """(label, sim mode, policy or None for plain processes, LP env, broker args) per setting."""
    cap = {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": str(a.lp_cap_pct)}
    out = [
        ("time-slice", "timeslice", None, {}, []),
        ("MPS", "mps", None, {}, []),
        ("MPS prio", "mps", None, {"CUDA_MPS_CLIENT_PRIORITY": "1"}, []),
        ("MPS LP cap %d%%" % a.lp_cap_pct, "mps", None, cap, []),
        ("fikit TS", "timeslice", "fikit", {}, []),
    ]
    if budget_flag:
        for b in a.budgets:
            out.append(("fikit MPS p99=%.2f" % b, "mps", "fikit", {}, ["--hp-budget", "p99=%g" % b]))
    else:
        out.append(("fikit MPS (budget n/a)", "mps", "fikit", {}, []))
    # fikit with the MPS spatial levers on its LP tenant (what a broker choosing them per LP
    # tenant would set before the LP's context exists), at the first budget.
    if budget_flag and a.budgets:
        b = a.budgets[0]
        for pct in a.fikit_lp_caps:
            out.append(("fikit MPS p99=%.2f LP cap %d%%" % (b, pct), "mps", "fikit",
                        {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": str(pct)}, ["--hp-budget", "p99=%g" % b]))
        if a.fikit_lp_prio:
            out.append(("fikit MPS p99=%.2f LP prio" % b, "mps", "fikit",
                        {"CUDA_MPS_CLIENT_PRIORITY": "1"}, ["--hp-budget", "p99=%g" % b]))
    out.append(("oracle MPS", "mps", "oracle", {}, []))
    if a.settings:
        out = [s for s in out if any(s[0].startswith(p) for p in a.settings)]
    return out


class ModelRunner:
    def __init__(self, r, a):
        self.r = r  # run_scenarios.Runner: paths, broker, tenants
        self.a = a
        help_text = subprocess.run([r.exe("fikit-broker"), "start", "--help"],
                                   capture_output=True, text=True).stdout
        self.budget_flag = "--hp-budget" in help_text

    def env(self, mode, gpu, trace, extra=None):
        env = self.r.sim_env(mode, gpu, trace)
        env.update(SIM_TIMESLICE if mode == "timeslice" else SIM_MPS)
        env.update(extra or {})
        return env

    def hp_args(self, pair, arrivals):
        return ["model-hp", "--mix", os.path.join(MIXES, PAIRS[pair][0]), "--requests",
                str(self.a.model_requests), "--think-us", str(self.a.think_us), "--arrivals",
                arrivals]

    def lp_args(self, pair):
        return ["model-lp", "--mix", os.path.join(MIXES, PAIRS[pair][1]), "--seconds", "600"]

    def gpu(self, tag):
        return "/fikit-scn-%d-%s" % (os.getpid(), tag)

    def unlink(self, gpu):
        try:
            os.unlink("/dev/shm" + gpu)
        except OSError:
            pass

    def plain(self, cmd, env):
        return subprocess.Popen([self.r.exe("fikit-chain")] + cmd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=self.r.renice)

    def alone(self, pair, arrivals):
        tag = self.r.tag("model-alone")
        gpu = self.gpu(tag)
        try:
            p = self.plain(self.hp_args(pair, arrivals), self.env("mps", gpu, self.r.path(tag)))
            out, err = p.communicate(timeout=600)
        finally:
            self.unlink(gpu)
        if p.returncode != 0:
            raise RuntimeError("HP alone failed: " + err)
        return sm.parse_kv(out)

    def lp_alone(self, pair, seconds):
        """LP iterations/s alone (the mix's GPU time over its wall time)."""
        tag = self.r.tag("lp-alone")
        gpu = self.gpu(tag)
        try:
            p = self.plain(["model-lp", "--mix", os.path.join(MIXES, PAIRS[pair][1]), "--seconds",
                            str(seconds)], self.env("mps", gpu, self.r.path(tag)))
            out, err = p.communicate(timeout=600)
        finally:
            self.unlink(gpu)
        kv = sm.parse_kv(out)
        return float(kv["iters"]) / (float(kv["elapsed_ms"]) / 1000.0)

    def coloc(self, pair, arrivals, setting):
        label, mode, policy, lp_env, broker_args = setting
        tag = self.r.tag("model")
        gpu = self.gpu(tag)
        lp_trace = self.r.path(tag + "-lp")
        broker = sock = log = None
        lp = None
        try:
            if policy:
                broker, sock, log = self.r.start_broker(policy, mode, tag, broker_args)
                lp = self.r.tenant(sock, "low", "lp", self.lp_args(pair),
                                   self.env(mode, gpu, lp_trace, lp_env))
                self.r.wait_for(lambda: '"name":"lp"' in self.r.status(sock), "the LP tenant")
            else:
                lp = self.plain(self.lp_args(pair), self.env(mode, gpu, lp_trace, lp_env))
            # The LP's first iteration done (its trace flushed at its sync), then its steady state.
            self.r.wait_for(lambda: glob.glob(lp_trace + ".*"), "the LP's first iteration", 30)
            time.sleep(0.3)
            hp_cmd = self.hp_args(pair, arrivals) + (["--hint-idle"] if policy else [])
            hp_env = self.env(mode, gpu, self.r.path(tag + "-hp"))
            hp = (self.r.tenant(sock, "high", "hp", hp_cmd, hp_env) if policy
                  else self.plain(hp_cmd, hp_env))
            out, err = hp.communicate(timeout=600)
            if hp.returncode != 0:
                raise RuntimeError("HP under %s failed: %s" % (label, err))
        finally:
            if lp:
                lp.send_signal(signal.SIGTERM)
                try:
                    lp.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    lp.kill()
                    lp.communicate()
            if broker:
                broker.send_signal(signal.SIGTERM)
                broker.wait(timeout=60)
            self.unlink(gpu)
        kv = sm.parse_kv(out)
        win = (int(kv["start_ns"]), int(kv["end_ns"]))
        lp_ns = sm.lp_busy_in(sm.read_trace(lp_trace), read_mix(PAIRS[pair][1]), win)
        diag = policy_diag(open(log).read(), self.r.path(tag + "-profiles"),
                           read_mix(PAIRS[pair][1])) if log else ({}, {})
        return kv, lp_ns, win, diag


def hist_mean_ns(pairs):
    """Mean of a profile histogram ([bucket, count] pairs, LogHistogram's geometry: 16 linear
    buckets of 16 ns, then 16 per octave from 256 ns), each bucket at its midpoint."""
    def lower(b):
        if b < 16:
            return b << 4
        e = 8 + (b - 16) // 16
        return (16 + (b - 16) % 16) << (e - 4)
    n = sum(c for _, c in pairs)
    return sum((lower(b) + lower(b + 1)) / 2.0 * c for b, c in pairs) / n if n else None


def lp_duration_ratio(profile_dir, mix):
    """The LP's kernel durations as the broker measured them (its saved profile: per key the
    mean of the duration histogram, weighted by the key's launches) over their true length
    (the mix's mean kernel duration); None without a profile or measurements."""
    files = glob.glob(os.path.join(profile_dir, "**", "lp.json"), recursive=True)
    if not files:
        return None
    try:
        keys = json.load(open(files[0]))["keys"]
    except (OSError, ValueError, KeyError):
        return None
    num = den = 0.0
    for k in keys:
        m = hist_mean_ns(k.get("duration", []))
        if m is not None:
            num += m * k["seen"]
            den += k["seen"]
    return num / den / (sum(mix) / len(mix) * 1000.0) if den else None


def policy_diag(log_text, profile_dir, lp_mix):
    """What the broker says about a fikit/oracle run (its policy statistics for the HP and the LP
    tenant, logged as each leaves, docs/STATUS.md): (numbers, which take medians over
    repetitions; words)."""
    hp, lp = sm.policy_stats(log_text, "hp"), sm.policy_stats(log_text, "lp")
    ctl = hp.get("controller", {})
    held = lp.get("held_ns", {})
    held_total = sum(held.values()) or None
    why = lp.get("no_room_why", {})
    nums = {
        "d_slow50": hp.get("slowdown", {}).get("p50"),
        "d_slow99": hp.get("slowdown", {}).get("p99"),
        "d_gain": ctl.get("gain"),
        "d_incr": ctl.get("increases"),
        "d_decr": ctl.get("decreases"),
        "d_grants_fill": lp.get("grants_fill"),
        "d_grants_risky": lp.get("grants_risky"),
        "d_grants_budget": lp.get("grants_budget"),  # counted on the LP tenant granted
        "d_fill_misses": hp.get("fill_misses"),
        "d_gaps_filled": hp.get("gaps_filled"),
        "d_lp_dur": lp_duration_ratio(profile_dir, lp_mix),
    }
    for k, v in held.items():
        nums["d_held_" + k] = v / held_total if held_total else None
    words = {"state": ctl.get("state", "-"),
             "alone": hp.get("alone_latency", {}).get("source", "-"),
             "no_room": ", ".join("%s %d" % kv for kv in sorted(why.items(), key=lambda x: -x[1])
                                  if kv[1]) or "-"}
    return nums, words


def run_pair(mr, pair, arrivals, lp_alone_rate, log):
    """Rows for one HP/LP pair and arrival process: each setting against HP alone (medians over
    repetitions). LP rate: LP GPU time done inside the HP's run / the mix's GPU time per
    iteration, per second of that run."""
    iter_ns = sum(read_mix(PAIRS[pair][1])) * 1000.0
    runs, words = {}, {}
    for rep in range(mr.a.repeat_models):
        # HP alone twice, the lower latencies kept: on a shared machine a stall of the host
        # only ever adds latency, and one in a run of 150 requests is its p99.
        runs_alone = [mr.alone(pair, arrivals) for _ in range(2)]
        alone = dict(runs_alone[0])
        for q in ("p50_us", "p99_us", "jct_ms"):
            alone[q] = str(min(float(x[q]) for x in runs_alone))
        busy_ns = float(alone["busy_us"]) * 1000.0
        for st in settings(mr.a, mr.budget_flag):
            kv, lp_ns, win, (diag, diag_words) = mr.coloc(pair, arrivals, st)
            span = win[1] - win[0]
            idle_ns = span - busy_ns  # the physical bound: every ns the HP leaves the GPU idle
            m = {"p50": sm.ratio(float(kv["p50_us"]), float(alone["p50_us"])),
                 "p99": sm.ratio(float(kv["p99_us"]), float(alone["p99_us"])),
                 "jct": sm.ratio(float(kv["jct_ms"]), float(alone["jct_ms"])),
                 "lp_rate": lp_ns / iter_ns / (span / 1e9),
                 "harvest": sm.ratio(lp_ns, idle_ns)}
            m.update(diag)
            words[st[0]] = diag_words  # the last repetition's
            runs.setdefault(st[0], []).append(m)
            log("%-12s %-8s %-24s #%d p50 %.2fx p99 %.2fx LP %.2f it/s harvest %s" % (
                pair, arrivals, st[0], rep + 1, m["p50"], m["p99"], m["lp_rate"],
                sm.fmt(m["harvest"], ".1%")))
    rows = []
    # The LP's share of its time-sliced rate needs the time-slice row (--settings may leave it out).
    ts = sm.median_metrics(runs["time-slice"])["lp_rate"] if "time-slice" in runs else None
    for label, ms in runs.items():
        m = sm.median_metrics(ms)
        m.update(words.get(label, {}))
        m.update(pair=pair, arrivals=arrivals, setting=label,
                 lp_vs_alone=sm.ratio(m["lp_rate"], lp_alone_rate),
                 lp_vs_ts=sm.ratio(m["lp_rate"], ts))
        rows.append(m)
    return rows


def run_models(r, a, log):
    mr = ModelRunner(r, a)
    rows, lp_alone = [], {}
    for pair in a.pairs:
        lp_alone[pair] = mr.lp_alone(pair, 2 if a.quick else 4)
        log("%s: LP alone %.2f it/s" % (pair, lp_alone[pair]))
        for arrivals in a.arrivals:
            rows += run_pair(mr, pair, arrivals, lp_alone[pair], log)
    return rows, lp_alone, mr.budget_flag


def table(rows, lp_alone):
    head = ("| HP / LP | arrivals | setting | HP p50 x | HP p99 x | LP it/s | LP vs alone "
            "| LP vs time-slice | harvest (of HP idle) | vs oracle |")
    lines = [head, "|" + "---|" * 10]
    oracle = {(r["pair"], r["arrivals"]): r["harvest"] for r in rows
              if r["setting"] == "oracle MPS"}
    for r in rows:
        o = oracle.get((r["pair"], r["arrivals"]))
        rel = r["harvest"] / o if o and o == o and r["harvest"] == r["harvest"] else None
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["pair"], r["arrivals"], r["setting"], sm.fmt(r["p50"], ".2f"),
            sm.fmt(r["p99"], ".2f"), sm.fmt(r["lp_rate"], ".2f"),
            sm.fmt(r["lp_vs_alone"], ".0%"), sm.fmt(r["lp_vs_ts"], ".0%"),
            sm.fmt(r["harvest"], ".1%"), sm.fmt(rel, ".0%")))
    lines.append("")
    lines.append("LP alone: " + ", ".join("%s %.2f it/s" % kv for kv in lp_alone.items()))
    return "\n".join(lines)


def budget_of(setting):
    """The p99 budget of a "fikit MPS p99=X" setting, else None."""
    return float(setting.split("p99=")[1]) if "p99=" in setting else None


def check(name, value, ok, spec):
    return "%s %s (%s)" % (name, "met" if ok else "MISSED", sm.fmt(value, spec))


def targets(rows):
    """Issue 15's targets (Poisson arrivals): on MPS, the default budget p99=1.10 (or the one
    fikit point of a broker without --hp-budget) keeps HP p99 <= 1.10x with the LP >= 50% of
    its time-sliced throughput (goal 70%); at p99=1.05 the LP >= 35%; HP p50 <= 1.05x at every
    budget <= 1.10; on time-slicing, HP p99 <= 1.10x, the LP >= 25% and its kernel durations as
    the broker measured them within 20% of their true length."""
    out = []
    for r in rows:
        s = r["setting"]
        if r["arrivals"] != "poisson" or not s.startswith("fikit"):
            continue
        b = budget_of(s)
        p50 = check("p50 <= 1.05", r["p50"], r["p50"] is not None and r["p50"] <= 1.05, ".2f")
        p99 = check("p99 <= 1.10", r["p99"], r["p99"] is not None and r["p99"] <= 1.10, ".2f")
        lp = r["lp_vs_ts"] if r["lp_vs_ts"] is not None else 0.0
        if s == "fikit TS":
            dur = r.get("d_lp_dur")
            checks = [p99, check("LP >= 25% of time-sliced", lp, lp >= 0.25, ".0%"),
                      check("LP durations within 20%", dur,
                            dur is not None and abs(dur - 1) <= 0.2, ".2f")]
        elif b is None or abs(b - 1.10) < 1e-9:
            checks = [p50, p99, check("LP >= 50% of time-sliced", lp, lp >= 0.5, ".0%"),
                      check("goal LP >= 70%", lp, lp >= 0.7, ".0%")]
        elif abs(b - 1.05) < 1e-9:
            checks = [p50, check("LP >= 35% of time-sliced", lp, lp >= 0.35, ".0%")]
        elif b < 1.10:
            checks = [p50]
        else:
            continue  # budgets above 1.10: points of the figure, no target
        out.append("- %s / %s: %s" % (r["pair"], s, ", ".join(checks)))
    return "\n".join(out)


def diag_table(rows):
    """What the broker's policy statistics say for each fikit and oracle row (the HP's and the
    LP's, logged as they leave; medians over repetitions, words from the last)."""
    head = ("| HP / LP | arrivals | setting | broker slowdown p50 / p99 (alone from) | controller "
            "(gain, +/-) | LP grants fill / risky / within budget | gaps filled / fill misses "
            "| LP held: above_busy / no_room / unknown / in_flight | no room why | LP durations "
            "measured / true |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if not r["setting"].startswith(("fikit", "oracle")):
            continue
        f = lambda k, spec=".0f": sm.fmt(r.get(k), spec)  # noqa: E731
        lines.append("| %s | %s | %s | %s / %s (%s) | %s %s, +%s/-%s | %s / %s / %s | %s / %s | "
                     "%s / %s / %s / %s | %s | %s |" % (
                         r["pair"], r["arrivals"], r["setting"], f("d_slow50", ".2f"),
                         f("d_slow99", ".2f"), r.get("alone", "-"), r.get("state", "-"),
                         f("d_gain", ".2f"), f("d_incr"), f("d_decr"), f("d_grants_fill"),
                         f("d_grants_risky"), f("d_grants_budget"), f("d_gaps_filled"),
                         f("d_fill_misses"), f("d_held_above_busy", ".0%"),
                         f("d_held_no_room", ".0%"), f("d_held_unknown", ".0%"),
                         f("d_held_in_flight", ".0%"), r.get("no_room", "-"),
                         f("d_lp_dur", ".2f")))
    return "\n".join(lines)
