#!/usr/bin/env python3
"""fikit-top in tmux (80x24): the tenants, a starving flag, sort and quit keys, --once.

A broker under the priority policy; a raw HP tenant records a launch every 10 ms that never
completes, so the LP tenant (fikit-chain on the simulated driver) never gets a grant. fikit-top
runs in a detached tmux session of 80x24: capture-pane must show both tenants and the LP one
flagged STARVING, the GPU's busy/filled/idle sparklines (the HP tenant, never done, keeps it 100%
busy) and the HP latency and slowdown columns; `s` changes the sort, `h` shows the help, `q` quits (the session ends).
`fikit-top --once` prints the same view as text within 80 columns.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def wait_for(what, fn, timeout=20, show=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    fail("timed out waiting for " + what + ("; last seen:\n" + show() if show else ""))


def main():
    build = os.environ.get("FIKIT_BUILD_DIR", "build")
    if not shutil.which("tmux"):
        fail("tmux not found: scripts/install-deps.sh installs it")
    top = build + "/bin/fikit-top"
    if not os.path.exists(top):
        fail(top + " was not built (static ncurses: libncurses-dev)")
    tmp = tempfile.mkdtemp(prefix="fikit-top-")
    sock = tmp + "/broker.sock"
    sim_gpu = "/fikit-sim-top-%d" % os.getpid()
    env = dict(os.environ, LD_LIBRARY_PATH=build + "/sim", FIKIT_SIM_GPU=sim_gpu, TERM="xterm")
    session = "fikit-top-test-%d" % os.getpid()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [build + "/bin/fikit-broker", "start", "-f", "-s", sock, "--no-bpf", "--policy",
             "priority", "--substrate", "timeslice", "--switch-cost-us", "100", "--metrics", "off"],
            stdout=open(tmp + "/broker.log", "w"), stderr=subprocess.STDOUT, env=env))
        wait_for("the broker's socket", lambda: os.path.exists(sock))
        procs.append(subprocess.Popen([build + "/tests/rogue_client", sock, "hp-busy"], env=env))
        time.sleep(0.5)
        procs.append(subprocess.Popen(
            [build + "/bin/fikit-run", "--socket", sock, "--priority", "low", "--",
             build + "/bin/fikit-chain", "lp", "--seconds", "60", "--kernel-us", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))

        def tmux(*args, check=True):
            r = subprocess.run(["tmux"] + list(args), capture_output=True, text=True, env=env)
            if check and r.returncode != 0:
                fail("tmux %s: %s" % (" ".join(args), r.stderr))
            return r

        tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
             "%s -s %s -d 0.5 --starve-after 1" % (top, sock))

        def pane():
            return tmux("capture-pane", "-p", "-t", session).stdout

        screen = wait_for("fikit-top to flag the LP tenant as starving",
                          lambda: "STARVING" in pane() and pane(), show=pane)
        print(screen)
        for want in ("fikit-top", "rogue", "fikit-chain", "HP", "low", "STARVING: waiting",
                     "sort: priority", "  filled [", "  idle   [", "P50", "P99", "SLOW50/99"):
            if want not in screen:
                fail("%r not on the screen:\n%s" % (want, screen))
        wait_for("the busy sparkline at 100%",
                 lambda: re.search(r"^  busy   \[[ .:=+*#-]*\] 100%$", pane(), re.M), show=pane)
        rows = screen.splitlines()
        if len(rows) > 24 or any(len(r) > 80 for r in rows):
            fail("the screen does not fit 80x24")
        if screen.index("rogue") > screen.index("fikit-chain"):
            fail("by priority, the HP tenant comes first:\n" + screen)
        tmux("send-keys", "-t", session, "s")
        wait_for("the sort to change", lambda: "sort: launch rate" in pane())
        tmux("send-keys", "-t", session, "h")
        wait_for("the help", lambda: "this help" in pane())
        tmux("send-keys", "-t", session, "x")
        wait_for("the help to close", lambda: "sort: launch rate" in pane())
        tmux("send-keys", "-t", session, "q")
        wait_for("fikit-top to quit", lambda: tmux("has-session", "-t", session,
                                                   check=False).returncode != 0, timeout=10)

        once = subprocess.run([top, "-s", sock, "--once", "-d", "0.5"], capture_output=True,
                              text=True, timeout=30)
        if once.returncode != 0 or "fikit-chain" not in once.stdout:
            fail("fikit-top --once: %d\n%s%s" % (once.returncode, once.stdout, once.stderr))
        if any(len(l) > 80 for l in once.stdout.splitlines()):
            fail("--once is wider than 80 columns")
        none = subprocess.run([top, "-s", tmp + "/none.sock", "--once"], capture_output=True,
                              text=True, timeout=30)
        if none.returncode != 3:
            fail("no broker: exit %d, want 3" % none.returncode)
        print("PASS")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        try:
            os.unlink("/dev/shm" + sim_gpu)
        except FileNotFoundError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
