#!/usr/bin/env python3
"""The GPU benchmark run end to end on the simulated driver (`run_bench.py --sim`): the real
broker, fikit-run and libfikit.so, with sim_workload.py standing in for PyTorch. It checks that
every kind of step issue 17's calls use starts, is managed and reports (status ok: a fikit step
whose tenants did not connect would be "unmanaged"), that the lever variables reach the LP and
not the HP, that a budget setting runs or is skipped as the broker's --help allows, and that
compare.py turns the output into its tables. No number is checked. Exit 77 without the build.

Run: python3 tests/gpu/bench_sim_test.py [BUILD]   (exit 0 pass, 1 fail, 77 skip)
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu")
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FIKIT_BUILD_DIR", "build"))
SETTINGS = "alone,alone-fikit,lp-alone,timeslice,mps,fikit-ts,fikit-mps-b1.05,mps-t50-p1,fikit-mps-t25-p0"


class SimRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="fikit-sim-bench-test-")
        cls.out = os.path.join(cls.root, "out")
        argv = [sys.executable, os.path.join(BENCH, "run_bench.py"), "--sim", "--build", BUILD,
                "--out", cls.out, "--lps", "resnet50-train-b64", "--workloads", "resnet50:graph:8",
                "--arrivals", "exp,fixed",
                "--requests", "20", "--warmup", "3", "--lp-alone-s", "1", "--no-plot", "--budget-s", "150",
                "--settings", SETTINGS, "--work-dir", os.path.join(cls.root, "w")]
        cls.proc = subprocess.run(argv, capture_output=True, text=True, timeout=240)
        with open(os.path.join(cls.out, "results.csv")) as f:
            cls.rows = list(csv.DictReader(f))
        with open(os.path.join(cls.out, "raw.jsonl")) as f:
            cls.raw = [json.loads(line) for line in f]
        help_text = subprocess.run([os.path.join(BUILD, "bin", "fikit-broker"), "--help"],
                                   capture_output=True, text=True).stdout
        cls.has_budget = "--hp-budget" in help_text

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_run_ended(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stdout[-3000:] + self.proc.stderr[-3000:])

    def test_every_step_ok_and_both_arrivals(self):
        for r in self.rows:
            if r["setting"] == "fikit-mps-b1.05" and not self.has_budget:
                self.assertEqual(r["status"], "skipped")
                self.assertIn("--hp-budget", r["note"])
                continue
            self.assertEqual(r["status"], "ok", r)
        hps = {r["hp"] for r in self.rows if r["hp"]}
        self.assertEqual(hps, {"resnet50:graph:8@exp", "resnet50:graph:8@fixed"})
        if not self.has_budget:
            self.assertIn("fikit-mps", {r["setting"] for r in self.rows})  # in the budget's place

    def test_levers_reach_the_lp(self):
        steps = {r["key"]: r for r in self.raw if r.get("type") == "step"}
        last = lambda key: json.loads(steps[key]["lp_output_tail"].strip().splitlines()[-1])  # noqa: E731
        lp = last("r0-fikit-mps-t25-p0-resnet50-train-b64")
        self.assertEqual(lp["mps_env"], {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "25",
                                         "CUDA_MPS_CLIENT_PRIORITY": "0"})
        lp = last("r0-mps-t50-p1-resnet50-train-b64")
        self.assertEqual(lp["mps_env"]["CUDA_MPS_CLIENT_PRIORITY"], "1")
        self.assertNotIn("ACTIVE_THREAD", steps["r0-mps-t50-p1-resnet50-train-b64"]["commands"]["hp"])

    def test_mps_steps_saw_a_server_and_fikit_steps_a_broker(self):
        for r in self.rows:
            if r["status"] == "ok" and "mps" in r["setting"] and r["setting"] != "alone":
                self.assertEqual(r["substrate"], "mps", r)
        # (Its tenants connected: an "ok" fikit row needs libfikit loaded and connected. The status
        # samples are once a second, too coarse for these short steps to check.)
        for s in (r for r in self.raw if r.get("type") == "step"):
            ran = s["setting"] != "fikit-mps-b1.05" or self.has_budget
            self.assertEqual("broker_argv" in s, "fikit" in s["setting"] and ran, s["key"])

    def test_compare_reads_it(self):
        out = os.path.join(self.root, "cmp")
        r = subprocess.run([sys.executable, os.path.join(BENCH, "compare.py"), "--run1", self.out,
                            "--run2", self.out, "--out", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "comparison.md")) as f:
            md = f.read()
        self.assertIn("### Poisson arrivals", md)
        self.assertIn("### periodic arrivals", md)
        self.assertIn("| 25% |", md)
        self.assertIn("fikit-mps-t25-p0,resnet50:graph:8,", md)


if __name__ == "__main__":
    if not all(os.path.exists(os.path.join(BUILD, p)) for p in ("bin/fikit-broker", "bin/fikit-run",
                                                                 "lib/libfikit.so", "sim/libcuda.so.1")):
        print(f"skip: no broker, library and simulated driver in {BUILD}")
        sys.exit(77)
    sys.argv[1:] = []
    unittest.main()
