#!/usr/bin/env python3
"""LP workload of the GPU benchmark: training or large-batch inference for a while; iterations/s.

Workloads (--model, --mode):
  resnet50 train   SGD with momentum, fp32, batch 64 by default (as in the probe, shared/probe)
  bert-base train  AdamW, bf16 autocast, batch 32 x 128 tokens, a 2-class head on [CLS]
  resnet50 infer   fp16 forward passes, batch 256 by default
  bert-base infer  fp16 forward passes, batch 64 x 128 tokens
Each iteration ends with torch.cuda.synchronize(), and its completion time (time.monotonic, the
clock every benchmark process shares) is appended to --progress, flushed every half second, so the
runner can count the iterations done inside any window (an HP workload's measurement). The sync
per iteration costs the LP about one launch latency per iteration, in every setting alike. After
--warmup-iters iterations the file --ready is created. The loop stops after --seconds or on
SIGTERM/SIGINT, then prints one JSON line (also written to --out-json).
"""

import argparse
import json
import signal
import sys
import time

import fikit_stats

DEFAULT_BATCH = {("resnet50", "train"): 64, ("bert-base", "train"): 32,
                 ("resnet50", "infer"): 256, ("bert-base", "infer"): 64}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=("resnet50", "bert-base"), default="resnet50")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--batch", type=int, help="default: 64/32 (train), 256/64 (infer)")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    p.add_argument("--warmup-iters", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cuda", help="cpu: smoke-test the script without a GPU")
    p.add_argument("--progress", help="append each iteration's completion time here")
    p.add_argument("--ready", help="create this file once warmed up")
    p.add_argument("--out-json", help="write the summary here too")
    return p.parse_args(argv)


def make_step(model_name, mode, batch, seq, seed, device="cuda"):
    """Return a function that runs one iteration (one optimizer step or one forward pass)."""
    import torch
    import torch.nn.functional as F

    import models

    g = torch.Generator(device=device).manual_seed(seed)
    if model_name == "resnet50":
        x = torch.randn(batch, 3, 224, 224, device=device, generator=g)
    else:
        x = torch.randint(0, 30522, (batch, seq), device=device, generator=g)
    if mode == "infer":
        model = models.build(model_name, "fp16", seed, device)
        x = x.half() if model_name == "resnet50" else x

        def infer():
            with torch.inference_mode():
                models.forward(model_name, model, x)

        return infer
    model = models.build(model_name, "fp32", seed, device, train=True)
    if model_name == "resnet50":
        y = torch.randint(0, 1000, (batch,), device=device, generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = lambda: F.cross_entropy(model(x), y)  # noqa: E731
    else:
        head = torch.nn.Linear(768, 2).to(device)
        y = torch.randint(0, 2, (batch,), device=device, generator=g)
        opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-4)

        def loss_fn():
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
                return F.cross_entropy(head(models.forward(model_name, model, x)), y)

    def train():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    return train


def run(args, step, stop):
    """Iterate until `stop` is set or time is up; return (iterations, first and last completion)."""
    import torch

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    progress = open(args.progress, "a") if args.progress else None
    for _ in range(args.warmup_iters):
        step()
    sync()
    if args.ready:
        open(args.ready, "w").close()
    t_first = time.monotonic()
    end, flushed, iters, t = t_first + args.seconds, t_first, 0, t_first
    while not stop["now"] and t < end:
        step()
        sync()
        t = time.monotonic()
        iters += 1
        if progress:
            progress.write(f"{t:.6f}\n")
            if t - flushed > 0.5:
                progress.flush()
                flushed = t
    if progress:
        progress.close()
    return iters, t_first, t


def main():
    args = parse_args()
    batch = args.batch or DEFAULT_BATCH[(args.model, args.mode)]
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    import torch

    torch.backends.cudnn.benchmark = False
    step = make_step(args.model, args.mode, batch, args.seq, args.seed, args.device)
    before = fikit_stats.read()
    iters, t0, t1 = run(args, step, stop)
    rec = {"type": "lp", "model": args.model, "mode": args.mode, "batch": batch, "iters": iters,
           "seconds": t1 - t0, "its_per_s": iters / (t1 - t0) if t1 > t0 else None,
           "fikit": {"loaded": fikit_stats.loaded(), "connected": fikit_stats.connected(),
                     "delta": fikit_stats.delta(before, fikit_stats.read())}}
    line = json.dumps(rec)
    if args.out_json:
        with open(args.out_json, "w") as f:
            f.write(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
