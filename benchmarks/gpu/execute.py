"""Run one step of the GPU benchmark and turn what its processes wrote into result rows.

A step brings up its substrate (an MPS daemon, a broker), starts the LP, then the HP, waits for the
HP under the step's time box, stops the LP, and always takes everything down again, also on failure.
Workloads run in their own process group (so fikit-run and its child stop together) but in the
runner's session, so the machine ends them too if the runner itself is killed.
"""

import datetime
import json
import os
import signal
import subprocess
import time
import traceback

import trace_report
from fikit_proc import Broker, MpsDaemon, compute_apps, remove_sim_gpu
from plan import hp_workloads

_STRIPPED_ENV = ("LD_PRELOAD", "FIKIT_", "CUDA_MPS_")


def clean_env():
    """The runner's environment without anything that would make a baseline a tenant or MPS client."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV)}


def spawn(cmd, log_path):
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd.argv, env=dict(clean_env(), **cmd.env), stdout=log,
                                stderr=subprocess.STDOUT, process_group=0)


def stop_group(proc, sig=signal.SIGTERM, grace_s=10.0):
    """Signal the process group of `proc`, SIGKILL it after grace_s; return the exit code."""
    if proc is None:
        return None
    for s in (sig, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, s)
            proc.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:  # children left in the group (fikit-run's child, say)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.wait() if proc.poll() is None else proc.returncode


def tail(path, chars):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return ""


def _snapshot_due(step, cmds, raw, now):
    """Whether to take the one look at the GPU's processes that tells if MPS is in use."""
    if not step.setting.mps or "compute_apps" in raw or "t_hp_start" not in raw:
        return False
    if cmds.lp_ready:
        return os.path.exists(cmds.lp_ready) and now - raw["t_hp_start"] > 1.0
    return now - raw["t_hp_start"] > (1.0 if cmds.lp else 10.0)


def _drive(plan, step, cmds, deadline, raw, procs):
    """Start the LP and the HP, wait for them under the deadline, stop the LP."""
    if cmds.lp:
        procs["lp"] = spawn(cmds.lp, os.path.join(cmds.dir, "lp.out"))
        raw["t_lp_start"] = time.monotonic()
    if cmds.hp and cmds.lp and not cmds.lp_ready:  # the chain LP has no ready signal: let it settle
        time.sleep(plan.chain["settle_s"])
    if cmds.hp:
        procs["hp"] = spawn(cmds.hp, os.path.join(cmds.dir, "hp.out"))
        raw["t_hp_start"] = time.monotonic()
    main = procs.get("hp") or procs["lp"]
    while main.poll() is None:
        now = time.monotonic()
        if now > deadline:
            raw["timed_out"] = True
            stop_group(main)
            break
        lp = procs.get("lp")
        if lp not in (None, main) and lp.poll() is not None and "lp_exited_early" not in raw:
            raw["lp_exited_early"] = lp.returncode
            if cmds.lp_ready and not os.path.exists(cmds.lp_ready):  # the HP would wait in vain
                raw["error"] = f"the LP exited (rc {lp.returncode}) before it was ready"
                stop_group(main)
                break
        if _snapshot_due(step, cmds, raw, now):
            raw["compute_apps"] = compute_apps()
        time.sleep(0.05)
    raw["t_main_end"] = time.monotonic()
    if step.setting.mps and "compute_apps" not in raw:  # a short HP: look now, MPS is still up
        raw["compute_apps"] = compute_apps()
    if "lp" in procs and main is not procs["lp"]:
        if cmds.lp_ready:
            stop_group(procs["lp"], signal.SIGTERM, 20)
        else:  # the chain LP ends by itself and only then prints its count
            left = max(1.0, deadline - time.monotonic())
            try:
                procs["lp"].wait(timeout=left)
            except subprocess.TimeoutExpired:
                raw["timed_out"] = True
                stop_group(procs["lp"])


def trace_env(step):
    """With FIKIT_BENCH_TRACE_DIR set, the broker of each step writes its decision trace there."""
    d = os.environ.get("FIKIT_BENCH_TRACE_DIR")
    return {"FIKIT_TRACE": os.path.join(d, f"{step.key}.csv")} if d else {}


def report_trace(step, raw):
    """Summarize the step's decision trace (trace_report.py) beside it and in the raw record."""
    path = trace_env(step).get("FIKIT_TRACE")
    if not path or not os.path.exists(path):
        return
    try:
        raw["trace_report"] = trace_report.report(path)
        with open(path[:-len(".csv")] + ".md", "w") as f:
            f.write(raw["trace_report"] + "\n")
    except Exception as e:  # a diagnostic: never lose the step for it
        raw["trace_report"] = f"trace_report failed: {type(e).__name__}: {e}"


def run_step(plan, step, cmds, timebox_s):
    """Run a step; return (rows for results.csv, raw record for raw.jsonl)."""
    os.makedirs(cmds.dir, exist_ok=True)
    raw = {"type": "step", "key": step.key, "rep": step.rep, "setting": step.setting.name,
           "lp": step.lp.name if step.lp else "", "hp_set": step.hp_set.name if step.hp_set else "",
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "timebox_s": timebox_s,
           "commands": {k: getattr(cmds, k).shell() for k in ("hp", "lp") if getattr(cmds, k)}}
    t0 = time.monotonic()
    procs, mps, broker = {}, None, None
    try:
        if cmds.mps_root:
            mps = MpsDaemon(cmds.mps_root).start()
        if cmds.broker:
            env = dict(cmds.env or {}, **(mps.env() if mps else {}), **trace_env(step))
            broker = Broker(**cmds.broker, extra_env=env).start()
            raw["broker_argv"] = broker.argv()
        _drive(plan, step, cmds, t0 + timebox_s, raw, procs)
    except Exception as e:  # record it; the step's rows say what is missing
        raw["error"] = f"{type(e).__name__}: {e}"
        raw["traceback"] = traceback.format_exc()[-3000:]
    finally:
        for p in procs.values():
            stop_group(p, signal.SIGKILL, 5)
        if broker:
            broker.stop()
            report_trace(step, raw)
            raw["broker"] = {"status": broker.last_status, "returncode": broker.returncode,
                             "output_tail": broker.output_tail(3000)}
        if mps:
            mps.stop()
            raw["mps_log_tail"] = mps.log_tail(1500)
        if (cmds.env or {}).get("FIKIT_SIM_GPU"):  # --sim: each step had a simulated GPU of its own
            remove_sim_gpu(cmds.env["FIKIT_SIM_GPU"])
    raw["step_s"] = time.monotonic() - t0
    raw["returncodes"] = {k: p.returncode for k, p in procs.items()}
    failed = raw.get("error") or raw.get("timed_out") or raw["returncodes"].get("hp") not in (0, None)
    for name in procs:
        raw[f"{name}_output_tail"] = tail(os.path.join(cmds.dir, f"{name}.out"), 4000 if failed else 800)
    rows = collect(plan, step, cmds, raw, broker)
    return rows, raw


# ---- turning outputs into rows -------------------------------------------------------------------

def parse_kv(text):
    """All key=value tokens of a program's output (later ones win); numbers as floats."""
    kv = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                kv[k] = float(v.rstrip(",;"))
            except ValueError:
                kv[k] = v
    return kv


def kv_ms(kv, name):
    """A duration from the chain's output in ms: NAME_ms, NAME_us, or NAME (in us, as share.cu)."""
    for key, scale in ((f"{name}_ms", 1.0), (f"{name}_us", 1e-3), (name, 1e-3)):
        if isinstance(kv.get(key), float):
            return kv[key] * scale
    return None


def kv_seconds(kv, default):
    """The LP chain's run time: elapsed_ms (fikit-chain), seconds, or `default` (its --seconds)."""
    if isinstance(kv.get("elapsed_ms"), float):
        return kv["elapsed_ms"] / 1e3
    return kv["seconds"] if isinstance(kv.get("seconds"), float) else default


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def read_times(path):
    try:
        with open(path) as f:
            return [float(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def substrate_seen(raw):
    apps = raw.get("compute_apps")
    if apps is None:
        return ""
    return "mps" if any("mps-server" in a for a in apps) else "timeslice"


def _notes(step, raw):
    notes = []
    if raw.get("error"):
        notes.append(raw["error"])
    if raw.get("timed_out"):
        notes.append("timed out")
    if "lp_exited_early" in raw:
        notes.append(f"LP exited before the HP finished (rc {raw['lp_exited_early']})")
    seen = substrate_seen(raw)
    if step.setting.mps and seen == "timeslice":
        notes.append("expected MPS but no MPS server was seen")
    status = (raw.get("broker") or {}).get("status")
    if step.setting.fikit and status is not None and not status.get("tenants"):
        notes.append("no tenant in the broker's status samples")
    return notes


def _hp_row(rec, lp_times, broker, fikit):
    """Row fields of one torch HP workload record (and the LP's progress in its window)."""
    if rec.get("error"):
        return {"status": "error", "note": rec["error"]}
    row = {k: rec.get(k) for k in ("requests", "jct_ms", "mean_ms", "p50_ms", "p99_ms")}
    row["status"] = "ok"
    lib = rec.get("fikit") or {}
    if fikit and not (lib.get("loaded") and lib.get("connected")):
        # Numbers of a run the broker did not manage are not fikit's: keep them out of the tables.
        row.update(status="unmanaged", note=f"libfikit loaded={lib.get('loaded')} "
                                            f"connected={lib.get('connected')}")
    prof = rec.get("profile") or {}
    row["gpu_busy_ms"] = prof.get("gpu_busy_ms")
    row["kernels_per_req"] = prof.get("kernels_per_request")
    row["launches_per_req"] = rec.get("launches_per_request")
    row["outputs_match"] = (rec.get("outputs") or {}).get("match", "")
    t0, t1 = rec.get("t_start"), rec.get("t_end")
    if lp_times and t0 and t1 and t1 > t0:
        n = sum(1 for t in lp_times if t0 <= t <= t1)
        row.update(lp_units=n, lp_run_s=t1 - t0, lp_rate=n / (t1 - t0), lp_unit="it/s",
                   lp_scope="window")
    if broker and t0 and t1:
        row["broker_cpu_pct"] = broker.cpu_percent(t0, t1)
    if rec.get("truncated"):
        row["note"] = "truncated at the deadline"
    return row


def _lp_only_row(plan, step, cmds, raw):
    if step.lp.kind == "chain":
        kv = parse_kv(raw.get("lp_output_tail", ""))
        secs = kv_seconds(kv, plan.chain["lp_alone_seconds"])
        if not isinstance(kv.get("kernels"), float):
            return {"status": "error", "note": "no kernels=N in the chain LP's output"}
        return {"status": "ok", "lp_units": kv["kernels"], "lp_run_s": secs,
                "lp_rate": kv["kernels"] / secs, "lp_unit": "kernels/s", "lp_scope": "run"}
    times = read_times(cmds.lp_progress)
    if len(times) < 2:
        return {"status": "error", "note": "the LP recorded fewer than 2 iterations"}
    return {"status": "ok", "lp_units": len(times) - 1, "lp_run_s": times[-1] - times[0],
            "lp_rate": (len(times) - 1) / (times[-1] - times[0]), "lp_unit": "it/s", "lp_scope": "run"}


def _chain_hp_row(plan, step, raw, broker):
    kv = parse_kv(raw.get("hp_output_tail", ""))
    c = plan.chain
    row = {"requests": kv.get("requests", c["requests"]), "jct_ms": kv_ms(kv, "jct"),
           "mean_ms": kv_ms(kv, "mean"), "p50_ms": kv_ms(kv, "p50"), "p99_ms": kv_ms(kv, "p99"),
           "gpu_busy_ms": c["kernels"] * c["kernel_us"] / 1e3, "kernels_per_req": c["kernels"]}
    row["status"] = "ok" if row["mean_ms"] is not None else "error"
    if row["status"] != "ok":
        row["note"] = "no mean latency in the chain HP's output"
    if step.lp:
        lkv = parse_kv(raw.get("lp_output_tail", ""))
        if isinstance(lkv.get("kernels"), float):
            secs = kv_seconds(lkv, c["lp_seconds"])
            row.update(lp_units=lkv["kernels"], lp_run_s=secs, lp_rate=lkv["kernels"] / secs,
                       lp_unit="kernels/s", lp_scope="run")
    if broker and "t_hp_start" in raw:
        row["broker_cpu_pct"] = broker.cpu_percent(raw["t_hp_start"], raw["t_main_end"])
    return row


def collect(plan, step, cmds, raw, broker):
    """One row per HP workload (or one LP-only row) with what the step measured."""
    base = {"date": raw["date"], "step": step.key, "rep": step.rep, "setting": step.setting.name,
            "lp": step.lp.name if step.lp else "", "substrate": substrate_seen(raw),
            "step_s": raw["step_s"]}
    notes = _notes(step, raw)
    parts = []
    if step.hp_set is None:
        parts.append(("", _lp_only_row(plan, step, cmds, raw)))
    elif step.hp_set.kind == "chain":
        parts.append(("chain", _chain_hp_row(plan, step, raw, broker)))
    else:
        recs = {r.get("workload"): r for r in read_jsonl(cmds.hp_jsonl)}
        raw["hp_records"] = list(recs.values())
        lp_times = read_times(cmds.lp_progress) if cmds.lp_progress else []
        for w in hp_workloads(plan, step.hp_set):
            r = recs.get(w)
            parts.append((w, _hp_row(r, lp_times, broker, step.setting.fikit) if r else
                          {"status": "error", "note": "no record (HP failed or was stopped first)"}))
    rows = []
    for hp, fields in parts:
        row = dict(base, hp=hp, **fields)
        row["note"] = "; ".join(n for n in [fields.get("note")] + notes if n)
        if notes and row["status"] == "ok" and (raw.get("error") or raw.get("timed_out")):
            row["status"] = "partial"
        rows.append(row)
    return rows
