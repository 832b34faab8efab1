#!/usr/bin/env python3
"""CPU test of the GPU benchmark's bookkeeping: the plan's commands, output parsing, and the report
computed from a synthetic results.csv (made up here, so the expected ratios are known; these numbers
are test data, never results).

Run: python3 tests/gpu/bench_report_test.py   (exit 0 pass, 1 fail)
"""

import csv
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu"))

import execute  # noqa: E402
import plan  # noqa: E402
import report  # noqa: E402


def row(setting, lp, hp, **kw):
    r = {"date": "2000-01-01T00:00:00", "step": f"r{kw.get('rep', 0)}-{setting}-{lp or hp}",
         "rep": 0, "setting": setting, "lp": lp, "hp": hp, "status": "ok", "substrate": "", "note": ""}
    r.update(kw)
    return r


def synthetic_rows():
    """Two HP workloads (A eager-ish, B) and a torch LP 'X', plus the chain with 'chain-burn-50us'."""
    rows = [
        row("alone", "", "A", requests=100, jct_ms=1000.0, mean_ms=5.0, p50_ms=5.0, p99_ms=8.0,
            gpu_busy_ms=2.0, kernels_per_req=160, outputs_match=""),
        row("alone-fikit", "", "A", requests=100, jct_ms=1003.0, mean_ms=5.04, p50_ms=5.02, p99_ms=8.2,
            launches_per_req=160, outputs_match=True),
        row("alone", "", "B", requests=100, jct_ms=500.0, mean_ms=2.0, p50_ms=2.0, p99_ms=3.0,
            gpu_busy_ms=1.5),
        row("lp-alone", "X", "", lp_rate=10.0, lp_unit="it/s", lp_scope="run", lp_units=100, lp_run_s=10),
        row("timeslice", "X", "A", requests=100, jct_ms=2000.0, mean_ms=10.0, p50_ms=10.0, p99_ms=20.0,
            lp_rate=8.0, lp_unit="it/s", lp_scope="window", lp_units=16, lp_run_s=2.0),
        row("fikit-mps", "X", "A", requests=100, jct_ms=1000.0, mean_ms=5.1, p50_ms=5.1, p99_ms=8.4,
            lp_rate=6.0, lp_unit="it/s", lp_scope="window", lp_units=6, lp_run_s=1.0,
            broker_cpu_pct=35.0, substrate="mps", outputs_match=True),
        row("fikit-ts", "X", "A", requests=100, jct_ms=1500.0, mean_ms=7.5, p50_ms=7.0, p99_ms=12.0,
            lp_rate=3.0, lp_unit="it/s", lp_scope="window"),
        row("timeslice", "X", "B", requests=100, jct_ms=600.0, mean_ms=3.0, p50_ms=3.0, p99_ms=4.0,
            lp_rate=9.0, lp_unit="it/s", lp_scope="window"),
        row("fikit-mps", "X", "B", requests=100, jct_ms=520.0, mean_ms=2.2, p50_ms=2.2, p99_ms=3.5,
            lp_rate=3.0, lp_unit="it/s", lp_scope="window"),
        row("alone", "", "chain", requests=200, jct_ms=1000.0, mean_ms=3.0, p50_ms=3.0, p99_ms=3.2,
            gpu_busy_ms=2.0),
        row("lp-alone", "chain-burn-50us", "", lp_rate=1000.0, lp_unit="kernels/s", lp_scope="run",
            lp_units=3000, lp_run_s=3.0),
        row("timeslice", "chain-burn-50us", "chain", requests=200, jct_ms=2000.0, mean_ms=6.4,
            p50_ms=6.0, p99_ms=9.0, lp_rate=6000 / 7, lp_unit="kernels/s", lp_scope="run",
            lp_units=6000, lp_run_s=7.0),
        row("mps", "X", "A", status="error", note="boom"),
    ]
    return rows


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fikit-report-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        report.append_rows(os.path.join(self.dir, "results.csv"), synthetic_rows())
        raw = [{"type": "meta", "gpu": "Test GPU", "driver": "1.0", "commit": "abc", "date": "d"},
               {"type": "step", "setting": "timeslice", "lp": "X", "hp_records": [
                   {"workload": "A", "lat_ms": [float(i) for i in range(1, 101)]}]}]
        with open(os.path.join(self.dir, "raw.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in raw)
        self.agg = report.write(self.dir, with_plot=True)
        with open(os.path.join(self.dir, "results.md")) as f:
            self.md = f.read()

    def test_slowdowns_and_pooled_percentiles(self):
        ts = self.agg[("X", "A", "timeslice")]
        # p50/p99 come from the pooled latencies 1..100 ms, not from the row.
        self.assertEqual(ts["p50_ms"], 50.0)
        self.assertEqual(ts["p99_ms"], 99.0)
        self.assertAlmostEqual(ts["slow_p50"], 10.0)
        self.assertAlmostEqual(ts["slow_jct"], 2.0)
        self.assertAlmostEqual(self.agg[("", "A", "alone-fikit")]["slow_mean"], 5.04 / 5.0)

    def test_lp_ratios_and_harvest(self):
        a = self.agg[("X", "A", "fikit-mps")]
        self.assertAlmostEqual(a["lp_vs_alone"], 0.6)
        self.assertAlmostEqual(a["lp_vs_ts"], 6.0 / 8.0)
        # window 1 s, HP busy 100 x 2 ms = 0.2 s: idle 0.8 s; LP did 6 it = 0.6 s of its alone time.
        self.assertAlmostEqual(a["harvest"], 0.75)

    def test_chain_window_estimate_and_probe(self):
        a = self.agg[("chain-burn-50us", "chain", "timeslice")]
        # 6000 kernels in 7 s, 5 s of them outside the 2 s HP window at 1000/s alone: 1000 in 2 s.
        self.assertAlmostEqual(a["lp_win"], 500.0)
        self.assertAlmostEqual(a["lp_vs_alone"], 0.5)
        self.assertEqual(a["probe"][0], 2.14)
        self.assertIn("2.14 (time-sliced)", self.md)

    def test_targets(self):
        lines = [l for l in self.md.splitlines() if l.startswith("- ")]
        a_mps = next(l for l in lines if "fikit on MPS, A with X" in l)
        self.assertTrue(a_mps.startswith("- PASS"), a_mps)  # 1.02x p50, 1.05x p99, LP 75% of TS
        b_mps = next(l for l in lines if "fikit on MPS, B with X" in l)
        self.assertTrue(b_mps.startswith("- MISS"), b_mps)  # p50 1.10x
        ts = next(l for l in lines if "beats time-slicing, A with X" in l)
        self.assertTrue(ts.startswith("- PASS"), ts)
        over = next(l for l in lines if "overhead alone, A" in l)
        self.assertTrue(over.startswith("- PASS"), over)  # 1.008x

    def test_markdown_tables(self):
        self.assertIn("GPU: Test GPU; driver 1.0", self.md)
        self.assertIn("## Pair: LP X", self.md)
        self.assertIn("| A | time-slice | 1 | 50.00 | 99.00 |", self.md)
        self.assertIn("| r0-mps-X | A | error | boom |", self.md)
        for line in self.md.splitlines():
            if line.startswith("| A | fikit MPS"):
                self.assertEqual(line.count("|"), 18, line)

    def test_plot(self):
        if importlib.util.find_spec("matplotlib") is None:
            self.skipTest("matplotlib is not installed")
        path = os.path.join(self.dir, "results.png")
        self.assertTrue(os.path.getsize(path) > 10000)

    def test_csv_round_trip(self):
        with open(os.path.join(self.dir, "results.csv")) as f:
            header = next(csv.reader(f))
        self.assertEqual(header, report.FIELDS)


class PlanTest(unittest.TestCase):
    def setUp(self):
        self.plan = plan.quick_plan()
        self.paths = plan.Paths(build="/b", work="/w", bench="/bench", python="py")

    def cmds(self, setting, lp="resnet50-train-b64", **kw):
        step = next(s for s in plan.steps(self.plan, 0)
                    if s.setting.name == setting and (s.lp is None or s.lp.name == lp))
        return step, plan.commands(self.plan, step, self.paths, plan.BrokerCaps(**kw))

    def test_every_setting_in_order(self):
        keys = [s.key for s in plan.steps(self.plan, 0)]
        self.assertEqual(keys[0], "r0-alone-torch")
        self.assertIn("r0-fikit-mps-chain-burn-500us", keys)
        self.assertEqual(len(keys), len(set(keys)))
        self.assertLess(keys.index("r0-lp-alone-resnet50-train-b64"),
                        keys.index("r0-timeslice-resnet50-train-b64"))

    def test_baselines_are_plain(self):
        _, c = self.cmds("timeslice")
        self.assertIsNone(c.broker)
        self.assertIsNone(c.mps_root)
        self.assertEqual(c.hp.argv[1], "/bench/hp_infer.py")
        self.assertNotIn("CUDA_MPS_PIPE_DIRECTORY", c.lp.env)
        self.assertIn("--wait-for", c.hp.argv)

    def test_mps_priority(self):
        _, c = self.cmds("mps-prio")
        self.assertEqual(c.lp.env["CUDA_MPS_CLIENT_PRIORITY"], "1")
        self.assertEqual(c.hp.env["CUDA_MPS_CLIENT_PRIORITY"], "0")
        self.assertTrue(c.mps_root)
        _, c = self.cmds("mps")
        self.assertNotIn("CUDA_MPS_CLIENT_PRIORITY", c.lp.env)

    def test_fikit_wraps_both_tenants(self):
        _, c = self.cmds("fikit-mps")
        self.assertEqual(c.hp.argv[:3], ["/b/bin/fikit-run", "--priority", "high"])
        self.assertEqual(c.lp.argv[:3], ["/b/bin/fikit-run", "--priority", "low"])
        self.assertTrue(c.mps_root)  # a broker without --substrate: this runner runs MPS
        self.assertEqual(c.broker["extra_args"], [])
        _, c = self.cmds("fikit-ts", switch_cost=True)  # ... and is told the switch-back cost
        self.assertEqual(c.broker["extra_args"], ["--switch-cost-us", "210"])
        _, c = self.cmds("fikit-mps", substrate=True, switch_cost=True, mps_by_broker=True)
        self.assertIsNone(c.mps_root)
        self.assertNotIn("CUDA_MPS_PIPE_DIRECTORY", c.hp.env)
        self.assertEqual(c.broker["extra_args"], ["--substrate", "mps"])
        _, c = self.cmds("fikit-ts", substrate=True, switch_cost=True)  # it measures the cost
        self.assertEqual(c.broker["extra_args"], ["--substrate", "timeslice"])

    def test_outputs_dumped_once_then_compared(self):
        _, c = self.cmds("alone")
        self.assertIn("--dump-dir", c.hp.argv)
        self.assertIn("--gpu-busy-requests", c.hp.argv)
        _, c = self.cmds("alone-fikit")
        self.assertIn("--compare-dir", c.hp.argv)
        self.assertNotIn("--gpu-busy-requests", c.hp.argv)

    def test_chain_commands(self):
        _, c = self.cmds("timeslice", lp="chain-burn-500us")
        self.assertEqual(c.hp.argv[:2], ["/b/bin/fikit-chain", "hp"])
        self.assertIn("500", c.lp.argv)
        self.assertIsNone(c.lp_ready)

    def test_clean_env(self):
        os.environ["LD_PRELOAD"] = "x.so"
        os.environ["CUDA_MPS_PIPE_DIRECTORY"] = "/x"
        try:
            env = execute.clean_env()
        finally:
            del os.environ["LD_PRELOAD"], os.environ["CUDA_MPS_PIPE_DIRECTORY"]
        self.assertNotIn("LD_PRELOAD", env)
        self.assertNotIn("CUDA_MPS_PIPE_DIRECTORY", env)

    def test_parse_chain_output(self):
        kv = execute.parse_kv("mode=hp requests=200 kernels=10 kernel_us=200 gap_us=100 "
                              "request_gap_us=2000 sync=stream jct_ms=1000.5 mean_us=3050.0 "
                              "p50_us=3000.0 p90_us=3500.0 p99_us=3900.0 max_us=4000.0 ideal_us=2900.0\n")
        self.assertAlmostEqual(execute.kv_ms(kv, "mean"), 3.05)
        self.assertAlmostEqual(execute.kv_ms(kv, "jct"), 1000.5)
        kv = execute.parse_kv("mode=lp kernels=5000 kernel_us=50 batch=4 elapsed_ms=7001.5 busy=0.357\n")
        self.assertAlmostEqual(execute.kv_seconds(kv, 7.0), 7.0015)
        self.assertAlmostEqual(execute.kv_ms(execute.parse_kv("p99=1500"), "p99"), 1.5)


class CampaignPlanTest(unittest.TestCase):
    """The settings and plan options issue 17's calls rest on: budgets, levers, arrivals, repeats."""

    def setUp(self):
        self.plan = plan.quick_plan()
        self.plan.hp_sets = self.plan.hp_sets[:1]
        self.plan.lps = self.plan.lps[:1]
        self.paths = plan.Paths(build="/b", work="/w", bench="/bench", python="py")

    def step(self, setting, rep=0):
        self.plan.settings = [setting] if setting not in self.plan.settings else self.plan.settings
        return next(s for s in plan.steps(self.plan, rep) if s.setting.name == setting)

    def test_budget_goes_to_the_broker(self):
        caps = plan.BrokerCaps(substrate=True, hp_budget=True, mps_by_broker=True)
        c = plan.commands(self.plan, self.step("fikit-mps-b1.05"), self.paths, caps)
        self.assertEqual(c.broker["extra_args"][-2:], ["--hp-budget", "p99=1.05"])
        self.assertEqual(plan.SETTINGS["fikit-mps-b1.05"].needs, "hp_budget")

    def test_budget_settings_fall_back_without_the_flag(self):
        import run_bench
        self.plan.settings = ["alone", "fikit-mps-b1.10", "fikit-mps-b1.05"]
        note = run_bench.budget_fallback(self.plan, plan.BrokerCaps())
        self.assertIn("--hp-budget", note)
        self.assertEqual(self.plan.settings, ["alone", "fikit-mps", "fikit-mps-b1.10", "fikit-mps-b1.05"])
        miss = run_bench.missing_parts(self.step("fikit-mps-b1.10"), self.paths, True, plan.BrokerCaps())
        self.assertTrue(any("--hp-budget" in m for m in miss), miss)
        self.assertIsNone(run_bench.budget_fallback(self.plan, plan.BrokerCaps(hp_budget=True)))

    def test_levers_set_both_variables_for_the_lp_only(self):
        c = plan.commands(self.plan, self.step("fikit-mps-t25-p0"), self.paths, plan.BrokerCaps())
        self.assertEqual(c.lp.env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], "25")
        self.assertEqual(c.lp.env["CUDA_MPS_CLIENT_PRIORITY"], "0")  # over fikit-run's default 1
        self.assertNotIn("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", c.hp.env)
        self.assertEqual(c.lp.argv[0], "/b/bin/fikit-run")
        c = plan.commands(self.plan, self.step("mps-t100-p1"), self.paths, plan.BrokerCaps())
        self.assertIsNone(c.broker)
        self.assertEqual(c.lp.env["CUDA_MPS_CLIENT_PRIORITY"], "1")
        self.assertEqual(len([s for s in plan.SETTINGS if s.startswith(("mps-t", "fikit-mps-t"))]), 16)

    def test_both_arrivals_in_one_hp_process(self):
        self.plan.arrivals = ["exp", "fixed"]
        c = plan.commands(self.plan, self.step("alone"), self.paths, plan.BrokerCaps())
        ws = [c.hp.argv[i + 1] for i, a in enumerate(c.hp.argv) if a == "--workload"]
        self.assertEqual(ws[0], "resnet50:eager:1@exp")
        self.assertEqual(ws[-1], "bert-base:graph:8@fixed")
        self.assertEqual(len(ws), 6)

    def test_reps_and_once(self):
        self.plan.settings = ["alone", "timeslice", "fikit-ts"]
        self.plan.reps, self.plan.once = [1, 2], ("timeslice",)
        first = [s.setting.name for s in plan.steps(self.plan, 1)]
        later = [s.setting.name for s in plan.steps(self.plan, 2)]
        self.assertEqual(first, ["alone", "timeslice", "fikit-ts"])
        self.assertEqual(later, ["alone", "fikit-ts"])
        c = plan.commands(self.plan, plan.steps(self.plan, 1)[0], self.paths)
        self.assertIn("--dump-dir", c.hp.argv)  # the first repeat of this call keeps the outputs

    def test_sim_swaps_the_workloads_and_names_a_gpu_per_step(self):
        self.plan.sim = True
        c = plan.commands(self.plan, self.step("mps"), self.paths)
        self.assertEqual(c.hp.argv[1:3], ["/bench/sim_workload.py", "hp"])
        self.assertEqual(c.lp.argv[1:3], ["/bench/sim_workload.py", "lp"])
        self.assertEqual(c.env["FIKIT_SIM_MODE"], "mps")
        self.assertEqual(c.lp.env["LD_LIBRARY_PATH"], "/b/sim")
        self.assertIn("r0-mps-", c.env["FIKIT_SIM_GPU"])

    def test_report_names_and_targets_of_the_new_settings(self):
        self.assertEqual(report.SHORT["fikit-mps-b1.05"], "fikit MPS b1.05")
        self.assertEqual(report.SHORT["mps-t50-p1"], "MPS t50 p1")
        self.assertEqual(report.budget_of("fikit-mps-b1.05"), 1.05)
        agg = {("L", "H", "fikit-mps-b1.05"): {"slow_p50": 1.0, "slow_p99": 1.07, "lp_vs_ts": 0.4}}
        (ok, text), = report.targets(agg)
        self.assertFalse(ok)  # 1.07 is over its 1.05 budget
        self.assertIn("budget p99=1.05", text)


if __name__ == "__main__":
    unittest.main()
