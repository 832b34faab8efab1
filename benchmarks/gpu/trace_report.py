#!/usr/bin/env python3
"""Summarize a fikit decision trace (FIKIT_TRACE=file on the broker): where the time of the HP
task's idle gaps went for the LP task.

Within the gaps (an HP tenant drained, until it submitted again), each instant is one of:
  LP on GPU       a granted LP launch was issued and not yet seen complete
  LP waiting: R   the LP's oldest request was waiting for a grant, last denied for reason R
  LP not asking   neither: the LP task was on its CPU (Python, launch overhead) or synchronizing
Also: grant-to-issue delay, request-to-grant wait, grants per gap, and the denials by reason.

Usage: trace_report.py TRACE.csv [--md OUT.md]
Tenants with grants are LP; the others are HP. Times are the broker's CLOCK_MONOTONIC.
"""
import argparse
import bisect
import collections
import sys

from report import nearest_rank

VERDICTS = {0: "granted", 1: "granted to measure", 2: "granted risky", 3: "no room",
            4: "needs a long gap (unknown kernel)", 5: "granted within the HP budget",
            6: "launched in a burst", 100: "max LP in flight",
            101: "a level above busy"}


def load(path):
    """The rows in record order: the order the policy saw things in. A submission's time is the
    client's, a grant's the broker's, so sorting by time can put a grant before its request."""
    rows, header = [], ""
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                header = line.strip("# \n")
                continue
            if line.startswith("t_ns"):
                continue
            t, kind, tenant, key, verdict, a, b = line.rstrip("\n").split(",")
            rows.append((int(t), kind, int(tenant), key, int(verdict), int(a), int(b)))
    return rows, header


def quantiles(xs, qs=(0.5, 0.9, 0.99)):
    """Nearest-rank quantiles of durations in ns, as us strings."""
    xs = sorted(xs)
    return [f"{nearest_rank(xs, q) / 1e3:.1f}" if xs else "—" for q in qs]


def hp_gaps(rows, hp):
    gaps, open_at = [], {}
    for t, kind, tenant, *_ in rows:
        if tenant not in hp:
            continue
        if kind == "I" and tenant not in open_at:
            open_at[tenant] = t
        elif kind == "S" and tenant in open_at:
            gaps.append((open_at.pop(tenant), t))
    # With several HP tenants the LP may fill only while all are idle: not handled (the benchmark
    # pairs have one HP); the report says so.
    return gaps if len(hp) == 1 else []


def lp_segments(rows, lp):
    """Waiting segments (start, end, reason) of the LP's oldest request, GPU intervals, and the
    per-grant numbers."""
    waits, busy, grant_delay, req_wait, grant_t = [], [], [], [], []
    queue = collections.deque()  # request times
    reason, since = None, 0
    grants_by_verdict, denies_by_verdict = collections.Counter(), collections.Counter()
    last_grant = collections.deque()
    for t, kind, tenant, _key, verdict, a, b in rows:
        if tenant != lp:
            continue
        if kind == "S":
            queue.append(t)
            if len(queue) == 1:
                reason, since = "undecided", t
        elif kind == "D" and queue:
            denies_by_verdict[verdict] += 1
            waits.append((since, t, reason))
            reason, since = VERDICTS.get(verdict, str(verdict)), t
        elif kind == "G":
            grants_by_verdict[verdict] += 1
            grant_t.append(t)
            if queue:
                req = queue.popleft()
                req_wait.append(max(0, t - req))  # a grant stamped before it: none
                waits.append((since, t, reason))
                reason, since = ("undecided", max(t, queue[0])) if queue else (None, 0)
            last_grant.append(t)
        elif kind == "C":
            busy.append((a, b))
            if last_grant:
                g = last_grant.popleft()
                if a >= g:
                    grant_delay.append(a - g)
    return waits, busy, grant_delay, req_wait, grant_t, grants_by_verdict, denies_by_verdict


def sweep(gaps, busy, waits):
    """Time inside the gaps, by LP state."""
    ev = []
    for s, e in gaps:
        ev += [(s, 0, +1), (e, 0, -1)]
    for s, e in busy:
        if e > s:
            ev += [(s, 1, +1), (e, 1, -1)]
    for s, e, r in waits:
        if e > s and r:
            ev += [(s, 2, r), (e, 2, None)]
    ev.sort(key=lambda x: (x[0], 0 if x[2] in (-1, None) else 1))
    acc = collections.Counter()
    in_gap = busy_n = 0
    reason = None
    last = ev[0][0] if ev else 0
    for t, what, v in ev:
        if in_gap > 0 and t > last:
            if busy_n > 0:
                state = "LP on GPU"
            elif reason:
                state = "LP waiting: " + reason
            else:
                state = "LP not asking"
            acc[state] += t - last
        last = t
        if what == 0:
            in_gap += v
        elif what == 1:
            busy_n += v
        else:
            reason = v
    return acc


def report(path):
    rows, header = load(path)
    granted = {r[2] for r in rows if r[1] == "G"}
    tenants = {r[2] for r in rows}
    hp = tenants - granted
    out = [f"# Decision trace {path}", "", f"- {header}", f"- rows: {len(rows)}; HP tenants "
           f"{sorted(hp)}; LP tenants {sorted(granted)}"]
    if not rows or len(granted) != 1 or not hp:
        out.append("- needs one LP tenant and at least one HP tenant: nothing more to say")
        return "\n".join(out)
    lp = next(iter(granted))
    gaps = hp_gaps(sorted(rows, key=lambda r: r[0]), hp)
    if not gaps:
        out.append("- no HP gaps (or several HP tenants: not handled)")
        return "\n".join(out)
    # Only the span where the HP was serving: from its first to its last gap.
    t0, t1 = gaps[0][0], gaps[-1][1]
    waits, busy, delay, req_wait, grant_t, gv, dv = lp_segments(rows, lp)
    acc = sweep(gaps, busy, waits)
    total = sum(e - s for s, e in gaps)
    lens = [e - s for s, e in gaps]
    out += [f"- HP gaps: {len(gaps)}, {total / 1e6:.1f} ms in all over {(t1 - t0) / 1e6:.1f} ms "
            f"(gap p50/p90/p99 us: {'/'.join(quantiles(lens))})", "",
            "| state within HP gaps | ms | share |", "|---|---|---|"]
    for state, ns in acc.most_common():
        out.append(f"| {state} | {ns / 1e6:.1f} | {100 * ns / total:.1f}% |")
    # Grants per gap, and how long into a gap the first one came.
    starts = [s for s, _ in gaps]
    per_gap = collections.Counter()
    first = {}
    for t in grant_t:
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < gaps[i][1]:
            per_gap[i] += 1
            first.setdefault(i, t - gaps[i][0])
    counts = sorted(per_gap.values())
    out += ["", f"- gaps with a grant: {len(counts)} of {len(gaps)}; grants per such gap p50/p90: "
            f"{'/'.join(str(nearest_rank(counts, q)) for q in (0.5, 0.9)) if counts else '—'}",
            f"- first grant into a gap, after us p50/p90/p99: {'/'.join(quantiles(list(first.values())))}",
            f"- LP request to grant, us p50/p90/p99: {'/'.join(quantiles(req_wait))}",
            f"- LP grant to issue, us p50/p90/p99: {'/'.join(quantiles(delay))}",
            f"- LP issue to seen done, us p50/p90/p99: "
            f"{'/'.join(quantiles([b - a for a, b in busy if b > a]))}",
            "- grants: " + ", ".join(f"{VERDICTS.get(k, k)} {n}" for k, n in gv.most_common()),
            "- denials (one per request and reason): " +
            ", ".join(f"{VERDICTS.get(k, k)} {n}" for k, n in dv.most_common())]
    out.append(collisions(gaps, busy))
    return "\n".join(out)


def collisions(gaps, busy):
    """How often the HP came back to LP work still on the GPU (granted into the gap it ended, or
    earlier), and how long that work ran on past its return."""
    busy = sorted((a, b) for a, b in busy if b > a)
    starts = [a for a, _ in busy]
    over = []
    for _, end in gaps:
        i = bisect.bisect_left(starts, end)
        # Launches issued before the return that were seen done after it (LP launches queue on
        # their stream: the last ones issued end last, so a window of recent ones suffices).
        late = [b - end for _, b in busy[max(0, i - 256):i] if b > end]
        if late:
            over.append(max(late))
    share = 100 * len(over) / len(gaps) if gaps else 0
    return (f"- HP returns to LP work still running: {len(over)} of {len(gaps)} ({share:.0f}%); "
            f"it ran on for us p50/p90/p99: {'/'.join(quantiles(over))}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--md", help="also write the report here")
    args = ap.parse_args()
    text = report(args.trace)
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
