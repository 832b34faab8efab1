"""Processes around a GPU workload: the MPS control daemon, the fikit broker, children, CPU use.

Used by the benchmark runner and the GPU tests. Everything started here is stopped again by the same
object, also when the caller fails (use them as context managers), and every wait has a deadline.
The MPS daemon gets its own pipe and log directories, so it never meets another daemon on the
machine, and `stop()` always sends it `quit`. Nothing here changes a GPU setting.
"""

import glob
import json
import os
import signal
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
_live = []  # daemons and brokers still running, stopped by stop_all() on any exit path


def stop_all():
    """Stop every MPS daemon and broker this process started and has not stopped yet."""
    for obj in list(reversed(_live)):
        try:
            obj.stop()
        except Exception as e:  # keep stopping the others
            print(f"warning: failed to stop {obj!r}: {e}", flush=True)


def wait_until(pred, timeout_s, step_s=0.02):
    """Poll pred() until it is true or timeout_s passes; return its last value."""
    end = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step_s)


def end_process(proc, grace_s=10.0, sig=signal.SIGTERM):
    """Stop a child: `sig`, then SIGKILL after grace_s. Return its exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def alive(pid):
    """Whether process `pid` runs (a zombie does not count: nobody may be reaping it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cpu_seconds(pid):
    """User+system CPU seconds of a process (/proc/PID/stat fields 14 and 15), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


class MpsDaemon:
    """nvidia-cuda-mps-control -d with pipe and log directories under `root`."""

    def __init__(self, root, control="nvidia-cuda-mps-control"):
        self.control = control
        self.pipe_dir = os.path.join(root, "mps-pipe")
        self.log_dir = os.path.join(root, "mps-log")
        self.running = False
        self.pid = None  # of the control daemon, from the pid file it writes in the pipe directory

    def __repr__(self):
        return f"MpsDaemon({self.pipe_dir})"

    def env(self):
        """The variables that make a CUDA process a client of this daemon."""
        return {"CUDA_MPS_PIPE_DIRECTORY": self.pipe_dir, "CUDA_MPS_LOG_DIRECTORY": self.log_dir}

    def start(self):
        os.makedirs(self.pipe_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        env = dict(os.environ, **self.env())
        r = subprocess.run([self.control, "-d"], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"failed to start the MPS control daemon: {r.stderr.strip() or r.returncode}"
                               " (MPS needs root and compute mode Default)")
        self.running = True
        _live.append(self)
        # The daemon answers on <pipe dir>/control and writes nvidia-cuda-mps-control.pid there.
        if not wait_until(lambda: os.path.exists(os.path.join(self.pipe_dir, "control")), 10):
            self.stop()
            raise RuntimeError(f"MPS control pipe did not appear in {self.pipe_dir}")
        try:
            with open(os.path.join(self.pipe_dir, "nvidia-cuda-mps-control.pid")) as f:
                self.pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            self.pid = None
        return self

    def query(self, command, timeout_s=10):
        """Send one command to the control daemon; return its answer."""
        env = dict(os.environ, **self.env())
        r = subprocess.run([self.control], input=command + "\n", env=env, capture_output=True,
                           text=True, timeout=timeout_s)
        return r.stdout.strip()

    def stop(self):
        if not self.running:
            return
        self.running = False
        if self in _live:
            _live.remove(self)
        try:
            self.query("quit", timeout_s=30)
        except (subprocess.TimeoutExpired, OSError) as e:
            print(f"warning: failed to send quit to the MPS daemon: {e}", flush=True)
        if self.pid:  # wait for the daemon to exit (it stops its server first)
            if not wait_until(lambda: not alive(self.pid), 20):
                print(f"warning: the MPS control daemon {self.pid} still runs 20 s after quit",
                      flush=True)
        else:
            wait_until(lambda: not os.path.exists(os.path.join(self.pipe_dir, "control")), 3)

    def log_tail(self, chars=2000):
        try:
            with open(os.path.join(self.log_dir, "control.log")) as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Broker:
    """fikit-broker in the foreground as a child, on its own socket, with CPU sampling."""

    def __init__(self, broker_bin, run_dir, policy="fikit", extra_args=(), extra_env=None):
        self.bin, self.policy, self.extra_args = broker_bin, policy, list(extra_args)
        self.socket = os.path.join(run_dir, "broker.sock")
        self.log = os.path.join(run_dir, "broker.log")
        self.out = os.path.join(run_dir, "broker.out")
        self.env = dict(os.environ, **(extra_env or {}))
        self.proc = None
        self.returncode = None
        self.samples = []  # (monotonic, cpu seconds)
        self.last_status = None
        self._stop_sampling = threading.Event()
        self._sampler = None

    def __repr__(self):
        return f"Broker({self.socket})"

    def argv(self):
        return [self.bin, "start", "--socket", self.socket, "--policy", self.policy, "--foreground",
                "--log", self.log] + self.extra_args

    def start(self, ready_timeout_s=20):
        with open(self.out, "w") as out:
            # Its own process group (not session): if the runner dies, the machine still ends it.
            self.proc = subprocess.Popen(self.argv(), env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, process_group=0)
        _live.append(self)
        ok = wait_until(lambda: self.proc.poll() is not None or self.status() is not None,
                        ready_timeout_s, 0.05)
        if self.proc.poll() is not None or not ok:
            tail = self.output_tail()
            self.stop()
            raise RuntimeError(f"failed to start fikit-broker ({' '.join(self.argv())}): {tail}")
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def status(self, timeout_s=5):
        """Return `fikit-broker status --json` parsed, or None."""
        try:
            r = subprocess.run([self.bin, "status", "--socket", self.socket, "--json"],
                               capture_output=True, text=True, timeout=timeout_s)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def _sample(self):
        """Every 0.2 s: broker CPU seconds; every second: its status, kept if it shows as many
        tenants as any sample before (they have usually left by the time the broker stops)."""
        n = 0
        while not self._stop_sampling.wait(0.2):
            c = cpu_seconds(self.proc.pid)
            if c is not None:
                self.samples.append((time.monotonic(), c))
            n += 1
            if n % 5 == 0:
                self._keep_status(self.status())

    def _keep_status(self, s):
        if s and len(s.get("tenants") or []) >= len((self.last_status or {}).get("tenants") or []):
            self.last_status = s

    def cpu_percent(self, t0, t1):
        """Broker CPU use between two monotonic times, in % of one core (None without samples)."""
        pts = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return None
        return 100.0 * (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def output_tail(self, chars=2000):
        text = ""
        for path in (self.out, self.log):
            try:
                with open(path, errors="replace") as f:
                    text += f.read()[-chars:]
            except OSError:
                pass
        return text[-chars:]

    def stop(self):
        if self.proc is None:
            return
        self._stop_sampling.set()
        if self.proc.poll() is None:
            self._keep_status(self.status())
            try:
                subprocess.run([self.bin, "stop", "--socket", self.socket], capture_output=True,
                               timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                end_process(self.proc, grace_s=10)
        if self in _live:
            _live.remove(self)
        self.returncode, self.proc = self.proc.returncode, None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def quit_stale_mps(pattern):
    """Send `quit` to MPS daemons left by an earlier, killed run (their control pipes match pattern)."""
    for pipe in glob.glob(pattern):
        d = MpsDaemon(os.path.dirname(os.path.dirname(pipe)))  # <root>/mps-pipe/control
        d.running = True
        print(f"stopping an MPS daemon left by an earlier run: {d.pipe_dir}", flush=True)
        d.stop()


def remove_sim_gpu(name, devices=8):
    """Remove a simulated GPU's shared memory (FIKIT_SIM_GPU=name; GPU k > 0 of a node of several
    is name-k): the simulated driver leaves it for the next process, so its user removes it."""
    for n in [name] + [f"{name}-{k}" for k in range(1, devices)]:
        try:
            os.unlink("/dev/shm/" + n.lstrip("/"))
        except OSError:
            pass


def broker_help(broker_bin):
    """Return the text of `fikit-broker --help` (empty if it cannot run)."""
    try:
        r = subprocess.run([broker_bin, "--help"], capture_output=True, text=True, timeout=10)
        return r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def compute_apps():
    """Return `nvidia-smi --query-compute-apps=pid,process_name` lines (read-only), or []."""
    try:
        r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        return [l.strip() for l in r.stdout.splitlines() if l.strip()]
    except (OSError, subprocess.TimeoutExpired):
        return []
