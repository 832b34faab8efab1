#!/usr/bin/env python3
"""CPU test of benchmarks/gpu/trace_report.py on a small made-up decision trace (test data, never
results): where the time of an HP gap went for the LP.

Run: python3 tests/gpu/trace_report_test.py   (exit 0 pass, 1 fail)
"""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu"))

import trace_report  # noqa: E402

US = 1000
MS = 1000 * US
HP, LP = 2, 1

# In record order, as the policy writes it. The HP (tenant 2) drains at 1 ms and submits at 5 ms:
# one 4 ms gap. The LP (tenant 1) asks twice in it. Its first grant carries the scheduler's time of
# that iteration, 10 us before the client's time of the request it grants: sorted by time, the grant
# would come first and every later request would seem to wait on the one before.
ROWS = [
    (1 * MS, "I", HP, 0, 0, 0),
    (1100 * US, "S", LP, 0, 0, 0),
    (1090 * US, "G", LP, 0, 0, 0),
    (2 * MS, "C", LP, 0, 1200 * US, 2 * MS),
    (3 * MS, "S", LP, 0, 1, 0),
    (3 * MS + 200, "D", LP, 100, 0, 0),  # max LP in flight
    (3100 * US, "G", LP, 0, 0, 0),
    (3500 * US, "C", LP, 0, 3100 * US, 3500 * US),
    (5 * MS, "S", HP, 0, 0, 0),
]


def write_trace(d, rows):
    path = os.path.join(d, "trace.csv")
    with open(path, "w") as f:
        f.write("# fikit decision trace; records dropped (capacity reached): 0\n")
        f.write("t_ns,kind,tenant,key,verdict,a,b\n")
        for t, kind, tenant, verdict, a, b in rows:
            f.write(f"{t},{kind},{tenant},abc,{verdict},{a},{b}\n")
    return path


def states(md):
    """{state: ms} from the report's table."""
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("LP "):
            out[cells[0]] = float(cells[1])
    return out


class TraceReportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.md = trace_report.report(write_trace(self.tmp.name, ROWS))

    def tearDown(self):
        self.tmp.cleanup()

    def test_gap_and_tenants(self):
        self.assertIn("HP tenants [2]; LP tenants [1]", self.md)
        self.assertIn("HP gaps: 1, 4.0 ms in all", self.md)

    def test_time_by_state_follows_record_order(self):
        s = states(self.md)
        # (the table has 0.1 ms steps)
        self.assertAlmostEqual(s["LP on GPU"], 0.8 + 0.4, places=3)
        self.assertAlmostEqual(s["LP waiting: max LP in flight"], 0.1, places=3)
        self.assertLess(s.get("LP waiting: undecided", 0), 0.001)  # 200 ns before the deny
        self.assertAlmostEqual(sum(s.values()), 4.0, places=3)
        self.assertAlmostEqual(s["LP not asking"], 4.0 - 1.2 - 0.1, places=3)

    def test_request_to_grant_counts_a_stale_grant_time_as_no_wait(self):
        # Waits: 0 (the grant stamped before its request) and 100 us; nearest-rank p50 is 0.
        self.assertIn("LP request to grant, us p50/p90/p99: 0.0/100.0/100.0", self.md)

    def test_denials_and_grants_counted(self):
        self.assertIn("grants: granted 2", self.md)
        self.assertIn("denials (one per request and reason): max LP in flight 1", self.md)


if __name__ == "__main__":
    unittest.main()
