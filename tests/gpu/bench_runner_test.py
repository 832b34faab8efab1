#!/usr/bin/env python3
"""CPU test of the GPU benchmark runner with fake programs: a fake fikit-broker, fikit-run,
fikit-chain, nvidia-cuda-mps-control and nvidia-smi that follow the real interfaces and print
numbers that depend on the environment they were given. It checks that each setting starts what it
should with the environment it should (MPS variables, client priority, the library), that every
MPS daemon and broker is stopped again, that a hanging step is time-boxed, and that results.csv and
results.md are written. The PyTorch steps are skipped (no torch needed here).

Run: python3 tests/gpu/bench_runner_test.py   (exit 0 pass, 1 fail)
"""

import csv
import glob
import json
import os
import shutil
import stat
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu"))

import execute  # noqa: E402
import fikit_proc  # noqa: E402
import plan  # noqa: E402
import run_bench  # noqa: E402

FAKES = {
    "bin/fikit-broker": """
        import json, os, signal, sys, time
        a = sys.argv[1:]
        if "--help" in a:
            print("usage: fikit-broker start [--socket S] [--policy P] [--foreground] [--log F] "
                  "[--switch-cost-us N]")
            sys.exit(0)
        sock = a[a.index("--socket") + 1]
        if a[0] == "start":
            assert "--foreground" in a
            open(sock + ".pid", "w").write(str(os.getpid()))
            open(a[a.index("--log") + 1], "w").write("fake broker: " + " ".join(a) + "\\n")
            open(sock, "w").close()
            signal.signal(signal.SIGTERM, lambda *_: (os.unlink(sock), sys.exit(0)))
            while True:
                time.sleep(0.01)
        elif a[0] == "status":
            if not os.path.exists(sock):
                sys.exit(1)
            print(json.dumps({"tenants": [{"name": "hp", "launches": 7}]}))
        elif a[0] == "stop":
            os.kill(int(open(sock + ".pid").read()), signal.SIGTERM)
    """,
    "bin/fikit-run": """
        import os, sys
        a = sys.argv[1:]
        i = a.index("--")
        build = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, LD_PRELOAD=os.path.join(build, "lib", "libfikit.so"),
                   FIKIT_PRIORITY=a[a.index("--priority") + 1], FIKIT_SOCKET=a[a.index("--socket") + 1])
        os.execvpe(a[i + 1], a[i + 1:], env)
    """,
    "bin/fikit-chain": """
        import os, sys, time
        mode, a = sys.argv[1], dict(zip(sys.argv[2::2], sys.argv[3::2]))
        if os.environ.get("FAKE_HANG"):
            time.sleep(1000)
        fikit = bool(os.environ.get("LD_PRELOAD"))
        mps = bool(os.environ.get("CUDA_MPS_PIPE_DIRECTORY"))
        if mode == "hp":
            time.sleep(0.3)
            mean = 3000 + (1000 if fikit else 0) - (500 if mps else 0)
            print(f"mode=hp requests={a['--requests']} kernels={a['--kernels']} sync=stream jct_ms=1000 "
                  f"mean_us={mean} p50_us={mean} p90_us={mean} p99_us={mean * 1.5} max_us={mean * 2}")
        else:
            secs = float(a["--seconds"])
            time.sleep(secs)
            k = 1000 * secs * (2 if os.environ.get("CUDA_MPS_CLIENT_PRIORITY") == "1" else 1)
            print(f"mode=lp kernels={k:.0f} kernel_us={a['--kernel-us']} batch=4 elapsed_ms={secs * 1e3} "
                  "busy=0.5")
    """,
    "path/nvidia-cuda-mps-control": """
        import os, sys
        pipe, marker = os.environ["CUDA_MPS_PIPE_DIRECTORY"], os.environ["FAKE_ROOT"] + "/mps-running"
        if sys.argv[1:] == ["-d"]:
            os.makedirs(pipe, exist_ok=True)
            open(os.path.join(pipe, "control"), "w").close()
            open(marker, "a").write(pipe + "\\n")
        elif sys.stdin.read().strip() == "quit":
            os.unlink(os.path.join(pipe, "control"))
            os.unlink(marker)
    """,
    "path/nvidia-smi": """
        import os, sys
        marker = os.environ["FAKE_ROOT"] + "/mps-running"
        if any(x.startswith("--query-compute-apps") for x in sys.argv):
            print("42, nvidia-cuda-mps-server" if os.path.exists(marker) else "43, python3")
        elif any(x.startswith("--query-gpu") for x in sys.argv):
            print("Fake GPU, 1.0, Default, 1 MiB")
        else:
            print("| NVIDIA-SMI 1.0   Driver Version: 1.0   CUDA Version: 13.0 |")
    """,
}


def make_fakes(root):
    for rel, body in FAKES.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!" + sys.executable + "\n" + textwrap.dedent(body))
        os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    os.makedirs(os.path.join(root, "lib"), exist_ok=True)
    open(os.path.join(root, "lib", "libfikit.so"), "w").close()


def small_plan():
    p = plan.quick_plan()
    p.hp_sets = [plan.HpSet("chain", "chain", ["chain"]), plan.HpSet("torch", "torch", ["resnet50:eager:1"])]
    p.lps = [plan.Lp("chain-burn-50us", "chain", "chain", kernel_us=50),
             plan.Lp("resnet50-train-b64", "torch", "torch", "resnet50", "train", 64)]
    p.chain.update(lp_seconds=1.0, lp_alone_seconds=0.3, settle_s=0.2)
    return p


class RunnerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="fikit-runner-test-")
        make_fakes(cls.root)
        os.environ["PATH"] = os.path.join(cls.root, "path") + os.pathsep + os.environ["PATH"]
        os.environ["FAKE_ROOT"] = cls.root
        cls.out = os.path.join(cls.root, "out")
        args = run_bench.parse_args(["--out", cls.out, "--build", cls.root])
        paths = plan.Paths(build=cls.root, work=os.path.join(cls.root, "work"))
        caps = run_bench.broker_caps(os.path.join(cls.root, "bin", "fikit-broker"), "auto")
        runner = run_bench.Runner(args, small_plan(), paths, caps)
        runner.run(have_torch=False)
        with open(os.path.join(cls.out, "results.csv")) as f:
            cls.rows = {(r["setting"], r["lp"], r["hp"]): r for r in csv.DictReader(f)}
        with open(os.path.join(cls.out, "raw.jsonl")) as f:
            cls.raw = [json.loads(line) for line in f]

    @classmethod
    def tearDownClass(cls):
        fikit_proc.stop_all()
        shutil.rmtree(cls.root, ignore_errors=True)

    def row(self, setting, lp="chain-burn-50us", hp="chain"):
        r = self.rows.get((setting, lp, hp))
        self.assertIsNotNone(r, f"no row for {setting} {lp} {hp}: {sorted(self.rows)}")
        return r

    def test_every_chain_setting_ran(self):
        for s in ("timeslice", "mps", "mps-prio", "fikit-ts", "fikit-mps"):
            self.assertEqual(self.row(s)["status"], "ok", self.row(s))
        self.assertEqual(self.row("alone", "")["status"], "ok")
        self.assertEqual(self.row("lp-alone", hp="")["status"], "ok")

    def test_each_setting_got_its_environment(self):
        self.assertEqual(float(self.row("alone", "")["mean_ms"]), 3.0)
        self.assertEqual(float(self.row("alone-fikit", "")["mean_ms"]), 4.0)  # under fikit-run
        self.assertEqual(float(self.row("mps")["mean_ms"]), 2.5)  # an MPS client
        self.assertEqual(float(self.row("fikit-mps")["mean_ms"]), 3.5)
        self.assertEqual(float(self.row("mps-prio")["lp_units"]), 2000)  # LP at client priority 1
        self.assertEqual(float(self.row("mps")["lp_units"]), 1000)

    def test_mps_seen_only_where_expected(self):
        for s in ("mps", "mps-prio", "fikit-mps"):
            self.assertEqual(self.row(s)["substrate"], "mps")
        self.assertEqual(self.row("timeslice")["substrate"], "")

    def test_everything_stopped(self):
        self.assertFalse(os.path.exists(os.path.join(self.root, "mps-running")))
        self.assertEqual(glob.glob(os.path.join(self.root, "work", "*", "mps-pipe", "control")), [])
        for pidf in glob.glob(os.path.join(self.root, "work", "*", "broker.sock.pid")):
            with open(pidf) as f:
                pid = int(f.read())
            self.assertIsNone(fikit_proc.cpu_seconds(pid), f"broker {pid} still running")

    def test_broker_only_for_fikit_settings(self):
        steps = {r["key"]: r for r in self.raw if r.get("type") == "step"}
        for key, rec in steps.items():
            self.assertEqual("broker_argv" in rec, "fikit" in rec["setting"], key)
        status = steps["r0-fikit-mps-chain-burn-50us"]["broker"]["status"]
        self.assertEqual(status["tenants"][0]["launches"], 7)
        self.assertIn("--switch-cost-us", steps["r0-fikit-ts-chain-burn-50us"]["broker_argv"])
        self.assertNotIn("--switch-cost-us", steps["r0-fikit-mps-chain-burn-50us"]["broker_argv"])

    def test_torch_steps_skipped_without_torch(self):
        r = self.row("timeslice", "resnet50-train-b64", "resnet50:eager:1")
        self.assertEqual(r["status"], "skipped")
        self.assertIn("python3 with torch", r["note"])

    def test_report_written(self):
        with open(os.path.join(self.out, "results.md")) as f:
            md = f.read()
        self.assertIn("## Pair: LP chain-burn-50us", md)
        self.assertIn("| chain | MPS prio |", md)

    def test_hanging_step_is_time_boxed(self):
        p = small_plan()
        step = next(s for s in plan.steps(p, 1) if s.setting.name == "timeslice" and s.lp.kind == "chain")
        paths = plan.Paths(build=self.root, work=os.path.join(self.root, "work-hang"))
        os.environ["FAKE_HANG"] = "1"
        try:
            t0 = time.monotonic()
            rows, raw = execute.run_step(p, step, plan.commands(p, step, paths), timebox_s=2.0)
        finally:
            del os.environ["FAKE_HANG"]
        self.assertLess(time.monotonic() - t0, 20)
        self.assertTrue(raw.get("timed_out"))
        self.assertNotEqual(rows[0]["status"], "ok")
        self.assertIn("timed out", rows[0]["note"])
        for rc in raw["returncodes"].values():
            self.assertIsNotNone(rc)


if __name__ == "__main__":
    unittest.main()
