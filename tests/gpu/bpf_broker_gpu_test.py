#!/usr/bin/env python3
"""GPU test: the broker's eBPF GPU-driver observer on a real GPU, through `fikit-broker status`.

    bpf_broker_gpu_test.py [--build BUILD] [--policy P] [--swap] [--no-audit]
                           [--substrate timeslice|mps] [--selftest]
    (exit 0 pass, 1 fail, 77 skip: no GPU, or not root: BPF needs it)

A private broker starts with its observer (the default) and --audit-launches. Two programs run
side by side and stop at "allocated" and "freed" (stdin handshakes):
- a CUDA program (tests/fikit_bpf_gpu_workload lifecycle: 256 MiB device memory, 3 streams, a
  kernel) as a tenant through fikit-run;
- a PyTorch program (512 MiB tensor, kernels, 2 streams) unregistered: an unmanaged tenant.
  Without PyTorch the CUDA program runs unregistered in its place.
(--swap: PyTorch as the tenant, the CUDA program unregistered.)
The broker runs with --substrate timeslice, so that each program owns its GPU objects. With
--substrate mps the tenant joins the MPS server the broker runs: then the checks are that the server
is listed as kind "mps-server" and is not taken for an unmanaged process, that the tenant's memory
is counted (at the tenant, or at the server if the driver allocates it there), and that the tenant
is no unmanaged process either (the unregistered program does not join MPS: checked as above).
Checks, from `status --json`: each program's contexts, channels and device memory while
allocated (and less after the frees); the tenant is kind "tenant" with its tenant id and is not
unmanaged; the unregistered one is kind "unmanaged", counted, named in the status table and
warned about in the log, and (audit mode) its kernel launches are counted; each program's device
memory and contexts are attributed to GPU 0 (status `gpu.processes[].gpus`, the GPU's index and
UUID from the driver's list; not with --selftest, whose test device is no GPU); after they exit, both
are listed as exited with exit code 0 and their peak memory, the tenant is reaped, no event was
lost and the BPF programs met no impossible state. Prints the status table for the record.

--selftest runs the same checks without a GPU (root only; ctest label bpf): the observer watches a
test device instead (--bpf-test-device) and both programs are bpf_fake_gpu_program.py, the tenant
registering by hand; no audit (there is no libcuda to probe).
"""

import argparse
import os
import select
import stat
import subprocess
import sys
import tempfile
import time

from gpu_harness import SKIP, Build, skip_without_gpu

import fikit_proc  # noqa: E402 (gpu_harness put benchmarks/gpu on the path)

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
DEADLINE_S = 60
failures = []

TORCH_SCRIPT = """
import sys, torch
x = torch.empty(512 << 20, dtype=torch.uint8, device='cuda')
s = [torch.cuda.Stream() for _ in range(2)]
for _ in range(10):
    x.fill_(1)
torch.cuda.synchronize()
print('allocated', flush=True); sys.stdin.readline()
del x, s; torch.cuda.synchronize(); torch.cuda.empty_cache()
print('freed', flush=True); sys.stdin.readline()
"""


def check(ok, what):
    print(f"{'ok' if ok else 'FAIL'}: {what}", flush=True)
    if not ok:
        failures.append(what)
    return ok


class Program:
    """A GPU program stepped over stdin/stdout ("allocated", "freed", then exit)."""

    def __init__(self, label, argv, bytes_):
        self.label, self.bytes = label, bytes_
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = self.proc.pid

    def expect(self, line):
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                got = self.proc.stdout.readline()
                if not got:
                    break
                if got.strip() == line:
                    return True
                print(f"{self.label}: {got.rstrip()}")
        return check(False, f"{self.label} (pid {self.pid}) never printed '{line}' "
                            f"(exit {self.proc.poll()})")

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self):
        self.go()
        try:
            return self.proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def gpu_entry(status, pid):
    for p in ((status or {}).get("gpu") or {}).get("processes") or []:
        if p["pid"] == pid:
            return p
    return None


def tenant_entry(status, pid):
    for t in (status or {}).get("tenants") or []:
        if t["pid"] == pid:
            return t
    return None


def wait_entry(b, pid, pred, what):
    """Poll the broker's status until pid's GPU entry satisfies pred; return (entry, status)."""
    end = time.monotonic() + DEADLINE_S
    status = entry = None
    while time.monotonic() < end:
        status = b.status()
        entry = gpu_entry(status, pid)
        if entry and pred(entry):
            return entry, status
        time.sleep(0.2)
    check(False, f"{what}: last entry {entry}")
    return entry, status


def wait_until(pred, timeout_s=DEADLINE_S):
    end = time.monotonic() + timeout_s
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.2)


def log_has(b, text, timeout_s=15):
    def found():
        try:
            with open(b.log, errors="replace") as f:
                return text in f.read()
        except OSError:
            return False
    return wait_until(found, timeout_s)


def describe(e):
    return (f"contexts {e['contexts']} channels {e['channels']} streams {e['streams']} "
            f"device {e['device_bytes'] / MIB:.0f} MiB (peak {e['peak_device_bytes'] / MIB:.0f}) "
            f"mapped {e['mapped_bytes'] / MIB:.0f} MiB ioctls {e['ioctls']} "
            f"launches {e['launches'] if e['audited'] else '-'}")


def check_on_gpu0(b, prog):
    """Its device memory and contexts are attributed to GPU 0 (index 0 of the driver's list, the
    GPU of /dev/nvidia<minor>), not left unattributed (docs/BPF.md "Per GPU")."""
    def on0(e):
        return next((g for g in e.get("gpus") or [] if g.get("index") == 0), None)
    e, status = wait_entry(b, prog.pid, lambda e: (on0(e) or {}).get("device_bytes", 0) >= prog.bytes,
                           f"{prog.label}: its {prog.bytes // MIB} MiB never attributed to GPU 0")
    if not e:
        return
    g = on0(e)
    print(f"{prog.label} by GPU: " + "; ".join(
        f"minor {s['minor']} index {s['index']} {s['uuid']}: {s['contexts']} ctx "
        f"{s['device_bytes'] / MIB:.0f} MiB" for s in e["gpus"]))
    check(g["contexts"] >= 1, f"{prog.label}: its contexts are on GPU 0 ({g['contexts']})")
    gpus = status.get("gpus") or []
    if gpus:
        check(g["uuid"] == gpus[0].get("uuid"),
              f"{prog.label}: GPU 0 is the broker's GPU 0 ({g['uuid']} vs {gpus[0].get('uuid')})")
    unattributed = sum(s["device_bytes"] for s in e["gpus"] if s["minor"] is None)
    print(f"{prog.label}: {unattributed / MIB:.0f} MiB unattributed")


def check_allocated(b, prog, kind, audit):
    e, status = wait_entry(b, prog.pid, lambda e: e["device_bytes"] >= prog.bytes,
                           f"{prog.label}: device memory never reached {prog.bytes // MIB} MiB")
    if not e:
        return None
    print(f"{prog.label} allocated: {describe(e)}")
    check(e["kind"] == kind, f"{prog.label} is kind {kind} (got {e['kind']})")
    check(e["state"] == "running", f"{prog.label} is running")
    check(e["contexts"] >= 1 and e["channels"] >= 1 and e["clients"] >= 1,
          f"{prog.label} has a client, contexts and channels")
    t = tenant_entry(status, prog.pid)
    if kind == "tenant":
        check(t is not None and e["tenant"] == t["id"],
              f"{prog.label} is tenant {t and t['id']} in both lists (gpu says {e['tenant']})")
    else:
        check(t is None, f"{prog.label} is not a tenant")
        check(status["gpu"]["unmanaged"] >= 1, "status counts the unmanaged process")
        if audit:
            e, _ = wait_entry(b, prog.pid, lambda e: e["audited"] and e["launches"] > 0,
                              f"{prog.label}: audit mode counted no launch")
            check(e is not None and e["launches"] > 0,
                  f"{prog.label}: audit mode counted {e and e['launches']} launches")
    return e


def check_allocated_mps(b, prog):
    """Under MPS: the server is listed as such; the tenant's memory is counted, at the tenant or
    at the server (on driver 580 the client's own ioctls allocate it: 774 MiB at the tenant, 66 at
    the server); the tenant is registered, not unmanaged."""
    def found(status):
        server = holder = None
        for p in ((status or {}).get("gpu") or {}).get("processes") or []:
            if p["kind"] == "mps-server":
                server = server or p
            if p["pid"] == prog.pid or p["kind"] == "mps-server":
                if p["device_bytes"] >= prog.bytes:
                    holder = p
        return server, holder
    end = time.monotonic() + DEADLINE_S
    status = b.status()
    while time.monotonic() < end and None in found(status):
        time.sleep(0.2)
        status = b.status()
    s, holder = found(status)
    if check(s is not None, "the MPS server is listed as kind mps-server"):
        print(f"MPS server pid {s['pid']} ({s['name']}): {describe(s)}")
    if check(holder is not None, f"the tenant's {prog.bytes // MIB} MiB are counted (at the "
             "tenant or the MPS server)"):
        print(f"held by pid {holder['pid']} ({holder['kind']})")
    e = gpu_entry(status, prog.pid)
    print(f"{prog.label} (an MPS client) in gpu.processes: {describe(e) if e else 'not listed'}")
    check(e is None or e["kind"] == "tenant", f"{prog.label} is not unmanaged")
    check(tenant_entry(status, prog.pid) is not None, f"{prog.label} is a tenant")
    return s


def check_exit(b, prog, kind, before):
    e, status = wait_entry(b, prog.pid, lambda e: e["state"] == "exited",
                           f"{prog.label}: exit never seen")
    if not e:
        return
    print(f"{prog.label} exited: {describe(e)}")
    check(e["kind"] == kind, f"{prog.label} still listed as {kind} after its exit")
    check(e["exit_code"] == 0, f"{prog.label} exit code 0 (got {e['exit_code']})")
    check(e["device_bytes"] == 0, f"{prog.label}: no device memory left")
    check(e["peak_device_bytes"] >= prog.bytes, f"{prog.label}: peak device memory kept")
    if before:
        check(e["contexts_created"] >= before["contexts"], f"{prog.label}: contexts created kept")
    if kind == "tenant":
        check(tenant_entry(status, prog.pid) is None, f"{prog.label}: tenant reaped")


def make_test_device(d):
    """A character device with /dev/null's numbers (harmless ioctls), as the BPF tests use."""
    path = os.path.join(d, "nvidia-test")
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        return path
    except OSError:
        return "/dev/null"  # e.g. a nodev /tmp: same numbers


def run_selftest(build, args, d):
    dev = make_test_device(d)
    sock = os.path.join(d, "broker.sock")
    fake = [sys.executable, os.path.join(HERE, "bpf_fake_gpu_program.py"), dev]
    programs = (("fake tenant", fake + ["256", "--register", sock, "bpf-gpu-tenant"], 256 * MIB),
                ("fake unregistered", fake + ["512"], 512 * MIB))
    run_broker(build, args, d, ["--bpf-test-device", "1:3"], programs, audit=False)


def run(build, args, workload, d):
    have_torch = subprocess.run(
        [sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
        capture_output=True).returncode == 0
    cuda_argv = [workload, "lifecycle"]
    torch_argv = [sys.executable, "-c", TORCH_SCRIPT]
    if not have_torch:
        print("PyTorch with CUDA not found: the unregistered program is the CUDA program")
    tenant_argv, tenant_bytes, tenant_label = cuda_argv, 256 * MIB, "CUDA tenant"
    other_argv, other_bytes, other_label = torch_argv, 512 * MIB, "PyTorch (unregistered)"
    if not have_torch:
        other_argv, other_bytes, other_label = cuda_argv, 256 * MIB, "CUDA (unregistered)"
    elif args.swap:
        tenant_argv, tenant_bytes, tenant_label = torch_argv, 512 * MIB, "PyTorch tenant"
        other_argv, other_bytes, other_label = cuda_argv, 256 * MIB, "CUDA (unregistered)"

    programs = ((tenant_label, build.tenant("high", "bpf-gpu-tenant", os.path.join(d, "broker.sock"),
                                            tenant_argv), tenant_bytes),
                (other_label, other_argv, other_bytes))
    audit = not args.no_audit
    run_broker(build, args, d, ["--audit-launches"] if audit else [], programs, audit)


def run_broker(build, args, d, extra, programs, audit):
    """Start the broker (socket d/broker.sock), then the programs ((label, argv, bytes): the
    tenant first), and check what status says of them."""
    extra = ["--substrate", args.substrate] + extra
    b = fikit_proc.Broker(build.broker_bin, d, policy=args.policy, extra_args=extra)
    with b:
        gpu = (b.status() or {}).get("gpu") or {}
        if not check(gpu.get("observer") == "loaded",
                     f"observer loaded (status: {gpu.get('observer')}: {gpu.get('reason')})"):
            return
        check(gpu.get("audit") == audit, "audit mode as asked")
        tenant = Program(*programs[0])
        other = Program(*programs[1])
        try:
            exercise(b, tenant, other, audit, mps=args.substrate == "mps",
                     per_gpu=not args.selftest)
        finally:
            tenant.kill()
            other.kill()
    if b.returncode not in (0, None):
        check(False, f"broker exited with {b.returncode}:\n{b.output_tail()}")
    print_log_lines(b, ("registered", "auditing", "audit", "MPS"))


def print_log_lines(b, words):
    """For the record: when tenants registered and what attaching the audit cost."""
    try:
        with open(b.log, errors="replace") as f:
            lines = [line.rstrip() for line in f if any(w in line for w in words)]
    except OSError:
        return
    print("broker log (" + ", ".join(words) + "):")
    for line in lines[:40]:
        print("  " + line)


def exercise(b, tenant, other, audit, mps=False, per_gpu=False):
    if not (tenant.expect("allocated") and other.expect("allocated")):
        return
    server = check_allocated_mps(b, tenant) if mps else None
    t_alloc = None if mps else check_allocated(b, tenant, "tenant", audit)
    o_alloc = check_allocated(b, other, "unmanaged", audit)
    if per_gpu:
        if not mps:
            check_on_gpu0(b, tenant)
        check_on_gpu0(b, other)
    check(log_has(b, f"unmanaged GPU process: pid {other.pid}"),
          "the log warns about the unmanaged process")
    if server:  # its grace period is over too by now
        check(not log_has(b, f"unmanaged GPU process: pid {server['pid']}", 0),
              "the MPS server is not warned about")
    table = subprocess.run([b.bin, "status", "--socket", b.socket], capture_output=True,
                           text=True, timeout=20).stdout
    print(table)
    check(any(line.split()[:1] == [str(other.pid)] and "UNMGD" in line
              for line in table.splitlines()), "the status table marks it UNMGD")
    for prog, alloc in ((tenant, t_alloc), (other, o_alloc)):
        prog.go()
        if prog.expect("freed") and alloc:
            e, _ = wait_entry(b, prog.pid,
                              lambda e, a=alloc, p=prog: e["device_bytes"] + p.bytes <=
                              a["device_bytes"], f"{prog.label}: the free never seen")
            if e:
                print(f"{prog.label} freed: {describe(e)}")
    check(tenant.finish() == 0, f"{tenant.label} exited 0")
    check(other.finish() == 0, f"{other.label} exited 0")
    if mps:
        check(wait_until(lambda: tenant_entry(b.status(), tenant.pid) is None),
              f"{tenant.label}: tenant reaped")
    else:
        check_exit(b, tenant, "tenant", t_alloc)
    check_exit(b, other, "unmanaged", o_alloc)
    gpu = (b.status() or {}).get("gpu") or {}
    check(gpu.get("dropped") == 0, f"no event lost (dropped {gpu.get('dropped')})")
    check(gpu.get("impossible") == 0,
          f"no impossible state (gpu_observer.bpf.c:{gpu.get('impossible_line')})")
    print(subprocess.run([b.bin, "status", "--socket", b.socket], capture_output=True,
                         text=True, timeout=20).stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build")
    p.add_argument("--policy", default="fikit")
    p.add_argument("--swap", action="store_true", help="PyTorch as the tenant, CUDA unregistered")
    p.add_argument("--no-audit", action="store_true", help="start the broker without --audit-launches")
    p.add_argument("--substrate", choices=("timeslice", "mps"), default="timeslice",
                   help="the broker's substrate (mps: the MPS server holds the tenant's objects)")
    p.add_argument("--selftest", action="store_true", help="no GPU: a test device and fake programs")
    args = p.parse_args()
    if not args.selftest:
        skip_without_gpu()
    if os.geteuid() != 0:
        print("SKIP: not root (the broker's BPF observer needs root)")
        return SKIP
    build = Build(args.build)
    with tempfile.TemporaryDirectory(prefix="fikit-bpf-gpu-test-") as d:
        if args.selftest:
            build.require(build.broker_bin)
            run_selftest(build, args, d)
        else:
            workload = os.path.join(build.dir, "tests", "fikit_bpf_gpu_workload")
            build.require(build.lib, build.broker_bin, build.run_bin, workload)
            run(build, args, workload, d)
    print(f"{len(failures)} check(s) failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
