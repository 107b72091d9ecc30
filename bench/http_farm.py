#!/usr/bin/env python3
"""HTTP throughput through a kernlb http farm against HAProxy configured by hand, same run.

Not a test: it prints a table.  Run as root from the repository root:

    .venv/bin/python bench/http_farm.py                  # 3 rounds of 10 s per arm
    .venv/bin/python bench/http_farm.py --rounds 5 --duration 15 --connections 64

Topology (namespaces ``kbh<pid>c/l/b``, 198.18.0.0/15 addresses):

    client ns (wrk) ── LB ns: VIP 198.18.100.10 on lo ── backend ns: two HAProxy "return 200"
                        ├─ :80  kernlb http farm (kernlb serve -> its own HAProxy)
                        └─ :81  HAProxy from a hand-written configuration (same binary)

The backends answer from HAProxy's own `http-request return` (no application behind), so the
figure is the load balancer's cost.  Both arms run in the same namespace, against the same
backends, alternately (A B A B ...), and the median requests/s of each is reported with their
ratio.  wrk runs in the client namespace: ``wrk -t THREADS -c CONNECTIONS -d DURATION``
(keep-alive connections, the common case for HTTP).  Everything started is stopped by PID and
the namespaces are deleted on exit, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIX = f"kbh{os.getpid()}"
CLIENT, LB, BACKEND = f"{PREFIX}c", f"{PREFIX}l", f"{PREFIX}b"
VIP = "198.18.100.10"
CLIENT_IP, LB_CLIENT_IP = "198.18.101.1", "198.18.101.254"
BACKEND_IP, LB_BACKEND_IP = "198.18.102.1", "198.18.102.254"
API_PORT, KEY = 18444, "benchkey"
FARM_PORT = 80

BACKEND_CFG = """global
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fast
    bind {ip}:8080
    bind {ip}:8081
    http-request return status 200 content-type text/plain string "hello"
"""

# What an engineer writes by hand for the same farm: two servers, round robin.
HAND_CFG = """global
defaults
    mode http
    option forwardfor
    timeout connect 20s
    timeout client 30s
    timeout server 45s
frontend hand
    bind {vip}:81
    default_backend servers
backend servers
    balance roundrobin
    server a {backend}:8080 weight 1
    server b {backend}:8081 weight 1
"""


def sh(*cmd: str, check: bool = True) -> str:
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


@contextlib.contextmanager
def lab() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    created: list[str] = []
    try:
        for ns in (CLIENT, LB, BACKEND):
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            LB,
            "link",
            "add",
            "v-c",
            "type",
            "veth",
            "peer",
            "name",
            "v-l",
            "netns",
            CLIENT,
        )
        sh(
            "ip",
            "-n",
            LB,
            "link",
            "add",
            "v-b",
            "type",
            "veth",
            "peer",
            "name",
            "v-l",
            "netns",
            BACKEND,
        )
        for ns, dev, addr in (
            (LB, "v-c", LB_CLIENT_IP),
            (LB, "v-b", LB_BACKEND_IP),
            (CLIENT, "v-l", CLIENT_IP),
            (BACKEND, "v-l", BACKEND_IP),
        ):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", LB, "addr", "add", f"{VIP}/32", "dev", "lo")
        sh("ip", "-n", CLIENT, "route", "add", f"{VIP}/32", "via", LB_CLIENT_IP)
        yield procs
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for ns in created:
            sh("ip", "netns", "del", ns, check=False)


def start(
    procs: list[subprocess.Popen[bytes]], cmd: list[str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO
        )
    procs.append(proc)
    return proc


ZAPI_CALL = """
import sys, urllib.request
method, url, key, body = sys.argv[1:5]
request = urllib.request.Request(url, data=body.encode(), method=method,
                                 headers={"ZAPI_KEY": key, "Content-Type": "application/json"})
print(urllib.request.urlopen(request, timeout=60).status)
"""


def zapi(method: str, path: str, body: dict[str, object]) -> None:
    """A ZAPI call from inside the LB namespace (kernlb listens on its loopback)."""
    url = f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi{path}"
    cmd = in_ns(LB, sys.executable, "-c", ZAPI_CALL, method, url, KEY, json.dumps(body))
    out = sh(*cmd).strip()
    if not out.startswith("2"):
        raise RuntimeError(f"{method} {path}: {out}")


def wait_http(ns: str, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    probe = (
        "import urllib.request, urllib.error\n"
        f"try: urllib.request.urlopen({url!r}, timeout=2)\n"
        "except urllib.error.HTTPError: pass  # it answers (401 without a key)"
    )
    while time.monotonic() < deadline:
        if (
            subprocess.run(in_ns(ns, sys.executable, "-c", probe), capture_output=True).returncode
            == 0
        ):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{url} does not answer from {ns}")


def wrk(port: int, *, threads: int, connections: int, duration: int) -> float:
    out = sh(*in_ns(CLIENT, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
                    f"http://{VIP}:{port}/"))  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errors:
        print(f"  (port {port}: {errors.group(0)})")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk said: {out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "haproxy", "ip"):
        if shutil.which(tool) is None:
            print(f"{tool} is required", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="kbh-"))
    try:
        with lab() as procs:
            (work / "backend.cfg").write_text(BACKEND_CFG.format(ip=BACKEND_IP))
            start(
                procs,
                in_ns(BACKEND, "haproxy", "-db", "-f", str(work / "backend.cfg")),
                work / "backend.log",
            )
            state = work / "kernlb"
            state.mkdir()
            start(
                procs,
                in_ns(LB, sys.executable, "-m", "app", "serve", "--no-tls", "--host", "127.0.0.1",
                      "--port", str(API_PORT), "--key", KEY, "--state-dir", str(state),
                      "--db", f"sqlite:///{state}/kernlb.db", "--resync-interval", "0"),
                work / "kernlb.log",
            )  # fmt: skip
            wait_http(LB, f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi/system/version", 120)
            zapi(
                "POST",
                "/farms",
                {"farmname": "web", "profile": "http", "vip": VIP, "vport": FARM_PORT},
            )
            zapi("POST", "/farms/web/services", {"id": "main"})
            for port in (8080, 8081):
                zapi("POST", "/farms/web/services/main/backends", {"ip": BACKEND_IP, "port": port})
            (work / "hand.cfg").write_text(HAND_CFG.format(vip=VIP, backend=BACKEND_IP))
            # Third arm: kernlb's own rendered configuration, run by hand (-db) on port 82:
            # tells the cost of the configuration from the cost of the way kernlb runs it.
            rendered = (state / "haproxy" / "haproxy.cfg").read_text()
            rendered = "\n".join(
                line for line in rendered.splitlines() if "stats socket" not in line
            ).replace(f"{VIP}:{FARM_PORT}", f"{VIP}:82")
            (work / "rendered.cfg").write_text(rendered)
            start(
                procs,
                in_ns(LB, "haproxy", "-db", "-f", str(work / "rendered.cfg")),
                work / "rendered.log",
            )
            start(
                procs, in_ns(LB, "haproxy", "-db", "-f", str(work / "hand.cfg")), work / "hand.log"
            )
            wait_http(CLIENT, f"http://{VIP}:{FARM_PORT}/")
            wait_http(CLIENT, f"http://{VIP}:81/")
            wait_http(CLIENT, f"http://{VIP}:82/")
            arms = (
                ("kernlb http farm", FARM_PORT),
                ("HAProxy by hand", 81),
                ("kernlb's config, -db", 82),
            )
            results: dict[str, list[float]] = {label: [] for label, _ in arms}
            for _ in range(args.rounds):
                for label, port in arms:
                    rate = wrk(
                        port,
                        threads=args.threads,
                        connections=args.connections,
                        duration=args.duration,
                    )
                    results[label].append(rate)
                    print(f"  {label:22} {rate:10.0f} req/s", flush=True)
            kernlb_rate = statistics.median(results["kernlb http farm"])
            hand_rate = statistics.median(results["HAProxy by hand"])
            load = os.getloadavg()
            print()
            print(f"{'arm':22} {'median req/s':>12}  rounds")
            for label, rates in results.items():
                each = ", ".join(f"{r:.0f}" for r in rates)
                print(f"{label:18} {statistics.median(rates):12.0f}  {each}")
            print(f"ratio kernlb / hand: {kernlb_rate / hand_rate:.2f}")
            print(
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} "
                f"rounds per arm alternated; load average {load[0]:.1f} {load[1]:.1f} "
                f"{load[2]:.1f} on {os.cpu_count()} CPUs"
            )
    except RuntimeError:
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
