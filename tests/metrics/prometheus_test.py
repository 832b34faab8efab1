#!/usr/bin/env python3
"""The broker's /metrics scraped by Debian's real Prometheus server.

A broker on the simulated driver serves metrics on a free loopback port; a Prometheus server the
test starts (loopback, a generated configuration, scrape interval 1 s) scrapes it while an LP
tenant runs and an HP tenant makes a known number of launches and leaves. Through Prometheus's
HTTP API: the LP tenant's launch rate is above zero, and the HP tenant's launch counter equals the
launches its workload made (it left before the query: its final count was on the page after it
left). `promtool check metrics` passes on the page, and python3-prometheus-client parses it.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HP_REQUESTS, HP_KERNELS = 40, 5


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return None


def query(prom, expr):
    text = get(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if not text:
        return None
    doc = json.loads(text)
    if doc.get("status") != "success":
        fail("query %s: %s" % (expr, text))
    return doc["data"]["result"]


def main():
    build = os.environ.get("FIKIT_BUILD_DIR", "build")
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            fail(tool + " not found: scripts/install-deps.sh installs Debian's prometheus")
    tmp = tempfile.mkdtemp(prefix="fikit-metrics-")
    sim_gpu = "/fikit-sim-metrics-%d" % os.getpid()
    env = dict(os.environ, LD_LIBRARY_PATH=build + "/sim", FIKIT_SIM_GPU=sim_gpu)
    sock = tmp + "/broker.sock"
    procs = []
    try:
        log = open(tmp + "/broker.log", "w+")
        broker = subprocess.Popen(
            [build + "/bin/fikit-broker", "start", "-f", "-s", sock, "--no-bpf",
             "--substrate", "timeslice", "--switch-cost-us", "100", "--metrics", "127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append(broker)

        def port_from_log():
            log.seek(0)
            m = re.search(r"metrics at http://127\.0\.0\.1:(\d+)/metrics", log.read())
            return m and int(m.group(1))
        port = wait_for("the broker's metrics port in its log", port_from_log)
        target = "127.0.0.1:%d" % port

        prom_port = free_port()
        prom = "http://127.0.0.1:%d" % prom_port
        with open(tmp + "/prometheus.yml", "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                    "scrape_configs:\n  - job_name: fikit\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        server = subprocess.Popen(
            ["prometheus", "--config.file=" + tmp + "/prometheus.yml",
             "--storage.tsdb.path=" + tmp + "/data", "--web.listen-address=127.0.0.1:%d" % prom_port,
             "--log.level=warn"],
            stdout=open(tmp + "/prometheus.log", "w"), stderr=subprocess.STDOUT)
        procs.append(server)
        wait_for("Prometheus to scrape the broker",
                 lambda: (query(prom, 'up{job="fikit"} == 1') or None), timeout=60)

        run = [build + "/bin/fikit-run", "--socket", sock]
        lp = subprocess.Popen(run + ["--priority", "low", "--", build + "/bin/fikit-chain", "lp",
                                     "--seconds", "60", "--kernel-us", "100"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.append(lp)
        hp = subprocess.run(run + ["--priority", "high", "--", build + "/bin/fikit-chain", "hp",
                                   "--requests", str(HP_REQUESTS), "--kernels", str(HP_KERNELS),
                                   "--kernel-us", "200", "--gap-us", "300",
                                   "--request-gap-us", "2000", "--gap-sleep"],
                            capture_output=True, text=True, env=env, timeout=60)
        if hp.returncode != 0:
            fail("the HP workload failed: " + hp.stdout + hp.stderr)

        def lp_rate():
            r = query(prom, 'rate(fikit_tenant_launches_total{class="lp"}[5s])')
            return r and float(r[0]["value"][1]) > 0 and r
        r = wait_for("an LP launch rate above zero in Prometheus", lp_rate)
        print("LP launch rate: %s/s" % r[0]["value"][1])

        # Each grant's latency is in the LP tenant's histogram: as many as its grants.
        def grant_latency():
            n = query(prom, 'fikit_grant_latency_seconds_count{class="lp"}')
            g = query(prom, 'fikit_tenant_grants_total{class="lp"}')
            return (n and g and float(n[0]["value"][1]) > 0 and
                    float(n[0]["value"][1]) == float(g[0]["value"][1]) and n)
        r = wait_for("the LP tenant's grant latency count (= its grants) in Prometheus",
                     grant_latency)
        q = query(prom, 'histogram_quantile(0.5, fikit_grant_latency_seconds_bucket{class="lp"})')
        print("LP grants with a latency: %s; median grant latency %s s" %
              (r[0]["value"][1], q[0]["value"][1] if q else "?"))

        want = HP_REQUESTS * HP_KERNELS

        def hp_count():
            r = query(prom, 'max_over_time(fikit_tenant_launches_total{class="hp"}[5m])')
            return r and int(float(r[0]["value"][1])) == want and r
        r = wait_for("the HP tenant's launches (%d) in Prometheus" % want, hp_count)
        labels = r[0]["metric"]
        print("HP launches in Prometheus: %s %s" % (r[0]["value"][1], labels))
        for key in ("gpu", "tenant", "tenant_id", "uid", "priority"):
            if key not in labels:
                fail("label %s missing: %s" % (key, labels))
        if labels["priority"] != "0":
            fail("HP priority label: " + labels["priority"])
        # The HP tenant left: after the one page with its final count it is gone (stale).
        wait_for("the departed HP tenant to leave the page",
                 lambda: query(prom, 'fikit_tenant_launches_total{class="hp"}') == [], timeout=20)
        build_info = query(prom, "fikit_build_info")
        if not build_info or build_info[0]["metric"].get("policy") != "fikit":
            fail("fikit_build_info: %s" % build_info)

        page = get("http://" + target + "/metrics")
        check = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True,
                               text=True)
        if check.returncode != 0:
            fail("promtool check metrics:\n" + check.stdout + check.stderr)
        print("promtool check metrics: OK")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:  # a python3 of its own on PATH (pyenv): Debian's package is here
            sys.path.append("/usr/lib/python3/dist-packages")
            try:
                from prometheus_client.parser import text_string_to_metric_families
            except ImportError:
                fail("python3-prometheus-client is missing (scripts/install-deps.sh installs it)")
        # The parser names a counter family without its _total.
        families = {f.name: f.type for f in text_string_to_metric_families(page)}
        want_families = [("fikit_tenant_launches", "counter"), ("fikit_build_info", "gauge"),
                         ("fikit_tenant_lp_waiting", "gauge"),
                         ("fikit_grant_latency_seconds", "histogram"),
                         ("fikit_broker_cpu_seconds", "counter"),
                         ("fikit_tenant_busy_seconds", "counter")]
        if "fikit_bpf_observer_loaded 1\n" in page:
            want_families += [("fikit_bpf_program_runs", "counter"),
                              ("fikit_bpf_program_run_seconds", "counter")]
        for name, kind in want_families:
            if families.get(name) != kind:
                fail("family %s: %s (want %s)" % (name, families.get(name), kind))
        print("PASS")
    finally:
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
