#!/usr/bin/env python3
"""HP inference server loop of the GPU benchmark: a stream of requests with gaps between them.

One process serves one or more workloads in turn. A workload is MODEL:MODE:BATCH[@exp|@fixed],
for example resnet50:eager:1 or bert-base:graph:8@fixed (models: resnet50, mobilenet_v3,
bert-base, gpt2-small; modes: eager, or graph = CUDA-graph replay; the suffix overrides
--gap-dist). For each it builds the model (random weights from --seed; once for all its suffixes),
warms up, then serves --requests requests in a closed loop: copy a new input batch to the GPU, run
the model, copy the small output back (that synchronizes), then stay idle for a gap drawn from
--gap-dist with mean --gap-ms before the next request. The gap sequence depends only on the seed
and the workload, so every setting of the benchmark sees the same idle periods; a closed loop cannot
build a queue that grows without bound when the GPU is shared, so latency compares service times.

Latency is host time around one whole request (perf_counter); JCT is the time from the first
request's start to the last one's end, gaps included. Percentiles are nearest-rank.

Per workload it prints one JSON line and appends it to --out-jsonl at once (a run killed later still
leaves the workloads it finished). The record holds p50/p90/p99/mean/max, JCT, the per-request
latencies, launches seen by libfikit (fikit_get_stats; null without the library) and, with
--check-requests K, a comparison of the first K outputs with --compare-dir (or a dump to --dump-dir).
--gpu-busy-requests K profiles K more requests after the measurement (torch.profiler): GPU busy time
and kernels per request, and launches the library saw over the same requests.
"""

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import traceback
import zlib

import fikit_stats

WORKLOAD_RE = re.compile(r"^(resnet50|mobilenet_v3|bert-base|gpt2-small):(eager|graph):([1-9]\d*)$")
# A workload may name its arrival process, MODEL:MODE:BATCH@exp or @fixed (else --gap-dist): one
# process then serves the same model under both, built once.
SPEC_RE = re.compile(r"^([^@]+)(?:@(exp|fixed))?$")
GPU_EVENT_CATS = ("kernel", "gpu_memcpy", "gpu_memset")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workload", action="append", required=True, help="MODEL:MODE:BATCH (repeat)")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=30, help="requests before measuring")
    p.add_argument("--gap-ms", type=float, default=3.0, help="mean idle time between requests")
    p.add_argument("--gap-dist", choices=("exp", "fixed"), default="exp")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    p.add_argument("--seq", type=int, default=128, help="sequence length of the text models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda", help="cpu: smoke-test the script without a GPU (eager)")
    p.add_argument("--wait-for", help="start measuring once this file exists (LP ready)")
    p.add_argument("--wait-timeout-s", type=float, default=300.0)
    p.add_argument("--waiting-file", help="create this file once warmed up, before --wait-for")
    p.add_argument("--deadline-s", type=float, default=120.0, help="measurement cap per workload")
    p.add_argument("--check-requests", type=int, default=4, help="outputs kept for comparison")
    p.add_argument("--dump-dir", help="save the checked outputs here (one .pt per workload)")
    p.add_argument("--compare-dir", help="compare the checked outputs with the dumps here")
    p.add_argument("--gpu-busy-requests", type=int, default=0)
    p.add_argument("--out-jsonl", help="append one JSON record per workload")
    return p.parse_args(argv)


class Server:
    """One model ready to serve requests, eagerly or by replaying a captured CUDA graph."""

    def __init__(self, model_name, mode, batch, args):
        import torch
        import models

        self.torch, self.name, self.mode, self.device = torch, model_name, mode, args.device
        self.cuda = args.device.startswith("cuda")
        self.model = models.build(model_name, args.dtype, args.seed, args.device)
        self.inputs = models.make_inputs(model_name, batch, 8, args.seed, args.seq, args.dtype,
                                         pin=self.cuda)
        self.forward = lambda x: models.forward(model_name, self.model, x)
        self.graph = None
        if mode == "graph":
            if not self.cuda:
                raise ValueError("graph mode needs a CUDA device")
            self._capture()

    def _capture(self):
        torch = self.torch
        self.static_in = self.inputs[0].to(self.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(3):  # let lazy initialisation happen outside the capture
                self.forward(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.static_out = self.forward(self.static_in)

    def request(self, i):
        """Serve request i; return its output on the host (the copy back synchronizes)."""
        x = self.inputs[i % len(self.inputs)]
        with self.torch.inference_mode():
            if self.graph is not None:
                self.static_in.copy_(x, non_blocking=True)
                self.graph.replay()
                out = self.static_out.to("cpu")
            else:
                out = self.forward(x.to(self.device, non_blocking=True)).to("cpu")
        if self.cuda:
            self.torch.cuda.synchronize()
        return out


def gap_schedule(n, mean_ms, dist, seed):
    """Return n idle times in seconds: fixed, or exponential (Poisson arrivals) clipped to
    [0.1, 10] x mean."""
    rng = random.Random(seed)
    mean = mean_ms / 1e3
    if dist == "fixed" or mean <= 0:
        return [max(mean, 0.0)] * n
    return [min(max(rng.expovariate(1.0 / mean), 0.1 * mean), 10 * mean) for _ in range(n)]


def idle(seconds):
    """Stay idle for `seconds`: sleep most of it, spin the last millisecond (sleep overshoots)."""
    end = time.perf_counter() + seconds
    if seconds > 0.002:
        time.sleep(seconds - 0.001)
    while time.perf_counter() < end:
        pass


def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[k]


def latency_stats(lat_ms):
    s = sorted(lat_ms)
    n = len(s)
    return {
        "mean_ms": sum(s) / n if n else None,
        "p50_ms": percentile(s, 0.50),
        "p90_ms": percentile(s, 0.90),
        "p99_ms": percentile(s, 0.99),
        "max_ms": s[-1] if n else None,
    }


def wait_for(path, timeout_s):
    """Wait until `path` exists; return False on timeout."""
    end = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def _union_us(intervals):
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += cur_end - cur_start
    return total


def profile_requests(server, count):
    """Profile `count` requests: GPU busy ms and kernels per request, and the library's launches."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    before = fikit_stats.read()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(count):
            server.request(i)
    after = fikit_stats.read()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        with open(f.name) as trace:
            events = json.load(trace).get("traceEvents", [])
    gpu = [e for e in events if e.get("ph") == "X" and e.get("cat") in GPU_EVENT_CATS]
    kernels = sum(1 for e in gpu if e["cat"] == "kernel")
    busy_us = _union_us([(e["ts"], e["ts"] + e.get("dur", 0)) for e in gpu])
    d = fikit_stats.delta(before, after)
    torch.cuda.synchronize()
    return {
        "requests": count,
        "gpu_busy_ms": busy_us / 1e3 / count,
        "kernels_per_request": kernels / count,
        "library_launches_per_request": d["launches"] / count if d else None,
    }


def _dump_path(directory, spec):
    return os.path.join(directory, spec.replace(":", "_") + ".pt")


def compare_outputs(outs, ref_path, dtype):
    """Compare outputs with a dump of the same workload; exact, or within fp tolerance."""
    import torch

    ref = torch.load(ref_path)
    if len(ref) != len(outs):
        return {"checked": len(outs), "match": False, "note": f"reference has {len(ref)} outputs"}
    exact = all(torch.equal(a, b) for a, b in zip(outs, ref))
    a = torch.cat([o.double().flatten() for o in outs])
    b = torch.cat([o.double().flatten() for o in ref])
    rel = float((a - b).norm() / max(b.norm(), 1e-30))
    tol = 1e-5 if dtype == "fp32" else 2e-3
    finite = bool(torch.isfinite(a).all())
    # Outputs that are all zero (or not finite) would match vacuously: they do not count as a match.
    informative = finite and bool((b != 0).any())
    return {
        "checked": len(outs),
        "exact": exact,
        "max_abs": float((a - b).abs().max()),
        "rel": rel,
        "norm": float(b.norm()),
        "finite": finite,
        "match": informative and (exact or rel <= tol),
    }


def measure(server, spec, args, state):
    """Warm up, wait for the LP (once per process), serve the requests; return the record's core."""
    for i in range(args.warmup):
        server.request(i)
    t_waiting = time.monotonic()
    if args.waiting_file and not state["lp_ready"]:
        open(args.waiting_file, "w").close()
    if args.wait_for and not state["lp_ready"]:
        if not wait_for(args.wait_for, args.wait_timeout_s):
            raise TimeoutError(f"LP not ready after {args.wait_timeout_s:.0f} s ({args.wait_for})")
        state["lp_ready"] = True
    # Seeded by the model, not the arrival suffix: the Poisson gaps of earlier runs, again.
    seed = args.seed ^ zlib.crc32(SPEC_RE.match(spec).group(1).encode())
    gaps = gap_schedule(args.requests, args.gap_ms, arrival(spec, args), seed)
    lat, outs, truncated = [], [], False
    before = fikit_stats.read()
    t_start = time.monotonic()
    deadline = t_start + args.deadline_s
    for i in range(args.requests):
        a = time.perf_counter()
        out = server.request(i)
        lat.append((time.perf_counter() - a) * 1e3)
        if i < args.check_requests:
            outs.append(out)
        if time.monotonic() > deadline:
            truncated = True
            break
        if i + 1 < args.requests:
            idle(gaps[i])
    t_end = time.monotonic()
    d = fikit_stats.delta(before, fikit_stats.read())
    rec = {"t_waiting": t_waiting, "t_start": t_start, "t_end": t_end, "jct_ms": (t_end - t_start) * 1e3,
           "requests": len(lat), "truncated": truncated, "lat_ms": [round(x, 4) for x in lat]}
    rec.update(latency_stats(lat))
    rec["fikit"] = {"loaded": fikit_stats.loaded(), "connected": fikit_stats.connected(), "delta": d}
    rec["launches_per_request"] = d["launches"] / len(lat) if d and lat else None
    return rec, outs


def arrival(spec, args):
    """The workload's arrival process: its @suffix, else --gap-dist."""
    return SPEC_RE.match(spec).group(2) or args.gap_dist


def valid_spec(spec):
    m = SPEC_RE.match(spec)
    return bool(m and WORKLOAD_RE.match(m.group(1)))


def run_workload(spec, args, state):
    """Serve one workload; return its JSON record (with "error" set if it failed). The server of
    the same model, mode and batch is kept in state["servers"] for the next arrival process."""
    base = SPEC_RE.match(spec).group(1)
    model_name, mode, batch = WORKLOAD_RE.match(base).groups()
    rec = {"type": "hp", "workload": spec, "model": model_name, "mode": mode, "batch": int(batch),
           "dtype": args.dtype, "gap_ms": args.gap_ms, "gap_dist": arrival(spec, args), "error": None}
    server = None
    last = state["last_use"].get(base) == spec
    try:
        import torch

        rec.update(torch=torch.__version__, cuda=torch.version.cuda, device=args.device,
                   gpu=torch.cuda.get_device_name() if args.device.startswith("cuda") else None)
        torch.backends.cudnn.benchmark = False  # the same algorithms in every run: comparable outputs
        t0 = time.monotonic()
        server = state["servers"].pop(base, None) or Server(model_name, mode, int(batch), args)
        rec["build_s"] = time.monotonic() - t0
        core, outs = measure(server, spec, args, state)
        rec.update(core)
        if args.dump_dir and outs:
            os.makedirs(args.dump_dir, exist_ok=True)
            torch.save(outs, _dump_path(args.dump_dir, spec))
        ref = _dump_path(args.compare_dir, spec) if args.compare_dir else None
        if ref and outs and os.path.exists(ref):
            rec["outputs"] = compare_outputs(outs, ref, args.dtype)
        if args.gpu_busy_requests > 0 and server.cuda:
            rec["profile"] = profile_requests(server, args.gpu_busy_requests)
    except Exception as e:  # one failed workload must not lose the others
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc()[-4000:]
    finally:
        if server is not None and not last and rec["error"] is None:
            state["servers"][base] = server
        del server
        try:
            import torch

            if torch.cuda.is_initialized():
                torch.cuda.empty_cache()
        except Exception:
            pass
    return rec


def main():
    args = parse_args()
    for spec in args.workload:
        if not valid_spec(spec):
            sys.exit(f"bad workload {spec!r}: want MODEL:eager|graph:BATCH[@exp|@fixed], "
                     "e.g. resnet50:graph:8")
    # A server is kept until the last workload that uses its model, then freed.
    last_use = {SPEC_RE.match(s).group(1): s for s in args.workload}
    state = {"lp_ready": False, "servers": {}, "last_use": last_use}
    failed = 0
    for spec in args.workload:
        rec = run_workload(spec, args, state)
        failed += rec["error"] is not None
        line = json.dumps(rec)
        if args.out_jsonl:
            with open(args.out_jsonl, "a") as f:
                f.write(line + "\n")
        short = {k: rec.get(k) for k in ("workload", "requests", "p50_ms", "p99_ms", "jct_ms", "error")}
        print(json.dumps(short), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
