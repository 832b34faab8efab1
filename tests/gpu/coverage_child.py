#!/usr/bin/env python3
"""PyTorch workloads for the GPU coverage test (coverage_test.py), run with and without libfikit.

    coverage_child.py OUT_DIR MODE...     MODE: eager-infer eager-train bert-eager graph triton

For each mode in turn it warms up, then runs the mode's measured region under torch.profiler and
prints one JSON line: kernels the GPU ran (profiler events of category "kernel"), their distinct
names, launches the library saw over the same region (fikit_get_stats; null without the library),
and where the outputs were saved (OUT_DIR/MODE.pt) with their SHA-256; or the error that stopped
the mode. The graph mode also reports its capture ("capture"): the library's counters over the
capture window and over a one-kernel capture measured the same way ("baseline"), and the kernel
nodes of both captured graphs where PyTorch exposes them (null otherwise, "note" says why).
Deterministic algorithms are asked for, so that runs with and without the library can be compared
bit for bit. One process runs all modes: PyTorch's start-up is paid once.
"""

import ctypes
import hashlib
import json
import os
import sys
import tempfile

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS; before torch

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "gpu"))

import fikit_stats  # noqa: E402

CU_GRAPH_NODE_TYPE_KERNEL, CU_GRAPH_NODE_TYPE_GRAPH = 0, 4  # cuda.h CUgraphNodeType
REPEATS = {"eager-infer": 5, "eager-train": 3, "bert-eager": 5, "graph": 10, "triton": 20}
EXTRA = {}  # what a builder reports besides the region: the capture's counters, Triton's reference


def eager_infer():
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None).cuda().eval()
    x = torch.randn(2, 3, 224, 224, device="cuda")

    def run():
        with torch.inference_mode():
            return m(x)
    return run


def eager_train():
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet18(weights=None).cuda().train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(8, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (8,), device="cuda")

    def run():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return torch.stack([loss.detach(), next(m.parameters()).detach().sum()])
    return run


def bert_eager():
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.BertConfig(num_hidden_layers=2)
    m = tf.BertModel(cfg).cuda().eval()
    ids = torch.randint(0, cfg.vocab_size, (4, 128), device="cuda")

    def run():
        with torch.inference_mode():
            return m(input_ids=ids).last_hidden_state
    return run


def new_graph():
    """A CUDAGraph that keeps its cudaGraph_t when this PyTorch can (keep_graph, for counting its
    kernel nodes); return (graph, kept)."""
    try:
        return torch.cuda.CUDAGraph(keep_graph=True), True
    except TypeError:  # an older PyTorch
        return torch.cuda.CUDAGraph(), False


def _driver():
    """libcuda.so.1 (already loaded by PyTorch) with the graph-inspection functions typed."""
    cu = ctypes.CDLL("libcuda.so.1")
    cu.cuGraphGetNodes.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                   ctypes.POINTER(ctypes.c_size_t)]
    cu.cuGraphNodeGetType.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    cu.cuGraphChildGraphNodeGetGraph.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    for fn in (cu.cuGraphGetNodes, cu.cuGraphNodeGetType, cu.cuGraphChildGraphNodeGetGraph):
        fn.restype = ctypes.c_int
    return cu


def _cu_check(r, call):
    if r != 0:
        raise OSError(f"{call} failed: CUresult {r}")


def count_kernel_nodes(cu, graph):
    """Kernel nodes of a CUgraph (a cudaGraph_t is one), child graphs included."""
    n = ctypes.c_size_t(0)
    _cu_check(cu.cuGraphGetNodes(graph, None, ctypes.byref(n)), "cuGraphGetNodes")
    nodes = (ctypes.c_void_p * n.value)()
    _cu_check(cu.cuGraphGetNodes(graph, nodes, ctypes.byref(n)), "cuGraphGetNodes")
    total = 0
    for node in nodes[:n.value]:
        kind = ctypes.c_int(-1)
        _cu_check(cu.cuGraphNodeGetType(node, ctypes.byref(kind)), "cuGraphNodeGetType")
        if kind.value == CU_GRAPH_NODE_TYPE_KERNEL:
            total += 1
        elif kind.value == CU_GRAPH_NODE_TYPE_GRAPH:
            child = ctypes.c_void_p()
            _cu_check(cu.cuGraphChildGraphNodeGetGraph(node, ctypes.byref(child)),
                      "cuGraphChildGraphNodeGetGraph")
            total += count_kernel_nodes(cu, child)
    return total


def capture(body):
    """Capture body() as the graph mode does (inference mode, torch.cuda.graph on its side stream)
    and instantiate it. Return (graph, body's output, the library's counters over the capture window
    (null without the library), the captured graph's kernel nodes or null, why they are null)."""
    torch.cuda.synchronize()
    before = fikit_stats.read()
    g, kept = new_graph()
    with torch.inference_mode(), torch.cuda.graph(g):
        out = body()
    torch.cuda.synchronize()
    window = fikit_stats.delta(before, fikit_stats.read())
    nodes, why = None, "this PyTorch has no CUDAGraph(keep_graph=True).raw_cuda_graph()"
    if kept and hasattr(g, "raw_cuda_graph"):
        try:
            raw = ctypes.c_void_p(int(g.raw_cuda_graph()))
            nodes, why = count_kernel_nodes(_driver(), raw), None
        except (RuntimeError, OSError, AttributeError, TypeError, ValueError) as e:
            why = f"failed to count the captured graph's kernel nodes: {type(e).__name__}: {e}"
    if kept and hasattr(g, "instantiate"):
        g.instantiate()  # capture_end left that to us; outside the window, as replay would do it
    return g, out, window, nodes, why


def graph():
    """A captured ResNet-50: the library sees one launch per replay (cuGraphLaunch).

    The capture window (counters read before torch.cuda.graph and after it) also holds launches
    PyTorch makes outside the capture itself (before cudaStreamBeginCapture or after
    cudaStreamEndCapture, e.g. the CUDA generator's seed/offset fills): the library rightly gates
    them. A one-kernel capture, measured the same way after a warm-up capture, gives their number;
    the captured graph's kernel nodes, where PyTorch exposes the graph, give the captured
    launches."""
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None).cuda().eval()
    x = torch.randn(2, 3, 224, 224, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(s):
        for _ in range(3):
            m(x)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    small = torch.ones(1024, device="cuda")
    warm = capture(lambda: small * 2)  # the first capture of the process may do one-time work
    base = capture(lambda: small * 2)
    g, out, window, nodes, why = capture(lambda: m(x))
    EXTRA["capture"] = {"window": window, "kernel_nodes": nodes, "baseline": base[2],
                        "baseline_kernel_nodes": base[3], "baseline_kernels": 1,
                        "note": why or base[4]}

    def run():
        g.replay()  # one cudaGraphLaunch; `out` is rewritten in place
        return out
    run.keep = (warm, base)  # the small graphs live as long as the mode
    return run


def triton_add():
    import triton
    import triton.language as tl

    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(x_ptr + offs, mask=mask)
        y = tl.load(y_ptr + offs, mask=mask)
        tl.store(out_ptr + offs, x + 2 * y, mask=mask)

    n = 1 << 20
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n, device="cuda", generator=g)
    y = torch.randn(n, device="cuda", generator=g)
    out = torch.empty_like(x)
    EXTRA["expected"] = (x + 2 * y).cpu()

    def run():
        add_kernel[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)
        return out
    return run


BUILDERS = {"eager-infer": eager_infer, "eager-train": eager_train, "bert-eager": bert_eager,
            "graph": graph, "triton": triton_add}


def profile(run, repeats):
    """Run the region under the profiler; return (outputs, kernel count, kernel names, stats delta)."""
    from torch.profiler import ProfilerActivity, profile as prof_ctx

    outs = []
    with prof_ctx(activities=[ProfilerActivity.CUDA]) as prof:
        before = fikit_stats.read()
        for _ in range(repeats):
            outs.append(run())
        torch.cuda.synchronize()
        after = fikit_stats.read()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        with open(f.name) as trace:
            events = json.load(trace).get("traceEvents", [])
    kernels = [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    return outs, len(kernels), sorted({e["name"] for e in kernels}), fikit_stats.delta(before, after)


def run_mode(mode, out_dir):
    """Build, warm up and profile one mode; return its JSON record."""
    EXTRA.clear()
    run = BUILDERS[mode]()
    for _ in range(2):  # warm-up: lazy initialisation, Triton's compilation
        run()
    torch.cuda.synchronize()
    outs, kernels, names, d = profile(run, REPEATS[mode])
    out = torch.stack([o.detach().float().cpu() for o in outs])
    path = os.path.join(out_dir, mode + ".pt")
    torch.save(out, path)
    fikit = {"loaded": fikit_stats.loaded(), "connected": fikit_stats.connected(), "delta": d}
    rec = {"mode": mode, "repeats": REPEATS[mode], "kernels": kernels, "distinct_kernels": len(names),
           "kernel_names": names[:50], "fikit": fikit, "capture": EXTRA.get("capture"),
           "outputs": path, "sha256": hashlib.sha256(out.numpy().tobytes()).hexdigest()}
    if mode == "triton":
        rec["triton_correct"] = bool(torch.equal(outs[-1].cpu(), EXTRA["expected"]))
    return rec


def main():
    out_dir, modes = sys.argv[1], sys.argv[2:]
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    for mode in modes:
        try:
            rec = run_mode(mode, out_dir)
        except Exception as e:  # report it and go on with the other modes
            rec = {"mode": mode, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
