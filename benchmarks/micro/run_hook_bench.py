#!/usr/bin/env python3
"""HP hook path: ns per cuLaunchKernel without and with libfikit.so (fikit_bench_hook).

    run_hook_bench.py [--build BUILD] [--driver auto|sim|real|both] [--min-time S]
                      [--repetitions N]

For each driver (sim: <build>/sim/libcuda.so.1 with FIKIT_SIM_LAUNCH_NS=0; real: the system's
libcuda.so.1, auto adds it when /dev/nvidia0 exists) the same launch loop runs three times: plain,
with libfikit.so preloaded as an HP tenant of a running broker, and preloaded with no broker (fail
open). Every run's command, exit status and whole output (stdout and stderr) are printed, then a
summary: wall and CPU ns per launch (the median of N runs) and the hook's cost (the run minus
plain). A run that failed, ran on the wrong driver, or did not take the path it was meant to (not
connected, launches passed through) is named with the reason, and the exit status is 1; nothing
fails silently.

The broker (policy priority) runs in the foreground on a private socket with --substrate timeslice
--switch-cost-us 0 --no-bpf --profile-dir '': the benchmark measures the client's path, and on a GPU
host the defaults would start MPS, calibrate and load the eBPF observer (as root), all beside the
point and each a way to fail. It never sees the simulated driver's LD_LIBRARY_PATH.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

SIM_DEVICE = "fikit simulated GPU"  # what the simulated driver's cuDeviceGetName says
RUN_TIMEOUT_S = 180
failures = []


def say(text=""):
    print(text, flush=True)


def fail(what):
    """Record and print a failure; return None (the run's missing result)."""
    failures.append(what)
    say(f"FAILED: {what}")
    return None


def header(build):
    commit = os.environ.get("FIKIT_COMMIT")
    if not commit:
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True)
        commit = r.stdout.strip() if r.returncode == 0 else "unknown"
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), "unknown CPU")
    say("# fikit HP hook path (benchmarks/micro/run_hook_bench.py)")
    say(f"date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    say(f"commit: {commit}")
    say(f"machine: {os.cpu_count()} cores, {cpu}, kernel {platform.release()}")
    say(f"build: {build}")
    say(f"LD_LIBRARY_PATH (caller): {os.environ.get('LD_LIBRARY_PATH', '')}")


def base_env(sim_dir):
    """The caller's environment without libfikit, the simulated driver or its settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FIKIT_", "LD_PRELOAD"))}
    paths = [p for p in env.get("LD_LIBRARY_PATH", "").split(":")
             if p and os.path.realpath(p) != os.path.realpath(sim_dir)]
    env["LD_LIBRARY_PATH"] = ":".join(paths)
    return env


def driver_env(driver, sim_dir, shm_name):
    env = base_env(sim_dir)
    if driver == "sim":
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (sim_dir, env["LD_LIBRARY_PATH"]) if p)
        env.update(FIKIT_SIM_LAUNCH_NS="0", FIKIT_SIM_GPU=shm_name)
    return env


class Broker:
    """fikit-broker in the foreground on a private socket, for the HP runs."""

    def __init__(self, bin_dir, tmp):
        self.bin = os.path.join(bin_dir, "fikit-broker")
        self.socket = os.path.join(tmp, "broker.sock")
        self.out = os.path.join(tmp, "broker.out")
        self.proc = None

    def argv(self):
        help_text = subprocess.run([self.bin, "--help"], capture_output=True, text=True).stdout
        argv = [self.bin, "start", "--foreground", "--socket", self.socket, "--policy", "priority"]
        for opt, args in (("--substrate", ["timeslice"]), ("--switch-cost-us", ["0"]),
                          ("--no-bpf", []), ("--profile-dir", [""])):
            if opt in help_text:  # an older build lacks some
                argv += [opt] + args
        return argv

    def status_ok(self):
        try:
            r = subprocess.run([self.bin, "status", "--socket", self.socket], capture_output=True,
                               timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def start(self, env):
        argv = self.argv()
        say(f"### broker: {' '.join(repr(a) if not a else a for a in argv)}")
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while self.proc.poll() is None and time.monotonic() < deadline:
            if self.status_ok():
                say(f"broker listening (pid {self.proc.pid})")
                return True
            time.sleep(0.1)
        why = "exited with " + str(self.proc.poll()) if self.proc.poll() is not None \
            else "did not answer `status` within 20 s"
        fail(f"the broker {why} (its output follows)")
        self.stop()
        return False

    def output(self):
        try:
            with open(self.out, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            subprocess.run([self.bin, "stop", "--socket", self.socket], capture_output=True,
                           timeout=15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        say(f"### broker exited with {self.proc.returncode}; its output:\n{self.output()}")
        self.proc = None


def expectations(driver, config, rec):
    """Return why `rec` does not measure what `config` on `driver` means, or None."""
    label, c = rec.get("label", ""), {k: int(rec.get(k, -1)) for k in
                                      ("fikit", "connected", "seen", "passed", "iterations")}
    if (label == SIM_DEVICE) != (driver == "sim"):
        return f"ran on '{label}', not on the {driver} driver (check LD_LIBRARY_PATH)"
    if config == "plain" and c["fikit"] != 0:
        return "libfikit.so is loaded in the plain run"
    if config != "plain":
        if c["fikit"] != 1:
            return "libfikit.so is not loaded (LD_PRELOAD failed?)"
        if c["seen"] != c["iterations"]:
            return f"the library saw {c['seen']} of {c['iterations']} launches"
    if config == "hp" and (c["connected"] != 1 or c["passed"] != 0):
        return (f"not the HP path: connected {c['connected']}, {c['passed']} launches passed "
                "through (the library failed open)")
    if config == "failopen" and (c["connected"] != 0 or c["passed"] != c["seen"]):
        return f"not fail-open: connected {c['connected']}, passed {c['passed']} of {c['seen']}"
    return None


def run_one(bench, driver, config, env, args, tmp):
    """Run the benchmark once, print everything it says; return its median record or None."""
    out = os.path.join(tmp, f"{driver}-{config}.json")
    argv = [bench, f"--benchmark_min_time={args.min_time}",
            f"--benchmark_repetitions={args.repetitions}", "--benchmark_counters_tabular=true",
            f"--benchmark_out={out}", "--benchmark_out_format=json"]
    shown = " ".join(f"{k}={env[k]}" for k in ("LD_PRELOAD", "FIKIT_SOCKET", "LD_LIBRARY_PATH")
                     if env.get(k))
    say(f"\n### {driver} driver, {config}: {shown} {' '.join(argv[:3])}")
    try:
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=RUN_TIMEOUT_S)
        output, rc = r.stdout, r.returncode
    except subprocess.TimeoutExpired as e:
        output, rc = e.stdout or b"", f"killed after {RUN_TIMEOUT_S} s"
    say(output.decode(errors="replace").rstrip())
    say(f"exit status: {rc}")
    return judge(driver, config, out, rc)


def judge(driver, config, out, rc):
    """Return the median of the runs in `out` if every run measured what it should, else None."""
    try:
        with open(out) as f:
            runs = json.load(f)["benchmarks"]
    except FileNotFoundError:
        return fail(f"{driver} {config}: exit status {rc}, no result; its output is above")
    except (OSError, ValueError, KeyError) as e:
        return fail(f"{driver} {config}: exit status {rc}, unreadable result {out}: {e}")
    reps = [b for b in runs if b.get("run_type", "iteration") == "iteration"]
    why = next((b.get("error_message") for b in reps if b.get("error_occurred")), None)
    why = why or next(filter(None, (expectations(driver, config, b) for b in reps)), None)
    if not reps or rc != 0 or why:
        return fail(f"{driver} {config}: {why or f'exit status {rc}, {len(reps)} runs'}")
    median = dict(([b for b in runs if b.get("aggregate_name") == "median"] or reps)[0])
    median["dropped_total"] = sum(int(b.get("dropped", 0)) for b in reps)
    return median


def cell(rec, plain):
    if rec is None:
        return "failed (see above)"
    text = f"{rec['real_time']:.0f} / {rec['cpu_time']:.0f}"
    if plain is not None and rec is not plain:
        text += f" ({rec['real_time'] - plain['real_time']:+.0f} / " \
                f"{rec['cpu_time'] - plain['cpu_time']:+.0f})"
    if rec["dropped_total"]:  # a full ring: the broker fell behind, the hook took its drop path
        text += f", {rec['dropped_total']} HP records dropped"
    return text


def summary(results):
    say("\n## HP hook path: ns per cuLaunchKernel, wall / CPU (hook cost: minus plain)")
    say("| driver | device | plain | HP tenant of a broker | fail open (no broker) |")
    say("|---|---|---|---|---|")
    for driver, recs in results.items():
        plain = recs.get("plain")
        device = next((r["label"] for r in recs.values() if r), "?")
        say(f"| {driver} | {device} | {cell(plain, None)} | {cell(recs.get('hp'), plain)} | "
            f"{cell(recs.get('failopen'), plain)} |")


def run_driver(driver, build, broker, args, tmp, shm):
    """Plain, HP tenant of `broker` (None: it did not start) and fail open on one driver."""
    bench = os.path.join(build, "bin", "fikit_bench_hook")
    env = driver_env(driver, os.path.join(build, "sim"), shm)
    preload = dict(env, LD_PRELOAD=os.path.join(build, "lib", "libfikit.so"),
                   FIKIT_PRIORITY="high", FIKIT_TENANT="hook-bench")
    envs = {"plain": env, "hp": dict(preload, FIKIT_SOCKET=broker.socket if broker else ""),
            "failopen": dict(preload, FIKIT_SOCKET=os.path.join(tmp, "none.sock"))}
    recs = {}
    for config, cfg_env in envs.items():
        if config == "hp" and not broker:
            say(f"\n### {driver} driver, hp: not run: the broker did not start")
            recs[config] = None
            continue
        recs[config] = run_one(bench, driver, config, cfg_env, args, tmp)
    return recs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.environ.get("FIKIT_BUILD_DIR") or "build")
    p.add_argument("--driver", choices=("auto", "sim", "real", "both"), default="auto")
    p.add_argument("--min-time", default="0.5", help="--benchmark_min_time, seconds")
    p.add_argument("--repetitions", type=int, default=3, help="runs of each; the median is kept")
    a = p.parse_args()
    build = os.path.abspath(a.build)
    bench = os.path.join(build, "bin", "fikit_bench_hook")
    lib = os.path.join(build, "lib", "libfikit.so")
    sim_dir = os.path.join(build, "sim")
    header(build)
    drivers = {"auto": ["sim"] + (["real"] if os.path.exists("/dev/nvidia0") else []),
               "sim": ["sim"], "real": ["real"], "both": ["sim", "real"]}[a.driver]
    say(f"drivers: {', '.join(drivers)}")
    missing = [f for f in (bench, lib, os.path.join(build, "bin", "fikit-broker"))
               + ((os.path.join(sim_dir, "libcuda.so.1"),) if "sim" in drivers else ())
               if not os.path.exists(f)]
    if missing:
        fail(f"not built: {', '.join(missing)} (cmake --build {build} --target fikit_bench_hook "
             "fikit fikit-broker)")
        return 1
    shm = f"/fikit-hook-bench-{os.getpid()}"
    results = {}
    with tempfile.TemporaryDirectory(prefix="fikit-hook-bench-") as tmp:
        broker = Broker(os.path.dirname(bench), tmp)
        broker_up = broker.start(base_env(sim_dir))
        try:
            for driver in drivers:
                results[driver] = run_driver(driver, build, broker if broker_up else None, a,
                                             tmp, shm)
        finally:
            broker.stop()
            if os.path.exists("/dev/shm" + shm):
                os.unlink("/dev/shm" + shm)
    summary(results)
    say(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failed run(s)")
    for f in failures:
        say(f"  - {f.splitlines()[0]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
