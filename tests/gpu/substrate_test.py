#!/usr/bin/env python3
"""GPU test of the broker's substrates (exit 77 without a GPU): the switch-back cost measured at
start-up on time-slicing, and the MPS control daemon run by the broker.

  substrate_test.py [--build BUILD]

1. `fikit-calibrate` alone, three times (printed: the spread of the measurement).
2. `fikit-broker start --substrate timeslice`: the status says the cost was measured, > 0.
3. `--substrate mps --calibrate` (root only): the broker starts nvidia-cuda-mps-control -d with its
   directories under its run directory; an HP chain started with fikit-run joins it (an MPS server
   shows in nvidia-smi while it runs, and it completes); the cost measured on MPS is printed; after
   `fikit-broker stop` the daemon is gone.
4. `--substrate auto` (root only): picks MPS on this machine.
Nothing changes a GPU setting; an MPS daemon left by a failure is sent `quit`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from gpu_harness import Build, fikit_proc, skip_without_gpu

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start_broker(build, d, extra):
    b = fikit_proc.Broker(build.broker_bin, d, policy="fikit", extra_args=extra)
    b.start(ready_timeout_s=40)
    return b


def calibrate_alone(build):
    for i in range(3):
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(build.dir, "bin", "fikit-calibrate")], capture_output=True,
                           text=True, timeout=60)
        print(f"fikit-calibrate #{i + 1} ({time.monotonic() - t0:.2f} s, exit {r.returncode}): "
              f"{(r.stdout + r.stderr).strip()}", flush=True)
        check(r.returncode == 0 and "switch_back_us=" in r.stdout, "fikit-calibrate measures")


def timeslice(build):
    with tempfile.TemporaryDirectory(prefix="fikit-sub-") as d:
        t0 = time.monotonic()
        b = start_broker(build, d, ["--substrate", "timeslice"])
        try:
            s = (b.status() or {}).get("substrate") or {}
            print(f"timeslice broker up in {time.monotonic() - t0:.2f} s: {json.dumps(s)}", flush=True)
            check(s.get("kind") == "timeslice", "--substrate timeslice is time-slicing")
            check(s.get("switch_cost_source") == "measured" and s.get("switch_cost_us", 0) > 0,
                  f"switch-back cost measured at start-up: {s.get('switch_cost_us')} us")
        finally:
            b.stop()
        print("broker log:\n" + b.output_tail(3000), flush=True)


def mps(build, extra, expect_why=""):
    with tempfile.TemporaryDirectory(prefix="fikit-sub-") as d:
        pipe = os.path.join(d, "mps-pipe")
        t0 = time.monotonic()
        b = start_broker(build, d, extra)
        daemon = 0
        try:
            s = (b.status() or {}).get("substrate") or {}
            print(f"broker {' '.join(extra)} up in {time.monotonic() - t0:.2f} s: {json.dumps(s)}",
                  flush=True)
            check(s.get("kind") == "mps" and expect_why in s.get("why", ""),
                  f"{' '.join(extra)}: MPS ({s.get('why')})")
            check(s.get("mps_pipe_dir") == pipe, "MPS pipe directory under the run directory")
            daemon = s.get("mps_daemon_pid") or 0
            check(fikit_proc.alive(daemon), f"MPS control daemon runs (pid {daemon})")
            hp = subprocess.Popen(build.tenant("high", "hp", b.socket, [
                build.chain, "hp", "--requests", "300", "--kernels", "10", "--kernel-us", "200",
                "--gap-us", "100", "--request-gap-us", "2000"]), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            apps, end = [], time.monotonic() + 60
            while not apps and hp.poll() is None and time.monotonic() < end:
                apps = [x for x in fikit_proc.compute_apps() if "mps-server" in x]
                time.sleep(0.1)
            out, _ = hp.communicate(timeout=120)
            print(f"MPS server seen while the tenant ran: {apps}", flush=True)
            check(bool(apps), "the tenant joined the broker's MPS daemon (an MPS server ran)")
            check(hp.returncode == 0 and "mode=hp" in out, f"the tenant ran: {out.strip()[-300:]}")
        finally:
            b.stop()
        gone = fikit_proc.wait_until(lambda: not fikit_proc.alive(daemon), 20, 0.1)
        check(gone, "the MPS control daemon is gone after the broker stopped")
        if not gone:  # leave nothing behind
            fikit_proc.quit_stale_mps(os.path.join(pipe, "control"))
        print("broker log:\n" + b.output_tail(3000), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build")
    a = p.parse_args()
    skip_without_gpu()
    build = Build(a.build)
    build.require(build.broker_bin, build.run_bin, build.chain, build.lib,
                  os.path.join(build.dir, "bin", "fikit-calibrate"))
    calibrate_alone(build)
    timeslice(build)
    if os.geteuid() != 0:
        print("not root: the MPS checks are skipped")
    elif not shutil.which("nvidia-cuda-mps-control"):
        print("nvidia-cuda-mps-control not found: the MPS checks are skipped")
    else:
        mps(build, ["--substrate", "mps", "--calibrate"], "--substrate mps")
        mps(build, ["--substrate", "auto"], "auto")
    print(f"{'FAILED: ' + '; '.join(failures) if failures else 'all substrate checks passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
