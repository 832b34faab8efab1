#!/usr/bin/env python3
"""CPU test of benchmarks/gpu/idle_accuracy.py's bookkeeping: the window between two status
snapshots (hp_idle), the start-signal gap taken out, histogram percentiles, the table, --dry-run.
The numbers are made up here (test data, never results).

Run: python3 tests/gpu/idle_accuracy_test.py   (exit 0 pass, 1 fail)
"""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu")
sys.path.insert(0, BENCH)

import idle_accuracy as ia  # noqa: E402

EDGES = [0.0] + [0.5 * 2 ** ((i - 1) / 4) for i in range(1, 77)]  # as the broker reports them


def snapshot(**kw):
    s = {k: 0 for k in ia.COUNTS}
    s.update(late_hist=[0] * 78, late_hist_edges_us=EDGES, marker_every=1)
    s.update(kw)
    return s


class IdleAccuracyTest(unittest.TestCase):
    def test_percentile_is_the_bucket_upper_edge(self):
        counts = [0] * 78
        counts[5], counts[9] = 3, 1  # three below edge 5, one below edge 9
        self.assertEqual(ia.hist_percentile(counts, EDGES, 0.5), EDGES[5])
        self.assertEqual(ia.hist_percentile(counts, EDGES, 0.99), EDGES[9])
        self.assertEqual(ia.hist_percentile([1] + [0] * 77, EDGES, 0.5), 0.0)  # early: edge 0
        self.assertIsNone(ia.hist_percentile([0] * 78, EDGES, 0.5))

    def test_window_subtracts_the_snapshot_and_the_start_signal_gap(self):
        hist_a, hist_b = [0] * 78, [0] * 78
        hist_a[3], hist_b[3], hist_b[20] = 2, 2, 10
        before = snapshot(gaps=5, idle_ms=10.0, drained_gaps=4, recognized_ms=8.0, long_gaps=2,
                          long_idle_ms=9.0, long_drained_gaps=2, long_recognized_ms=7.5, late_hist=hist_a)
        after = snapshot(gaps=16, idle_ms=60.0, drained_gaps=15, recognized_ms=48.0, long_gaps=8,
                         long_idle_ms=55.0, long_drained_gaps=8, long_recognized_ms=45.5, late_hist=hist_b)
        w = ia.window(before, after, wait_ms=20.0)
        self.assertEqual(w["gaps"], 10)
        self.assertEqual(w["drained_gaps"], 10)
        self.assertAlmostEqual(w["idle_ms"], 30.0)
        self.assertAlmostEqual(w["recognized_ms"], 20.0)
        self.assertAlmostEqual(w["recognized_share"], 20.0 / 30.0)
        self.assertAlmostEqual(w["long_recognized_share"], 18.0 / 26.0)
        self.assertEqual(w["late_p50_us"], EDGES[20])  # only the window's ten gaps count
        self.assertEqual(ia.window(None, after)["gaps"], 16)

    def test_table_pairs_markers_with_the_plain_run(self):
        recs = [{"workload": "w", "marker_every": 1, "latency": {"p50_ms": 2.2, "mean_ms": 2.2, "requests": 9},
                 "hp_idle": ia.window(None, snapshot(gaps=3, idle_ms=3.0, drained_gaps=3,
                                                     recognized_ms=3.0))},
                {"workload": "w", "marker_every": 0, "latency": {"p50_ms": 2.0, "mean_ms": 2.0}}]
        t = ia.table(recs)
        self.assertIn("| w | 9 | 3 | 3.0 | 100.0% | 3 |", t)
        self.assertIn("1.100x", t)

    def test_dry_run_lists_both_brokers_per_workload(self):
        r = subprocess.run([sys.executable, os.path.join(BENCH, "idle_accuracy.py"), "--dry-run",
                            "--build", "/nonexistent", "--workloads", "resnet50:eager:1"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("--hp-marker-every 1"), 2)  # the model and the chain
        self.assertEqual(r.stdout.count("--hp-marker-every 0"), 2)
        self.assertIn("--waiting-file", r.stdout)


if __name__ == "__main__":
    unittest.main()
