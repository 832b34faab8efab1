#!/usr/bin/env python3
"""Stand-ins for hp_infer.py and lp_train.py on the simulated driver (`run_bench.py --sim`).

    sim_workload.py hp --workload resnet50:graph:8 ... (hp_infer.py's options)
    sim_workload.py lp --model resnet50 --mode train ... (lp_train.py's options)

They take the same options and write the same records (hp.jsonl, the LP's progress, ready and
JSON files), but instead of PyTorch they launch `burn` kernels of the simulated GPU
(tests/sim/README.md) through the driver API with ctypes, so a dry run on a machine without a GPU
or PyTorch goes through the real broker, fikit-run and libfikit.so (whose dlsym hook hands ctypes
its own cuLaunchKernel). The kernel mixes are rough shapes of the real models, not calibrations:
the numbers of a --sim run check the plumbing, never fikit. Everything here is for dry runs only.
"""

import argparse
import ctypes
import json
import os
import signal
import sys
import time
import zlib

import fikit_stats
from hp_infer import WORKLOAD_RE, gap_schedule, idle, latency_stats

# (kernels per request, us per kernel): an eager model launches many short kernels, a CUDA graph
# fewer, longer ones (the simulated driver replays no graphs for a Python caller).
HP_MIX = {("resnet50", "eager"): (60, 12.0), ("resnet50", "graph"): (20, 80.0),
          ("bert-base", "graph"): (24, 90.0), ("bert-base", "eager"): (80, 20.0),
          ("mobilenet_v3", "eager"): (40, 10.0), ("gpt2-small", "eager"): (80, 20.0),
          ("gpt2-small", "graph"): (24, 60.0)}
LP_MIX = {("resnet50", "train"): (30, 1000.0), ("bert-base", "train"): (40, 800.0),
          ("resnet50", "infer"): (20, 900.0), ("bert-base", "infer"): (20, 600.0)}


class Gpu:
    """The few driver calls a workload needs, on the device the caller names (cuda or cuda:N)."""

    def __init__(self, device):
        self.cu = ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
        index = int(device.split(":")[1]) if ":" in device else 0
        self._ck("cuInit", 0)
        dev, self.ctx = ctypes.c_int(), ctypes.c_void_p()
        self._ck("cuDeviceGet", ctypes.byref(dev), index)
        self._ck("cuDevicePrimaryCtxRetain", ctypes.byref(self.ctx), dev)
        self._ck("cuCtxSetCurrent", self.ctx)
        self.module, self.fn, self.stream = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        self._ck("cuModuleLoadData", ctypes.byref(self.module), ctypes.c_char_p(b"sim"))
        self._ck("cuModuleGetFunction", ctypes.byref(self.fn), self.module, b"burn")
        self._ck("cuStreamCreate", ctypes.byref(self.stream), 1)  # CU_STREAM_NON_BLOCKING
        self.ns, self.tag = ctypes.c_uint64(), ctypes.c_uint64()
        self.params = (ctypes.c_void_p * 2)(ctypes.addressof(self.ns), ctypes.addressof(self.tag))

    def _ck(self, name, *args):
        r = getattr(self.cu, name)(*args)
        if r != 0:
            raise RuntimeError(f"{name} failed: CUresult {r}")

    def burn(self, us, tag=0):
        self.ns.value, self.tag.value = int(us * 1000), tag
        self._ck("cuLaunchKernel", self.fn, 132, 1, 1, 1024, 1, 1, 0, self.stream, self.params, None)

    def sync(self):
        self._ck("cuStreamSynchronize", self.stream)


def hp_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--workload", action="append", required=True)
    for name, kind, default in (("--requests", int, 500), ("--warmup", int, 30), ("--gap-ms", float, 3.0),
                                ("--seed", int, 0), ("--deadline-s", float, 120.0),
                                ("--gpu-busy-requests", int, 0), ("--wait-timeout-s", float, 300.0)):
        p.add_argument(name, type=kind, default=default)
    for name in ("--gap-dist", "--wait-for", "--out-jsonl", "--device", "--dump-dir", "--compare-dir",
                 "--dtype", "--check-requests", "--waiting-file"):
        p.add_argument(name)
    return p.parse_args(argv)


def serve(gpu, spec, args, state):
    """One workload, as hp_infer.measure: warm-up, wait for the LP, the requests with their gaps."""
    arrival = spec.split("@")[1] if "@" in spec else (args.gap_dist or "exp")
    model, mode, batch = WORKLOAD_RE.match(spec.split("@")[0]).groups()
    kernels, us = HP_MIX[(model, mode)]
    us *= max(1.0, int(batch) ** 0.5 / 2)

    def request():
        for k in range(kernels):
            gpu.burn(us, k)
            if mode == "eager":
                idle(15e-6)  # Python between eager launches
        gpu.sync()

    for _ in range(args.warmup):
        request()
    if args.wait_for and not state["lp_ready"]:
        end = time.monotonic() + args.wait_timeout_s
        while not os.path.exists(args.wait_for):
            if time.monotonic() > end:
                raise TimeoutError(f"LP not ready ({args.wait_for})")
            time.sleep(0.01)
        state["lp_ready"] = True
    gaps = gap_schedule(args.requests, args.gap_ms, arrival, args.seed ^ zlib.crc32(spec.encode()))
    before, lat = fikit_stats.read(), []
    t_start = time.monotonic()
    for i in range(args.requests):
        a = time.perf_counter()
        request()
        lat.append((time.perf_counter() - a) * 1e3)
        if time.monotonic() > t_start + args.deadline_s:
            break
        if i + 1 < args.requests:
            idle(gaps[i])
    t_end = time.monotonic()
    d = fikit_stats.delta(before, fikit_stats.read())
    rec = {"type": "hp", "workload": spec, "model": model, "mode": mode, "batch": int(batch),
           "gap_ms": args.gap_ms, "gap_dist": arrival, "error": None, "device": "sim",
           "t_start": t_start, "t_end": t_end, "jct_ms": (t_end - t_start) * 1e3, "requests": len(lat),
           "truncated": len(lat) < args.requests, "lat_ms": [round(x, 4) for x in lat],
           "fikit": {"loaded": fikit_stats.loaded(), "connected": fikit_stats.connected(), "delta": d},
           "launches_per_request": d["launches"] / len(lat) if d and lat else None}
    rec.update(latency_stats(lat))
    if args.gpu_busy_requests > 0:
        rec["profile"] = {"requests": 0, "gpu_busy_ms": kernels * us / 1e3, "kernels_per_request": kernels,
                          "library_launches_per_request": None}
    return rec


def hp_main(argv):
    args = hp_args(argv)
    gpu, state, failed = Gpu(args.device or "cuda"), {"lp_ready": False}, 0
    for spec in args.workload:
        try:
            rec = serve(gpu, spec, args, state)
        except Exception as e:  # as hp_infer.py: one failed workload must not lose the others
            rec = {"type": "hp", "workload": spec, "error": f"{type(e).__name__}: {e}"}
        failed += rec["error"] is not None
        if args.out_jsonl:
            with open(args.out_jsonl, "a") as f:
                f.write(json.dumps(rec) + "\n")
        print(json.dumps({k: rec.get(k) for k in ("workload", "requests", "p50_ms", "p99_ms", "error")}),
              flush=True)
    return 1 if failed else 0


def lp_main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet50")
    p.add_argument("--mode", default="train")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--warmup-iters", type=int, default=2)
    for name in ("--batch", "--progress", "--ready", "--out-json", "--device", "--seq", "--seed"):
        p.add_argument(name)
    args = p.parse_args(argv)
    stop = {"now": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.update(now=True))
    gpu = Gpu(args.device or "cuda")
    kernels, us = LP_MIX[(args.model, args.mode)]

    def step():
        for k in range(kernels):
            gpu.burn(us, 1000 + k)
        gpu.sync()

    for _ in range(args.warmup_iters):
        step()
    if args.ready:
        open(args.ready, "w").close()
    progress = open(args.progress, "a") if args.progress else None
    t0 = t = time.monotonic()
    iters = 0
    while not stop["now"] and t < t0 + args.seconds:
        step()
        t = time.monotonic()
        iters += 1
        if progress:
            progress.write(f"{t:.6f}\n")
            progress.flush()
    rec = {"type": "lp", "model": args.model, "mode": args.mode, "iters": iters, "seconds": t - t0,
           "its_per_s": iters / (t - t0) if t > t0 else None, "device": "sim",
           # What the MPS levers would have told a real client (the simulated driver ignores them).
           "mps_env": {k: os.environ.get(k) for k in ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
                                                      "CUDA_MPS_CLIENT_PRIORITY")},
           "fikit": {"loaded": fikit_stats.loaded(), "connected": fikit_stats.connected()}}
    if args.out_json:
        with open(args.out_json, "w") as f:
            f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("hp", "lp"):
        sys.exit("usage: sim_workload.py hp|lp [hp_infer.py's or lp_train.py's options]")
    sys.exit(hp_main(sys.argv[2:]) if sys.argv[1] == "hp" else lp_main(sys.argv[2:]))
