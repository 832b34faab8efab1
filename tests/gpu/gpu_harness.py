#!/usr/bin/env python3
"""Run a program as a fikit tenant on a real GPU, with a private broker; exit with its status.

    gpu_harness.py --build BUILD [--priority high|low] [--policy P] [--no-broker] -- CMD...

Exits 77 (skip) without a GPU (/dev/nvidia0). With --no-broker the program still gets the library
but no broker answers on its socket, so the library must fail open. Also a module: the GPU tests
import skip_without_gpu(), Build and broker() from here.
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("FIKIT_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "benchmarks", "gpu"))

import fikit_proc  # noqa: E402

SKIP = 77


def skip_without_gpu():
    if not os.path.exists("/dev/nvidia0"):
        print("SKIP: no GPU (/dev/nvidia0 is missing)")
        sys.exit(SKIP)


class Build:
    """Paths of a fikit build directory; fail() if something the GPU tests need was not built."""

    def __init__(self, build):
        self.dir = os.path.abspath(build or os.environ.get("FIKIT_BUILD_DIR") or "build")
        self.lib = os.path.join(self.dir, "lib", "libfikit.so")
        self.stats_dump = os.path.join(self.dir, "lib", "libfikit_stats_dump.so")
        self.broker_bin = os.path.join(self.dir, "bin", "fikit-broker")
        self.run_bin = os.path.join(self.dir, "bin", "fikit-run")
        self.chain = os.path.join(self.dir, "bin", "fikit-chain")

    def require(self, *paths):
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            print(f"FAIL: not built: {', '.join(missing)} (build the project first: make build)")
            sys.exit(1)

    def tenant(self, priority, name, socket, argv):
        """argv run as a tenant through fikit-run."""
        return [self.run_bin, "--priority", priority, "--name", name, "--socket", socket, "--"] + argv


@contextlib.contextmanager
def broker(build, policy="fikit"):
    """A private broker in a temporary directory; yields it (its .socket is the path to use)."""
    with tempfile.TemporaryDirectory(prefix="fikit-gpu-test-") as d:
        # Time-slicing as in phase 1 (a broker of this build would pick MPS on a GPU machine as
        # root); substrate_test.py covers MPS run by the broker.
        extra = ["--substrate", "timeslice"] if "--substrate" in fikit_proc.broker_help(
            build.broker_bin) else []
        b = fikit_proc.Broker(build.broker_bin, d, policy=policy, extra_args=extra)
        b.start()
        try:
            yield b
        finally:
            b.stop()
            if b.returncode not in (0, None):
                print(f"broker exited with {b.returncode}:\n{b.output_tail()}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build")
    p.add_argument("--priority", default="high")
    p.add_argument("--policy", default="fikit", help="the broker's policy")
    p.add_argument("--no-broker", action="store_true")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        p.error("no command given")
    skip_without_gpu()
    build = Build(a.build)
    build.require(build.lib, build.broker_bin, build.run_bin)
    if a.no_broker:
        with tempfile.TemporaryDirectory(prefix="fikit-gpu-test-") as d:
            return subprocess.call(build.tenant(a.priority, "test", os.path.join(d, "none.sock"), cmd))
    with broker(build, a.policy) as b:
        rc = subprocess.call(build.tenant(a.priority, "test", b.socket, cmd))
        print(f"broker status: {b.status()}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
