"""Ceiling, kernlb NAT and kernlb DSR per connection, on one one-arm segment, with lbbench's tools.

    sudo .venv/bin/python bench/lbbench_dsr.py --rounds 3 --duration 10

The shared harness (`../shared/lbbench`) routes client -> LB -> backends over separate links,
which DSR cannot use: DSR needs the LB and the backends on one L2 segment, backends that hold
the VIP on `lo` (ARP suppressed) and replies that go straight back to the client. So the
topology is built here with kernlb's lab module (app/net/lab.py); the load (wrk, close mode),
the probe, the idle wait, the conntrack statistics and the CPU accounting are lbbench's own
(`lbbench/load.py`, `cpu.py`, `common.py`, imported from its directory, unmodified):

    switch ns: br0 -- client   eth0 198.18.4.1/24 + 198.18.5.1/24 (an off-segment source)
                 |-- LB       eth0 198.18.4.254/24 + 198.18.5.254/24; VIPs 198.18.4.100-101/32
                 `-- b1..bN   eth0 198.18.4.1N/24; lo 198.18.4.101 (DSR VIP), .200, .201
                              (arp_ignore=1, arp_announce=2); nginx :80 answering "bN"

Variants (each on a fresh segment, so no conntrack entry or TIME_WAIT socket carries over):

- `ceiling`: the client (source 198.18.5.1, off the segment) connects to 198.18.4.200, an
  address every backend holds; the LB routes it (ECMP over the backends): no rule, no
  conntrack; the replies come back through the LB (routed).
- `ceiling-direct`: the same to 198.18.4.201 from 198.18.4.1: the replies go straight to the
  client.
- `kernlb-nat`: `kernlb serve` in the LB, a farm on VIP 198.18.4.100:80, nattype nat (DNAT +
  masquerade, conntrack); the replies come back through the LB.
- `kernlb-dsr`: the same with nattype dsr on VIP 198.18.4.101 (netdev ingress, `fwd`, no
  conntrack): the backends answer the client straight from the VIP on their `lo`.

`ceiling` carries the same packets over the same hops as kernlb-nat without any rule: it is the
reference of the "vs ceiling" and Δ columns, as in lbbench. `ceiling-direct` is the same
routing with the replies bypassing the LB: the floor a DSR data plane can reach on this path.
kernlb runs as a daemon during the load, as in production. Every namespace and process this
script makes is removed at the end (also after an error, Ctrl-C, SIGTERM or SIGHUP); processes
are stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LBBENCH = Path(os.environ.get("LBBENCH_DIR", REPO.parent / "shared" / "lbbench"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(LBBENCH))

from lbbench.common import conntrack_flush, conntrack_stats  # noqa: E402
from lbbench.load import (  # noqa: E402
    LoadSpec,
    check_distribution,
    quiet_check,
    run_probe,
    run_wrk,
    settle,
)
from lbbench.procs import kill_pids  # noqa: E402
from lbbench.topo import NGINX_CONF, ns_pids, wait_listening  # noqa: E402

from app.net.lab import Lab, NetnsExecutor, addresses, ip_batch, sysctl, veth  # noqa: E402

Json = Any

SEGMENT = "198.18.4.0/24"
CLIENT_IP = "198.18.4.1"
CLIENT_REMOTE_IP = "198.18.5.1"  # off the segment: backends route it via the LB
LB_IP = "198.18.4.254"
LB_REMOTE_SIDE = "198.18.5.254"
NAT_VIP = "198.18.4.100"
DSR_VIP = "198.18.4.101"
CEILING_IP = "198.18.4.200"  # on every backend's lo; replies routed back through the LB
CEILING_DIRECT_IP = "198.18.4.201"  # on every backend's lo; replies straight to the client
PORT = 80
API_PORT = 4480
KEY = "benchKey0123456789"
VARIANTS = ("ceiling", "ceiling-direct", "kernlb-nat", "kernlb-dsr")
REFERENCE = "ceiling"
OTHER_CORES_LIMIT = 0.15  # lbbench's limit for CPU nobody of ours accounts for


def backend_ip(i: int) -> str:
    return f"198.18.4.{10 + i}"


class Segment:
    """One one-arm segment with its nginx backends and (for kernlb variants) kernlb serve."""

    def __init__(self, tag: str, n_backends: int, workdir: Path) -> None:
        self.tag = tag
        self.n_backends = n_backends
        self.workdir = workdir
        self.lab = Lab(workdir=workdir)
        self.switch = f"{tag}-sw"
        self.client = f"{tag}-cli"
        self.lb = f"{tag}-lb"
        self.backends = [f"{tag}-b{i}" for i in range(1, n_backends + 1)]
        self.kernlb_pid: int | None = None
        self._lb_exec: NetnsExecutor | None = None

    # -- topology -----------------------------------------------------------------------------

    def build(self) -> None:
        for ns in (self.switch, self.client, self.lb, *self.backends):
            self.lab.add_netns(ns, rp_filter=False)
            sysctl(
                ns,
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
                "net.ipv4.conf.all.accept_redirects=0",
                "net.ipv4.conf.default.accept_redirects=0",
            )
        members = {"c": self.client, "l": self.lb}
        members.update({f"b{i}": ns for i, ns in enumerate(self.backends, 1)})
        switch_cmds = ["link add br0 type bridge", "link set br0 up"]
        for short, ns in members.items():
            switch_cmds += veth(f"p-{short}", "eth0", ns, master="br0")
        ip_batch(self.switch, switch_cmds)
        sysctl(self.switch, "net.bridge.bridge-nf-call-iptables=0", check=False)

        sysctl(self.client, "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1")
        ip_batch(
            self.client,
            [
                f"addr add {CLIENT_IP}/24 dev eth0",
                f"addr add {CLIENT_REMOTE_IP}/24 dev eth0",
                "link set eth0 up",
                f"route add {CEILING_IP}/32 via {LB_IP} src {CLIENT_REMOTE_IP}",
                f"route add {CEILING_DIRECT_IP}/32 via {LB_IP} src {CLIENT_IP}",
                f"route add {NAT_VIP}/32 via {LB_IP} src {CLIENT_IP}",
                f"route add {DSR_VIP}/32 via {LB_IP} src {CLIENT_IP}",
            ],
        )
        sysctl(
            self.lb,
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.default.send_redirects=0",
            "net.ipv4.ip_local_port_range=1024 65535",
        )
        hops = " ".join(f"nexthop via {backend_ip(i)} dev eth0" for i in self._indexes())
        ip_batch(
            self.lb,
            [
                *addresses("eth0", (LB_IP, LB_REMOTE_SIDE), 24),
                *addresses("eth0", (NAT_VIP, DSR_VIP), 32),
                "link set eth0 up",
                f"route add {CEILING_IP}/32 {hops}",
                f"route add {CEILING_DIRECT_IP}/32 {hops}",
            ],
        )
        sysctl(self.lb, "net.ipv4.conf.eth0.send_redirects=0")
        for i, ns in zip(self._indexes(), self.backends, strict=True):
            sysctl(
                ns,
                "net.core.somaxconn=16384",
                "net.ipv4.tcp_max_syn_backlog=16384",
                *(f"net.ipv4.conf.{dev}.arp_ignore=1" for dev in ("all", "eth0")),
                *(f"net.ipv4.conf.{dev}.arp_announce=2" for dev in ("all", "eth0")),
            )
            ip_batch(
                ns,
                [
                    f"addr add {backend_ip(i)}/24 dev eth0",
                    *addresses("lo", (DSR_VIP, CEILING_IP, CEILING_DIRECT_IP), 32),
                    "link set eth0 up",
                    f"route add 198.18.5.0/24 via {LB_IP}",
                ],
            )
            self._start_nginx(i, ns)
        for ns in self.backends:
            wait_listening(ns, PORT)

    def _indexes(self) -> range:
        return range(1, self.n_backends + 1)

    def _start_nginx(self, i: int, ns: str) -> None:
        home = self.workdir / f"b{i}"
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=1, dir=home, port=PORT, name=f"b{i}"))
        argv = ["nginx", "-p", str(home), "-e", str(home / "error.log"), "-c", str(conf)]
        self.lab.spawn(ns, argv, log=home / "stdout.log")

    def backend_pids(self) -> list[int]:
        return [pid for ns in self.backends for pid in ns_pids(ns)]

    def close(self) -> None:
        """Our processes by PID (nginx masters, kernlb), then what they left in our namespaces
        (nginx workers), then the namespaces."""
        try:
            for proc in list(self.lab.procs):
                self.lab.stop(proc)
            for ns in (self.client, self.lb, *self.backends):
                pids = ns_pids(ns)
                if pids:
                    kill_pids(pids)
        finally:
            self.lab.close()

    # -- kernlb ---------------------------------------------------------------------------------

    def start_kernlb(self) -> None:
        state = self.workdir / "kernlb"
        state.mkdir(parents=True, exist_ok=True)
        python = os.environ.get("KERNLB_PY", str(REPO / ".venv" / "bin" / "python"))
        argv = [python, "-m", "app", "serve", "--no-tls", "--host", "127.0.0.1"]
        argv += ["--port", str(API_PORT), "--db", f"sqlite:///{state / 'kernlb.db'}"]
        argv += ["--state-dir", str(state)]
        env = dict(os.environ, KERNLB_ZAPI_KEY=KEY)
        proc = self.lab.spawn(self.lb, argv, log=state / "serve.log", env=env, cwd=REPO)
        self.kernlb_pid = proc.pid
        self._lb_exec = self.lab.executor(self.lb)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kernlb serve exited; see {state / 'serve.log'}")
            try:
                if self.api("GET", "system/version")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"kernlb did not answer in 120 s; see {state / 'serve.log'}")

    def api(self, method: str, path: str, body: Json = None) -> tuple[int, Json]:
        assert self._lb_exec is not None
        return self._lb_exec.run(_zapi_call, method, path, body)

    def farm(self, name: str, vip: str, nattype: str) -> None:
        calls: list[tuple[str, str, Json, int]] = [
            (
                "POST",
                "farms",
                {"farmname": name, "profile": "l4xnat", "vip": vip, "vport": "80"},
                201,
            ),
            ("PUT", f"farms/{name}", {"nattype": nattype, "algorithm": "weight"}, 200),
        ]
        for i in self._indexes():
            backend: Json = {"ip": backend_ip(i), "weight": 1}
            if nattype == "nat":
                backend["port"] = PORT
            calls.append(("POST", f"farms/{name}/backends", backend, 201))
        for method, path, body, want in calls:
            status, answer = self.api(method, path, body)
            if status != want:
                raise RuntimeError(f"{method} {path} -> {status} {answer}")
        # DSR backends are scheduled once kernlb has resolved their MACs.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, answer = self.api("GET", f"farms/{name}")
            states = [b.get("status") for b in answer.get("backends", [])]
            if states and all(s == "up" for s in states):
                return
            time.sleep(0.3)
        raise RuntimeError(f"farm {name}: backends not up after 30 s: {answer}")


def _zapi_call(method: str, path: str, body: Json) -> tuple[int, Json]:
    """Runs in a thread inside the LB namespace: kernlb listens on its 127.0.0.1."""
    url = f"http://127.0.0.1:{API_PORT}/zapi/v3.1/zapi.cgi/{path}"
    data = None if body is None else json.dumps(body).encode()
    headers = {"ZAPI_KEY": KEY, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# -- one variant ----------------------------------------------------------------------------------

Setup = Callable[[Segment], str]  # prepares the segment, returns the target address


def _ceiling(target: str) -> Setup:
    return lambda segment: target


def _kernlb(nattype: str, vip: str) -> Setup:
    def setup(segment: Segment) -> str:
        segment.start_kernlb()
        segment.farm(f"bench-{nattype}", vip, nattype)
        return vip

    return setup


SETUPS: dict[str, Setup] = {
    "ceiling": _ceiling(CEILING_IP),
    "ceiling-direct": _ceiling(CEILING_DIRECT_IP),
    "kernlb-nat": _kernlb("nat", NAT_VIP),
    "kernlb-dsr": _kernlb("dsr", DSR_VIP),
}


def measure(name: str, tag: str, args: argparse.Namespace, workdir: Path) -> dict[str, Json]:
    """Build a fresh segment, set the variant up, check the spread, run wrk, tear down."""
    vdir = workdir / name
    vdir.mkdir(parents=True, exist_ok=True)
    segment = Segment(tag, args.backends, vdir)
    record: dict[str, Json] = {"variant": name}
    try:
        segment.build()
        host = SETUPS[name](segment)
        record["target"] = f"{host}:{PORT}"
        conntrack_flush(segment.lb)
        settle()
        probe = run_probe(segment.client, host, PORT, args.probe_count, args.probe_seconds)
        record["probe"] = probe
        problem = check_distribution(probe, args.backends)
        if problem:
            raise RuntimeError(f"sanity check failed: {problem}")
        spec = LoadSpec(
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
            threads=args.threads,
            keepalive=False,
        )
        best: dict[str, Json] | None = None
        for attempt in range(2):
            conntrack_flush(segment.lb)
            settle()
            groups = {"lb": ns_pids(segment.lb), "backend": segment.backend_pids()}
            result = run_wrk(segment.client, host, PORT, spec, str(vdir), groups)
            result["conntrack"] = conntrack_stats(segment.lb)
            result["attempt"] = attempt + 1
            other = result["cpu"].get("other_cores") or 0.0
            if best is None or other < (best["cpu"].get("other_cores") or 0.0):
                best = result
            if other <= OTHER_CORES_LIMIT:
                break
            print(f"  {name}: {other:.2f} cores busy outside our processes; retrying", flush=True)
        assert best is not None
        best["disturbed"] = (best["cpu"].get("other_cores") or 0.0) > OTHER_CORES_LIMIT
        record["run"] = best
        cpu = best["cpu"]
        print(
            f"  {name:15s} {best['rps']:>9.0f} req/s  cpu {cpu.get('busy_us_per_req', 0):.1f} "
            f"us/conn  softirq {cpu.get('softirq_us_per_req', 0):.1f}  err {best['errors_total']}",
            flush=True,
        )
    except Exception as exc:  # one variant failing must not lose the others' figures
        record["error"] = f"{type(exc).__name__}: {exc}"
        print(f"  {name}: ERROR {record['error']}", flush=True)
    finally:
        segment.close()
    return record


# -- table ----------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(records: list[dict[str, Json]], variants: list[str]) -> list[dict[str, Json]]:
    reference = {r["round"]: r["run"] for r in records if r["variant"] == REFERENCE and "run" in r}
    rows = []
    for name in variants:
        runs = [(r["round"], r["run"]) for r in records if r["variant"] == name and "run" in r]
        errors = [r["error"] for r in records if r["variant"] == name and "error" in r]
        row: dict[str, Json] = {"variant": name, "rounds": len(runs), "errors": errors}
        row["rps"] = _median([run["rps"] for _, run in runs])
        row["cpu_us"] = _median([run["cpu"]["busy_us_per_req"] for _, run in runs])
        row["softirq_us"] = _median([run["cpu"]["softirq_us_per_req"] for _, run in runs])
        row["wrk_errors"] = sum(run["errors_total"] for _, run in runs)
        row["disturbed"] = any(run.get("disturbed") for _, run in runs)
        same_round = [(run, reference[rnd]) for rnd, run in runs if rnd in reference]
        ratios = [run["rps"] / ref["rps"] for run, ref in same_round if ref["rps"]]
        row["vs_ceiling"] = _median(ratios)
        row["vs_ceiling_range"] = (min(ratios), max(ratios)) if ratios else None
        row["delta_us"] = _median(
            [
                run["cpu"]["busy_us_per_req"] - ref["cpu"]["busy_us_per_req"]
                for run, ref in same_round
            ]
        )
        row["softirq_delta_us"] = _median(
            [
                run["cpu"]["softirq_us_per_req"] - ref["cpu"]["softirq_us_per_req"]
                for run, ref in same_round
            ]
        )
        rows.append(row)
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(rows: list[dict[str, Json]], args: argparse.Namespace) -> str:
    lines = [
        f"one-arm segment, {args.backends} nginx backends, "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, Connection: close, "
        f"{args.rounds} round(s); medians "
        f"(vs ceiling: min-max over rounds); Δ = minus `{REFERENCE}` of the same round",
        "",
        "| variant | req/s | vs ceiling | CPU µs/conn | Δ µs vs ceiling "
        "| softirq µs/conn (Δ) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-"
        if row["vs_ceiling"] is not None:
            low, high = row["vs_ceiling_range"]
            ratio = f"{row['vs_ceiling']:.1%}"
            if args.rounds > 1:
                ratio += f" ({low:.0%}-{high:.0%})"
        delta = _num(row["delta_us"], "+.1f")
        softirq = f"{_num(row['softirq_us'], '.1f')} ({_num(row['softirq_delta_us'], '+.1f')})"
        mark = " *" if row["disturbed"] else ""
        problems = row["wrk_errors"] if not row["errors"] else f"{row['errors'][0]}"
        lines.append(
            f"| {row['variant']}{mark} | {_num(row['rps'], ',.0f')} | {ratio} | "
            f"{_num(row['cpu_us'], '.1f')} | {delta} | {softirq} | {problems} |"
        )
    if any(row["disturbed"] for row in rows):
        lines += ["", "\\* another tenant used the CPU during that run: figures are suspect"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma list of " + ", ".join(VARIANTS)
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured wrk load")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", type=int, default=2)
    parser.add_argument("--probe-count", type=int, default=200)
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(SETUPS)
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        parser.error("run as root: it creates network namespaces")

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    workdir = Path(tempfile.mkdtemp(prefix="kernlb-dsr-bench-"))
    quiet = quiet_check()
    records: list[dict[str, Json]] = []
    count = 0
    for rnd in range(max(1, args.rounds)):
        print(f"round {rnd + 1}/{args.rounds}: {', '.join(variants)}", flush=True)
        for name in variants:
            count += 1
            tag = f"lbd{os.getpid()}x{count}"
            record = measure(name, tag, args, workdir / f"r{rnd}")
            record["round"] = rnd
            records.append(record)
    rows = summarize(records, variants)
    table = markdown(rows, args)
    print()
    print(table)
    if args.json:
        payload = {"args": vars(args) | {"json": str(args.json)}, "quiet_before": quiet}
        args.json.write_text(json.dumps(payload | {"rows": rows, "records": records}, indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(not row["errors"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
