"""What the GPU benchmark runs: settings, workloads, presets, and the exact commands of each step.

Everything here is data and pure functions (no process is started), so `run_bench.py --dry-run`
prints exactly the commands the real run executes.

A step is one setting for one HP set and/or one LP, in one repeat. HP-only settings (alone,
alone-fikit, alone-mps) run once per HP set and repeat; lp-alone once per LP and repeat; the
co-located settings once per LP (with the HP set that LP is paired with). One HP process serves all
the HP set's workloads in turn while one LP process runs through them, so the per-process start-up
(PyTorch import, model builds, CUDA-graph captures) is paid once per step, not once per workload.
"""

import os
import shlex
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    hp: bool  # runs the HP set
    lp: bool  # runs the LP
    mps: bool  # processes are clients of an MPS daemon
    fikit: bool  # a broker runs and the workloads are its tenants (fikit-run)
    lp_low_mps_priority: bool = False  # CUDA_MPS_CLIENT_PRIORITY=1 for the LP (0 for the HP)
    lp_env: tuple = ()  # (NAME, VALUE) pairs added to the LP's environment (the MPS levers)
    broker_args: tuple = ()  # added to the broker's command line (a budget)
    needs: str = ""  # a BrokerCaps field the setting needs ("hp_budget"); skipped without it


SETTINGS = {s.name: s for s in (
    Setting("alone", "HP alone", True, False, False, False),
    Setting("alone-fikit", "HP alone, with fikit (overhead)", True, False, False, True),
    Setting("alone-mps", "HP alone on MPS", True, False, True, False),
    Setting("lp-alone", "LP alone", False, True, False, False),
    Setting("timeslice", "default time-slicing", True, True, False, False),
    Setting("mps", "MPS", True, True, True, False),
    Setting("mps-prio", "MPS, LP client priority 1", True, True, True, False, True),
    Setting("fikit-ts", "fikit on time-slicing", True, True, False, True),
    Setting("fikit-mps", "fikit on MPS", True, True, True, True),
)}


def _budget(x):
    """fikit on MPS at an HP budget of p99 = x (--hp-budget, the harvest issue)."""
    return Setting(f"fikit-mps-b{x}", f"fikit on MPS, budget p99={x}", True, True, True, True,
                   broker_args=("--hp-budget", f"p99={x}"), needs="hp_budget")


def _lever(fikit, pct, prio):
    """MPS with the LP at CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=pct and client priority 1 (prio) or 0.
    Both are set explicitly, so that neither fikit-run's default (priority 1 for low tenants) nor a
    broker's own choice of lever decides them."""
    name = f"{'fikit-mps' if fikit else 'mps'}-t{pct}-p{1 if prio else 0}"
    label = f"{'fikit on MPS' if fikit else 'MPS'}, LP {pct}% threads, LP priority {1 if prio else 0}"
    env = (("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", str(pct)),
           ("CUDA_MPS_CLIENT_PRIORITY", "1" if prio else "0"))
    return Setting(name, label, True, True, True, fikit, lp_env=env)


BUDGETS = ("1.05", "1.10")
LEVER_PCTS = (100, 50, 25, 75)  # the order they run in: if the call runs short, 75 goes first
for _s in [_budget(x) for x in BUDGETS] + [_lever(f, t, pr) for t in LEVER_PCTS for pr in (True, False)
                                            for f in (False, True)]:
    SETTINGS[_s.name] = _s
CORE_SETTINGS = ("alone", "alone-fikit", "lp-alone", "timeslice", "mps", "mps-prio", "fikit-ts",
                 "fikit-mps")


@dataclass
class HpSet:
    """HP workloads served one after another by one process: torch specs, or the chain program."""
    name: str
    kind: str  # "torch" or "chain"
    workloads: list


@dataclass
class Lp:
    name: str
    kind: str  # "torch" or "chain"
    hp_set: str
    model: str = ""  # torch: resnet50 | bert-base
    mode: str = ""  # torch: train | infer
    batch: int = 0
    kernel_us: int = 0  # chain


@dataclass
class Plan:
    preset: str
    hp_sets: list
    lps: list
    settings: list
    repeats: int
    requests: int = 400
    warmup: int = 20
    gap_ms: float = 3.0
    gap_dist: str = "exp"
    dtype: str = "fp16"
    deadline_s: float = 30.0  # measurement cap per HP workload
    check_requests: int = 4
    gpu_busy_requests: int = 20
    lp_alone_s: float = 10.0
    # Time-slicing switch-back cost told to a broker that cannot measure it (no --substrate): the
    # probe measured ~210 us for each HP kernel that follows LP work (gpu-probe-results.md).
    switch_cost_us: int = 210
    policy: str = "fikit"  # the broker's policy in the fikit settings
    policy_opts: str = ""  # its --policy-opts (docs/POLICY.md "Parameters"), "" for none
    # HP arrival processes served by every HP step, one after another ("exp", "fixed"). With more
    # than one, each workload is named MODEL:MODE:BATCH@ARRIVAL (hp_infer.py) and served once per
    # arrival process by the same process (one start-up for both).
    arrivals: list = None
    reps: list = None  # the repeat indices to run (default: range(repeats)); another call runs the rest
    once: tuple = ()  # settings run only in the first repeat of `reps`
    sim: bool = False  # the stand-in workloads on the simulated driver (sim_workload.py), for dry runs
    chain: dict = field(default_factory=lambda: dict(
        requests=200, kernels=10, kernel_us=200, gap_us=100, request_gap_us=2000, kernel="burn",
        warmup=20, lp_seconds=7.0, lp_alone_seconds=3.0, settle_s=1.5))


def quick_plan():
    """About 8 minutes of GPU time: three HP workloads against ResNet-50 training, and the chain."""
    return Plan(
        preset="quick",
        hp_sets=[HpSet("torch", "torch", ["resnet50:eager:1", "resnet50:graph:8", "bert-base:graph:8"]),
                 HpSet("chain", "chain", ["chain"])],
        lps=[Lp("resnet50-train-b64", "torch", "torch", "resnet50", "train", 64),
             Lp("chain-burn-50us", "chain", "chain", kernel_us=50),
             Lp("chain-burn-500us", "chain", "chain", kernel_us=500)],
        # alone-mps: MPS's own cost to the HP, the floor of every MPS setting's slowdown.
        settings=list(CORE_SETTINGS[:2]) + ["alone-mps"] + list(CORE_SETTINGS[2:]), repeats=1)


def full_plan():
    """About 1.5 hours: nine HP workloads, three PyTorch LPs and the chain, two repeats."""
    p = quick_plan()
    p.preset = "full"
    p.hp_sets[0].workloads = ["resnet50:eager:1", "mobilenet_v3:eager:1", "resnet50:eager:8",
                              "resnet50:graph:1", "resnet50:graph:8", "bert-base:eager:1",
                              "bert-base:graph:8", "gpt2-small:eager:1", "gpt2-small:graph:4"]
    p.lps[1:1] = [Lp("bert-base-train-b32", "torch", "torch", "bert-base", "train", 32),
                  Lp("resnet50-infer-b256", "torch", "torch", "resnet50", "infer", 256)]
    p.repeats, p.requests, p.deadline_s, p.lp_alone_s = 2, 600, 60.0, 20.0
    return p


@dataclass
class BrokerCaps:
    """What the fikit-broker at hand offers (read from its --help), and who runs MPS for fikit-mps."""
    substrate: bool = False  # start --substrate mps|timeslice|auto (it then measures switch cost)
    hp_budget: bool = False  # start --hp-budget SPEC (the harvest issue)
    switch_cost: bool = False  # start --switch-cost-us N
    mps_by_broker: bool = False  # fikit-mps: the broker starts MPS itself (--substrate mps)


@dataclass
class Step:
    rep: int
    setting: Setting
    hp_set: HpSet = None
    lp: Lp = None

    @property
    def key(self):
        """Short unique name, also the step's work directory."""
        return f"r{self.rep}-{self.setting.name}-{self.lp.name if self.lp else self.hp_set.name}"


def rep_list(plan):
    """The repeat indices this run makes."""
    return list(plan.reps) if plan.reps is not None else list(range(plan.repeats))


def hp_workloads(plan, hs):
    """The workload names an HP set serves: with several arrival processes, each once per process."""
    if hs.kind != "torch" or not plan.arrivals or len(plan.arrivals) < 2:
        return list(hs.workloads)
    return [f"{w}@{a}" for a in plan.arrivals for w in hs.workloads]


def steps(plan, rep):
    """The steps of one repeat, in the order they run."""
    reps = rep_list(plan)
    wanted = [s for s in plan.settings if s not in plan.once or rep == reps[0]]
    out = []
    for hs in plan.hp_sets:
        if any(lp.hp_set == hs.name for lp in plan.lps):
            out += [Step(rep, SETTINGS[s], hs) for s in wanted if not SETTINGS[s].lp]
    for lp in plan.lps:
        hs = next(h for h in plan.hp_sets if h.name == lp.hp_set)
        out += [Step(rep, SETTINGS[s], None if not SETTINGS[s].hp else hs, lp)
                for s in wanted if SETTINGS[s].lp]
    return out


@dataclass
class Paths:
    build: str  # fikit build directory (bin/, lib/)
    work: str  # scratch directory of this run
    bench: str = os.path.dirname(os.path.abspath(__file__))
    python: str = sys.executable
    sim_root: str = ""  # --sim: where the stub MPS daemon leaves its marker

    def script(self, plan, name):
        """hp_infer.py / lp_train.py, or with --sim the stand-in that speaks their interface."""
        if plan.sim:
            return [self.python, os.path.join(self.bench, "sim_workload.py"), name.split("_")[0]]
        return [self.python, os.path.join(self.bench, name + ".py")]

    def bin(self, name):
        return os.path.join(self.build, "bin", name)

    def step_dir(self, step):
        return os.path.join(self.work, step.key)


@dataclass
class Cmd:
    argv: list
    env: dict  # added to the runner's environment (which has LD_PRELOAD, FIKIT_*, CUDA_MPS_* removed)

    def shell(self):
        env = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join(env + [shlex.quote(a) for a in self.argv])


@dataclass
class StepCmds:
    dir: str
    mps_root: str = None  # the runner starts an MPS daemon with its directories here
    broker: dict = None  # Broker(**broker) arguments
    hp: Cmd = None
    lp: Cmd = None
    lp_ready: str = None  # file the torch LP creates once warmed up
    lp_progress: str = None
    hp_jsonl: str = None
    lp_json: str = None
    timeout_s: float = 0.0
    env: dict = None  # added to every process of the step, the broker's too (--sim: the simulated GPU)


def _torch_hp(plan, step, paths, d):
    s = step.setting
    a = paths.script(plan, "hp_infer")
    for w in hp_workloads(plan, step.hp_set):
        a += ["--workload", w]
    a += ["--requests", str(plan.requests), "--warmup", str(plan.warmup), "--gap-ms", str(plan.gap_ms),
          "--gap-dist", plan.gap_dist, "--dtype", plan.dtype, "--deadline-s", str(plan.deadline_s),
          "--check-requests", str(plan.check_requests), "--out-jsonl", os.path.join(d, "hp.jsonl")]
    outputs = os.path.join(paths.work, "outputs")
    first = step.rep == rep_list(plan)[0]
    a += ["--dump-dir" if (s.name == "alone" and first) else "--compare-dir", outputs]
    if s.name == "alone":  # profiled without the library only: the library's run stays plain
        a += ["--gpu-busy-requests", str(plan.gpu_busy_requests)]
    if s.lp:
        a += ["--wait-for", os.path.join(d, "lp.ready")]
    return a


def _chain_hp(plan, paths):
    c = plan.chain
    return [paths.bin("fikit-chain"), "hp", "--requests", str(c["requests"]), "--kernels",
            str(c["kernels"]), "--kernel-us", str(c["kernel_us"]), "--gap-us", str(c["gap_us"]),
            "--request-gap-us", str(c["request_gap_us"]), "--kernel", c["kernel"], "--warmup",
            str(c["warmup"])]


def _lp(plan, step, paths, d):
    lp, alone = step.lp, not step.setting.hp
    if lp.kind == "chain":
        secs = plan.chain["lp_alone_seconds" if alone else "lp_seconds"]
        return [paths.bin("fikit-chain"), "lp", "--seconds", str(secs), "--kernel-us",
                str(lp.kernel_us), "--kernel", plan.chain["kernel"]]
    # Co-located: the runner stops it after the HP; its own limit only ends it if the runner died.
    secs = plan.lp_alone_s if alone else timeout_for(plan, step) + 30
    return paths.script(plan, "lp_train") + ["--model", lp.model, "--mode",
            lp.mode, "--batch", str(lp.batch), "--seconds", str(secs), "--progress",
            os.path.join(d, "lp.progress"), "--ready", os.path.join(d, "lp.ready"), "--out-json",
            os.path.join(d, "lp.json")]


def _fikit_run(paths, priority, name, socket, argv):
    return [paths.bin("fikit-run"), "--priority", priority, "--name", name, "--socket", socket,
            "--"] + argv


def timeout_for(plan, step):
    """Time box of a step: generous, since it only stops a step that hangs."""
    if step.hp_set is None:
        return 120 + (plan.lp_alone_s if step.lp.kind == "torch" else plan.chain["lp_alone_seconds"])
    if step.hp_set.kind == "chain":
        return 90 + plan.chain["lp_seconds"]
    return 120 + len(hp_workloads(plan, step.hp_set)) * (plan.deadline_s + 45)


def estimate_s(plan, step):
    """Expected wall time of a step (before anything was measured): start-up plus measurement."""
    if step.hp_set is None:
        return 20 + plan.lp_alone_s if step.lp.kind == "torch" else 2 + plan.chain["lp_alone_seconds"]
    if step.hp_set.kind == "chain":
        c = plan.chain
        alone_s = c["requests"] * (c["kernels"] * (c["kernel_us"] + c["gap_us"]) + c["request_gap_us"]) / 1e6
        return 3 + (c["settle_s"] + c["lp_seconds"] if step.lp else alone_s)
    # Fitted to the H200 run at abad16f (3 models, 400 requests: HP-only steps 23-26 s, co-located
    # 28-41 s): start-up, a model build each (kept for its second arrival process), ~3 ms a request.
    per_workload = (plan.requests + plan.warmup) * (plan.gap_ms + 3.0) / 1e3 * (1.3 if step.lp else 1.0)
    busy = plan.gpu_busy_requests * 0.05 if step.setting.name == "alone" else 0
    return 15 + 1.5 * len(step.hp_set.workloads) + len(hp_workloads(plan, step.hp_set)) * \
        (per_workload + busy) + (10 if step.lp else 0)


def _broker(plan, s, paths, d, caps):
    extra = []
    if caps.substrate:  # with MPS run by this runner, the broker is left to its default
        extra = [] if s.mps and not caps.mps_by_broker else ["--substrate", "mps" if s.mps else "timeslice"]
    elif caps.switch_cost and not s.mps:
        extra = ["--switch-cost-us", str(plan.switch_cost_us)]
    if plan.sim:  # no eBPF observer, no profiles from earlier runs on the simulated GPU
        extra += ["--no-bpf", "--profile-dir", ""]
    extra += list(s.broker_args)
    if plan.policy_opts:
        extra += ["--policy-opts", plan.policy_opts]
    return dict(broker_bin=paths.bin("fikit-broker"), run_dir=d, policy=plan.policy, extra_args=extra)


def sim_env(plan, step, paths):
    """--sim: one simulated GPU per step (its own shm), in MPS mode for the MPS settings."""
    if not plan.sim:
        return {}
    return {"LD_LIBRARY_PATH": os.path.join(paths.build, "sim"),
            "FIKIT_SIM_GPU": f"/fikit-bench-{os.getpid()}-{step.key}",
            "FIKIT_SIM_MODE": "mps" if step.setting.mps else "timeslice",
            "FIKIT_BENCH_SIM_ROOT": paths.sim_root}


def commands(plan, step, paths, caps=None):
    """Return the StepCmds of a step, for a broker with capabilities `caps` (BrokerCaps)."""
    caps = caps or BrokerCaps()
    s, d = step.setting, paths.step_dir(step)
    c = StepCmds(dir=d, timeout_s=timeout_for(plan, step), env=sim_env(plan, step, paths))
    env = dict({"PYTHONUNBUFFERED": "1"}, **c.env)
    if s.mps and not (s.fikit and caps.mps_by_broker):
        c.mps_root = d
        env.update(CUDA_MPS_PIPE_DIRECTORY=os.path.join(d, "mps-pipe"),
                   CUDA_MPS_LOG_DIRECTORY=os.path.join(d, "mps-log"))
    if s.fikit:
        c.broker = _broker(plan, s, paths, d, caps)
    socket = os.path.join(d, "broker.sock")
    if s.hp:
        hp = _torch_hp(plan, step, paths, d) if step.hp_set.kind == "torch" else _chain_hp(plan, paths)
        if s.fikit:
            hp = _fikit_run(paths, "high", "hp", socket, hp)
        c.hp = Cmd(hp, dict(env, **({"CUDA_MPS_CLIENT_PRIORITY": "0"} if s.lp_low_mps_priority else {})))
        c.hp_jsonl = os.path.join(d, "hp.jsonl") if step.hp_set.kind == "torch" else None
    if s.lp:
        lp = _lp(plan, step, paths, d)
        if s.fikit:
            lp = _fikit_run(paths, "low", "lp", socket, lp)
        c.lp = Cmd(lp, dict(env, **({"CUDA_MPS_CLIENT_PRIORITY": "1"} if s.lp_low_mps_priority else {}),
                            **dict(s.lp_env)))
        if step.lp.kind == "torch":
            c.lp_ready, c.lp_progress = os.path.join(d, "lp.ready"), os.path.join(d, "lp.progress")
            c.lp_json = os.path.join(d, "lp.json")
    return c


def describe(plan, step, c):
    """Human-readable lines for --dry-run: the order of actions and the exact commands."""
    lines = [f"[{step.key}] {step.setting.label}; time box {c.timeout_s:.0f} s"]
    if c.mps_root:
        lines.append(f"  start MPS: CUDA_MPS_PIPE_DIRECTORY={c.mps_root}/mps-pipe "
                     f"CUDA_MPS_LOG_DIRECTORY={c.mps_root}/mps-log nvidia-cuda-mps-control -d")
    if c.broker:
        b = c.broker
        argv = [b["broker_bin"], "start", "--socket", os.path.join(b["run_dir"], "broker.sock"),
                "--policy", b["policy"], "--foreground", "--log", os.path.join(b["run_dir"], "broker.log")]
        argv += b["extra_args"]
        lines.append("  start broker: " + " ".join(argv) + "  (then wait for status --json)")
    if c.lp:
        lines.append("  start LP: " + c.lp.shell())
    if c.hp and c.lp:
        if c.lp_ready:
            lines.append(f"  start HP at once; it measures once {c.lp_ready} exists")
        else:
            lines.append(f"  wait {plan.chain['settle_s']} s for the LP to settle")
    if c.hp:
        lines.append("  start HP: " + c.hp.shell())
    if c.hp and c.lp:
        then = "SIGTERM the LP" if c.lp_ready else "wait for the LP to finish by itself"
        lines.append("  when the HP exits: " + then)
    stops = (["stop broker (fikit-broker stop)"] if c.broker else []) + \
        (["echo quit | nvidia-cuda-mps-control"] if c.mps_root else [])
    if stops:
        lines.append("  then, also on failure: " + "; ".join(stops))
    return lines
