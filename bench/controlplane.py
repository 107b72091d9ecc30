#!/usr/bin/env python3
"""Control-plane and data-plane benchmark: kernlb against Debian's nftlb, in the same run.

Not a test: it prints a table (and writes JSON with ``--json``).  Run as root from the repository
root (see bench/README.md):

    python bench/controlplane.py                       # N = 100, 1,000, 10,000 + data plane
    python bench/controlplane.py --sizes 100,1000 --quick --json /tmp/bench.json

For every N (farms with 2 backends each) and for both kernlb and nftlb, each in a private
network namespace created for it:

- load at start-up: kernlb's database is pre-populated (kernlb's own models and migrations),
  then ``python -m app sync`` (one-shot) and ``python -m app serve`` (until it answers) are timed
  in fresh namespaces; nftlb gets the same farms as its JSON configuration, timed as
  ``nftlb -e -c FILE`` (one-shot) and ``nftlb -c FILE`` (until its REST API answers);
- median latency (over ``--reps``) of adding one backend, changing one farm's ports and listing
  every farm through each REST API (kernlb: ZAPI v3.1; nftlb: ``PUT /farms`` / ``GET /farms`` as
  Zevenet sends them), one new TCP connection per request as curl does.

Data plane: client ns -> LB ns (kernlb's ruleset, loaded by ``python -m app sync``) -> backend ns;
the new-connection rate through one farm with 1 farm and with 10,000 farms configured (two
identical topologies loaded at the same time, plus a third routed to a backend without a farm),
reported as the median over the rounds of the ratio 10,000 farms / 1 farm.

Everything happens inside namespaces named ``kb<pid>...``; they are deleted on exit, on errors
and on Ctrl-C / SIGTERM, and every process started is stopped by its PID.  Addresses are taken
from 198.18.0.0/15 only.  The root namespace's ruleset is never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
SRC = REPO  # the kernlb tree under test (--src)
PYTHON = sys.executable
T = TypeVar("T")

ZAPI = "/zapi/v3.1/zapi.cgi"
KERNLB_KEY = "benchkey0123456789"
KERNLB_PORT = 8444
NFTLB_KEY = "HoLa"
NFTLB_PORT = 27001
BACKEND_PORT = 8080
BACKEND_IPS = ("198.19.2.2", "198.19.2.3")  # the 2 backends of every farm (and the data plane)
LB_CLIENT_SIDE, CLIENT_IP = "198.19.1.1", "198.19.1.2"
LB_BACKEND_SIDE = "198.19.2.1"
VIP_ROUTE = "198.18.0.0/16"
BACKEND_NET = "198.19.2.0/24"
POLL = 0.02

# -------------------------------------------------------------------------------------------
# farms


def vip_of(i: int) -> str:
    """Farm i's VIP: 198.18.1.1, 198.18.1.2, ... (250 per /24, up to 64,000 farms)."""
    return f"198.18.{1 + i // 250}.{1 + i % 250}"


def farm_name(i: int) -> str:
    return f"f{i:05d}"


def added_backend_ip(i: int) -> str:
    return f"198.19.3.{1 + i % 250}"


def op_farms(n: int, count: int) -> list[int]:
    """Distinct farm indexes spread over the whole range (for warm-ups + measured requests)."""
    return [(k * n) // count for k in range(count)]


# -------------------------------------------------------------------------------------------
# cleanup: namespaces and processes we created, and only those


class Interrupted(Exception):
    """SIGTERM / SIGHUP: unwind and clean up like Ctrl-C."""


def _load_lab() -> ModuleType:
    """The lab module (app/net/lab.py) of this tree, loaded by path: importing it as `app.net.lab`
    would pin the `app` package to this tree, while populate_kernlb imports the `app` of the tree
    under test (--src), which may be another one."""
    spec = importlib.util.spec_from_file_location("_kernlb_lab", REPO / "app" / "net" / "lab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lab = _load_lab()


class Resources(lab.Lab):  # type: ignore[name-defined,misc]
    """The lab of this run: namespaces ``kb<pid><tag><seq>``, processes in sessions of their own
    (a terminal's Ctrl-C reaches only us; we stop them by PID), run from the tree under test."""

    def __init__(self) -> None:
        super().__init__(new_session=True)
        self.prefix = f"kb{os.getpid()}"
        self._seq = 0

    def new_ns(self, tag: str) -> str:
        self._seq += 1
        name: str = self.add_netns(f"{self.prefix}{tag}{self._seq}")
        return name

    def del_ns(self, name: str) -> None:
        self.delete_netns(name)

    def spawn(  # type: ignore[override]
        self, ns: str, cmd: Sequence[str], *, log: Path | None = None, stdout_pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = super().spawn(
            ns, cmd, log=log, stdout_pipe=stdout_pipe, cwd=SRC
        )
        return proc

    def cleanup(self) -> None:
        self.close(grace=3.0)


run = lab.run


def ns_run(ns: str, *cmd: str, check: bool = True, timeout: float = 60) -> str:
    return run(lab.ns_exec(ns, *cmd), check=check, timeout=timeout, cwd=SRC).stdout


# Python code (HTTP clients) inside a namespace: worker threads that entered it with setns(2).
NsThread = lab.NetnsExecutor


@dataclass
class Reply:
    status: int
    body: bytes
    seconds: float


def http_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    timeout: float = 300,
) -> Reply:
    """One request on a new TCP connection (as curl does); the time includes connect and read."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = dict(headers)
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    return Reply(resp.status, payload, time.perf_counter() - started)


def wait_answer(
    client: NsThread,
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    deadline: float,
    proc: subprocess.Popen[bytes],
) -> bool:
    """Poll until ``GET path`` answers 200; False if the deadline passes or the process died."""

    def attempt() -> int:
        try:
            return http_request(port, "GET", path, headers, timeout=5).status
        except OSError:
            return 0

    while time.monotonic() < deadline:
        if client.run(attempt) == 200:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(POLL)
    return False


# -------------------------------------------------------------------------------------------
# kernlb


def kernlb_url(path: Path) -> str:
    return f"sqlite:///{path}"


def populate_kernlb(db: Path, n: int) -> float:
    """Create kernlb's database (its own migrations) with n farms of 2 backends each.

    Rows go in through kernlb's SQLAlchemy models with one executemany per table: what the API
    would have stored (canonical VIP and vport text, backend ids = marks), in a second or two.
    """
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from sqlalchemy import insert

    from app.db.models import Backend, Farm
    from app.db.session import make_engine, migrate
    from app.domain.rules import format_vport, parse_vport

    started = time.perf_counter()
    if db.exists():
        db.unlink()
    url = kernlb_url(db)
    migrate(url)
    vport = format_vport(parse_vport("80"))
    farms = [
        {
            "id": i + 1,
            "name": farm_name(i),
            "profile": "l4xnat",
            "vip": vip_of(i),
            "vport": vport,
            "protocol": "tcp",
            "algorithm": "weight",
            "nattype": "nat",
            "persistence": "",
            "ttl": 60,
            "running": True,
        }
        for i in range(n)
    ]
    backends = [
        {
            "id": 2 * i + j + 1,
            "farm_id": i + 1,
            "zapi_id": j,
            "ip": BACKEND_IPS[j],
            "port": BACKEND_PORT,
            "weight": 1,
            "priority": 1,
        }
        for i in range(n)
        for j in range(2)
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(Farm), farms)
            conn.execute(insert(Backend), backends)
    finally:
        engine.dispose()
    return time.perf_counter() - started


def kernlb_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "app", *args]


def kernlb_sync(ns: str, db: Path, state: Path, timeout: float) -> float:
    started = time.perf_counter()
    out = ns_run(
        ns,
        *kernlb_cmd("sync", "--db", kernlb_url(db), "--state-dir", str(state)),
        timeout=timeout,
    )
    elapsed = time.perf_counter() - started
    if "kernel in sync" not in out:
        raise RuntimeError(f"kernlb sync: unexpected output {out!r}")
    return elapsed


def kernlb_farm_chains(ns: str) -> int:
    listing = ns_run(ns, "nft", "list", "chains", "inet", check=False, timeout=120)
    return sum(1 for line in listing.splitlines() if line.strip().startswith("chain f-"))


# -------------------------------------------------------------------------------------------
# nftlb


def nftlb_farm(i: int) -> dict[str, Any]:
    return {
        "name": farm_name(i),
        "family": "ipv4",
        "virtual-addr": vip_of(i),
        "virtual-ports": "80",
        "mode": "snat",
        "protocol": "tcp",
        "scheduler": "weight",
        "state": "up",
        "backends": [nftlb_backend(j, BACKEND_IPS[j]) for j in range(2)],
    }


def nftlb_backend(index: int, ip: str) -> dict[str, str]:
    return {
        "name": f"bck{index}",
        "ip-addr": ip,
        "port": str(BACKEND_PORT),
        "weight": "1",
        "priority": "1",
        "state": "up",
    }


def write_nftlb_config(path: Path, n: int) -> None:
    path.write_text(json.dumps({"farms": [nftlb_farm(i) for i in range(n)]}))


def nftlb_farm_chains(ns: str) -> int:
    listing = ns_run(ns, "nft", "list", "chains", "ip", check=False, timeout=120)
    return sum(1 for line in listing.splitlines() if line.strip().startswith("chain filter-f"))


# -------------------------------------------------------------------------------------------
# measurements


@dataclass
class OpResult:
    samples_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu_s: float | None = None  # the server's CPU over the measured requests

    @property
    def median_ms(self) -> float | None:
        return statistics.median(self.samples_ms) if self.samples_ms else None

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.samples_ms:
            return None
        return self.server_cpu_s * 1000 / len(self.samples_ms)

    def as_json(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "samples_ms": [round(s, 3) for s in self.samples_ms],
            "server_cpu_ms_per_request": self.cpu_ms_per_request,
            "errors": self.errors,
        }


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process, every thread (proc(5) fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class SystemResult:
    """One system (kernlb or nftlb) at one size."""

    load_oneshot_s: float | None = None
    load_serve_s: float | None = None
    load_note: str = ""
    farms_loaded: int | None = None
    ops: dict[str, OpResult] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "load_oneshot_s": self.load_oneshot_s,
            "load_serve_s": self.load_serve_s,
            "load_note": self.load_note,
            "farms_loaded": self.farms_loaded,
            "ops": {k: v.as_json() for k, v in self.ops.items()},
            **self.extra,
        }


OPS = ("add_backend", "put_vport", "get_farms")
OP_LABELS = {
    "add_backend": "add one backend",
    "put_vport": "change one farm's ports",
    "get_farms": "GET /farms (all farms)",
}


def measure_ops(
    client: NsThread,
    n: int,
    reps: int,
    warmup: int,
    request: Callable[[str, int, int], Reply],
    ok: Callable[[Reply], bool],
    server_pid: int | None = None,
) -> dict[str, OpResult]:
    """``request(op, farm_index, k)``; warm-ups first, then ``reps`` measured requests.  With
    ``server_pid``, the server's CPU time over the measured requests is recorded too (less
    sensitive than latency to what else the machine runs)."""
    results: dict[str, OpResult] = {}
    targets = op_farms(n, warmup + reps)
    for op in OPS:
        result = OpResult()
        cpu_start = None
        for k, farm in enumerate(targets):
            if k == warmup and server_pid is not None:
                cpu_start = process_cpu_s(server_pid)
            reply = client.run(request, op, farm, k)
            if not ok(reply):
                result.errors.append(f"{reply.status}: {reply.body[:200]!r}")
                if len(result.errors) > 3:
                    break
                continue
            if k >= warmup:
                result.samples_ms.append(reply.seconds * 1000)
        if cpu_start is not None and server_pid is not None:
            result.server_cpu_s = process_cpu_s(server_pid) - cpu_start
        results[op] = result
    return results


def bench_kernlb(
    res: Resources, work: Path, n: int, args: argparse.Namespace, log: Callable[[str], None]
) -> SystemResult:
    result = SystemResult()
    db = work / f"kernlb-{n}.db"
    state = work / f"kernlb-state-{n}"
    state.mkdir(exist_ok=True)
    result.extra["populate_s"] = populate_kernlb(db, n)
    log(f"kernlb N={n}: database populated in {result.extra['populate_s']:.2f} s")

    # (a) one-shot load: `kernlb sync` in a fresh namespace
    ns = res.new_ns("ks")
    try:
        result.load_oneshot_s = kernlb_sync(ns, db, state, timeout=args.load_timeout)
        result.farms_loaded = kernlb_farm_chains(ns)
    finally:
        res.del_ns(ns)
    log(f"kernlb N={n}: sync {result.load_oneshot_s:.2f} s, {result.farms_loaded} farm chains")

    # (a') server start until it answers, then (b)-(d) through the API
    ns = res.new_ns("kd")
    client = res.executor(ns)
    try:
        cmd = lab.kernlb_serve_argv(
            port=KERNLB_PORT,
            db=db,
            state_dir=state,
            resync_interval=0,
            key=KERNLB_KEY,
            extra=["--no-vip-check"],
        )
        headers = {"ZAPI_KEY": KERNLB_KEY}
        started = time.perf_counter()
        proc = res.spawn(ns, cmd, log=work / f"kernlb-serve-{n}.log")
        deadline = time.monotonic() + args.load_timeout
        if not wait_answer(
            client, KERNLB_PORT, f"{ZAPI}/system/version", headers, deadline=deadline, proc=proc
        ):
            result.load_note = "kernlb serve did not answer"
            return result
        result.load_serve_s = time.perf_counter() - started
        log(f"kernlb N={n}: serve answered after {result.load_serve_s:.2f} s")

        def request(op: str, farm: int, k: int) -> Reply:
            name = farm_name(farm)
            if op == "add_backend":
                body = {"ip": added_backend_ip(k), "port": BACKEND_PORT}
                return http_request(
                    KERNLB_PORT, "POST", f"{ZAPI}/farms/{name}/backends", headers, body
                )
            if op == "put_vport":
                return http_request(
                    KERNLB_PORT, "PUT", f"{ZAPI}/farms/{name}", headers, {"vport": "81"}
                )
            return http_request(KERNLB_PORT, "GET", f"{ZAPI}/farms", headers)

        def ok(reply: Reply) -> bool:
            return 200 <= reply.status < 300

        result.ops = measure_ops(
            client, n, args.reps, args.warmup, request, ok, server_pid=proc.pid
        )
        listing = client.run(http_request, KERNLB_PORT, "GET", f"{ZAPI}/farms", headers)
        result.extra["get_farms_bytes"] = len(listing.body)
        result.extra["get_farms_count"] = len(json.loads(listing.body).get("params", []))
    finally:
        client.shutdown()
        res.del_ns(ns)
    return result


def bench_nftlb(
    res: Resources, work: Path, n: int, args: argparse.Namespace, log: Callable[[str], None]
) -> SystemResult:
    result = SystemResult()
    config = work / f"nftlb-{n}.json"
    write_nftlb_config(config, n)

    # (a) one-shot load: `nftlb -e -c FILE` (load the configuration, do not serve)
    ns = res.new_ns("ns")
    try:
        started = time.perf_counter()
        proc = res.spawn(
            ns, ["nftlb", "-e", "-k", NFTLB_KEY, "-c", str(config)], log=work / f"nftlb-{n}.log"
        )
        try:
            proc.wait(timeout=args.nftlb_timeout)
            elapsed = time.perf_counter() - started
        except subprocess.TimeoutExpired:
            elapsed = None
        res.stop(proc)
        result.farms_loaded = nftlb_farm_chains(ns)
        if elapsed is None:
            result.load_note = (
                f"did not finish within {args.nftlb_timeout:.0f} s "
                f"({result.farms_loaded} of {n} farms in the kernel when stopped)"
            )
        else:
            result.load_oneshot_s = elapsed
            if proc.returncode != 0 or result.farms_loaded != n:
                result.load_note = (
                    f"exited rc={proc.returncode} after {elapsed:.1f} s "
                    f"with {result.farms_loaded} of {n} farms loaded"
                )
                result.load_oneshot_s = None
                result.extra["load_failed_after_s"] = elapsed
    finally:
        res.del_ns(ns)
    log(f"nftlb N={n}: one-shot load {_fmt_s(result.load_oneshot_s)} {result.load_note}")
    if result.load_oneshot_s is None:
        return result

    # (a') daemon start with the configuration until the API answers, then (b)-(d)
    ns = res.new_ns("nd")
    client = res.executor(ns)
    try:
        headers = {"Key": NFTLB_KEY}
        cmd = [
            "nftlb",
            "-H",
            "127.0.0.1",
            "-P",
            str(NFTLB_PORT),
            "-k",
            NFTLB_KEY,
            "-c",
            str(config),
        ]
        started = time.perf_counter()
        proc = res.spawn(ns, cmd, log=work / f"nftlb-serve-{n}.log")
        deadline = time.monotonic() + args.nftlb_timeout
        if not wait_answer(
            client, NFTLB_PORT, f"/farms/{farm_name(0)}", headers, deadline=deadline, proc=proc
        ):
            result.load_note = f"the daemon did not answer within {args.nftlb_timeout:.0f} s"
            return result
        result.load_serve_s = time.perf_counter() - started
        log(f"nftlb N={n}: daemon answered after {result.load_serve_s:.2f} s")

        def request(op: str, farm: int, k: int) -> Reply:
            name = farm_name(farm)
            if op == "add_backend":
                backend = nftlb_backend(2, added_backend_ip(k))
                body = {"farms": [{"name": name, "backends": [backend]}]}
                return http_request(NFTLB_PORT, "PUT", "/farms", headers, body)
            if op == "put_vport":
                body = {"farms": [{"name": name, "virtual-ports": "81"}]}
                return http_request(NFTLB_PORT, "PUT", "/farms", headers, body)
            return http_request(NFTLB_PORT, "GET", "/farms", headers)

        def ok(reply: Reply) -> bool:
            if not 200 <= reply.status < 300:
                return False
            if b"success" in reply.body[:100]:
                return True
            try:
                return "farms" in json.loads(reply.body)
            except ValueError:
                return False

        result.ops = measure_ops(
            client, n, args.reps, args.warmup, request, ok, server_pid=proc.pid
        )
        listing = client.run(http_request, NFTLB_PORT, "GET", "/farms", headers)
        result.extra["get_farms_bytes"] = len(listing.body)
        result.extra["get_farms_count"] = len(json.loads(listing.body).get("farms", []))
    finally:
        client.shutdown()
        res.del_ns(ns)
    return result


# -------------------------------------------------------------------------------------------
# data plane


def serve_backend(port: int) -> None:
    """Hidden mode `_server`: accept and close at once (SO_REUSEPORT: run several)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(4096)
    print("ready", flush=True)
    while True:
        conn, _ = sock.accept()
        conn.close()


def generate_load(target: str, port: int, start_at: float, duration: float) -> None:
    """Hidden mode `_loadgen`: short TCP connections for `duration` s; prints JSON counts.

    Each connection: connect, wait for the server's close, close with SO_LINGER 0 (RST), so no
    TIME_WAIT socket holds a port on either side.
    """
    linger = struct.pack("ii", 1, 0)
    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    ok = errors = 0
    begin = time.monotonic()
    end = begin + duration
    while time.monotonic() < end:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.settimeout(2.0)
        try:
            sock.connect((target, port))
            sock.recv(1)
            ok += 1
        except OSError:
            errors += 1
        finally:
            sock.close()
    print(json.dumps({"ok": ok, "errors": errors, "seconds": time.monotonic() - begin}))


def self_cmd(*args: str) -> list[str]:
    return [PYTHON, str(Path(__file__).resolve()), *args]


@dataclass
class DataPlaneResult:
    farms_large: int = 10_000
    # "direct": no farm, the client connects to a backend routed through the LB namespace;
    # "small": through farm 0 with 1 farm configured; "large": the same farm among many.
    rates: dict[str, list[float]] = field(
        default_factory=lambda: {"direct": [], "small": [], "large": []}
    )
    errors: dict[str, int] = field(default_factory=lambda: {"direct": 0, "small": 0, "large": 0})
    sync_s: dict[str, list[float]] = field(default_factory=lambda: {"small": [], "large": []})
    round_ratios: list[float] = field(default_factory=list)  # large / small, per round

    def median(self, key: str) -> float | None:
        return statistics.median(self.rates[key]) if self.rates[key] else None

    @property
    def ratio(self) -> float | None:
        """Median over the rounds of large / small, both measured at the same time."""
        return statistics.median(self.round_ratios) if self.round_ratios else None

    def as_json(self) -> dict[str, Any]:
        return {
            "farms_small": 1,
            "farms_large": self.farms_large,
            "rates_per_s": self.rates,
            "median_per_s": {key: self.median(key) for key in self.rates},
            "round_ratios_large_over_small": self.round_ratios,
            "ratio_large_over_small": self.ratio,
            "errors": self.errors,
            "sync_s": self.sync_s,
        }


@dataclass
class Topology:
    """client ns -> LB ns (VIP on lo) -> backend ns (both backend addresses), one of each."""

    client: str
    lb: str
    backend: str
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def build_topology(res: Resources, tag: str, servers: int) -> Topology:
    topo = Topology(res.new_ns(f"{tag}c"), res.new_ns(f"{tag}l"), res.new_ns(f"{tag}b"))
    lab.ip_batch(
        topo.lb,
        [
            *lab.veth("c0", "c1", topo.client),
            *lab.veth("b0", "b1", topo.backend),
            f"addr add {LB_CLIENT_SIDE}/24 dev c0",
            f"addr add {LB_BACKEND_SIDE}/24 dev b0",
            f"addr add {vip_of(0)}/32 dev lo",
        ],
    )
    lab.ip_batch(
        topo.client,
        [
            f"addr add {CLIENT_IP}/24 dev c1",
            "link set c1 up",
            f"route add {VIP_ROUTE} via {LB_CLIENT_SIDE}",
            f"route add {BACKEND_NET} via {LB_CLIENT_SIDE}",
        ],
    )
    lab.ip_batch(
        topo.backend,
        [
            *lab.addresses("b1", BACKEND_IPS, 24),
            "link set b1 up",
            f"route add default via {LB_BACKEND_SIDE}",
        ],
    )
    lab.sysctl(topo.lb, "net.ipv4.ip_forward=1")
    # Short-lived connections leave CLOSE/TIME_WAIT conntrack entries: let them go quickly so
    # that every trial starts from a similar conntrack table.
    lab.sysctl(
        topo.lb,
        *(
            f"net.netfilter.nf_conntrack_tcp_timeout_{key}=1"
            for key in ("close", "time_wait", "fin_wait", "close_wait", "last_ack")
        ),
        check=False,
    )
    for _ in range(servers):
        cmd = self_cmd("_server", "--port", str(BACKEND_PORT))
        proc = res.spawn(topo.backend, cmd, stdout_pipe=True)
        topo.servers.append(proc)
        assert proc.stdout is not None
        if b"ready" not in proc.stdout.readline():
            raise RuntimeError("data-plane backend server did not start")
    return topo


def bench_dataplane(
    res: Resources, work: Path, args: argparse.Namespace, log: Callable[[str], None]
) -> DataPlaneResult:
    """Two identical topologies, one LB with 1 farm and one with N, loaded at the same time.

    In each round, load generators for three targets run concurrently for the same seconds:
    a backend routed directly (no farm), the farm of the 1-farm LB and the same farm of the
    N-farm LB.  Each gets the same number of processes, so the machine's CPU is shared alike
    and whatever else runs on the machine slows all three equally: the ratio of their rates
    measures their relative cost per connection even on a busy machine.
    """
    result = DataPlaneResult(farms_large=args.dp_farms)
    state = work / "dp-state"
    state.mkdir(exist_ok=True)
    topos: dict[str, Topology] = {}
    # "direct" gets a topology of its own (with the 1-farm ruleset, unused by its traffic), so
    # that the three targets have the same client, LB and backend resources.
    for key, farms in (("direct", 1), ("small", 1), ("large", args.dp_farms)):
        db = work / f"dp-{farms}.db"
        if not db.exists():
            populate_kernlb(db, farms)
        topos[key] = topo = build_topology(res, key[0], args.dp_servers)
        seconds = kernlb_sync(topo.lb, db, state, timeout=args.load_timeout)
        if key in result.sync_s:
            result.sync_s[key].append(seconds)
        chains = kernlb_farm_chains(topo.lb)
        if chains != farms:
            raise RuntimeError(f"data plane: {chains} farm chains in the LB, expected {farms}")
        log(f"data plane: LB for {key!r} with {farms} farms loaded in {seconds:.2f} s")

    def targets(key: str) -> tuple[Topology, str, int]:
        if key == "direct":
            return topos["direct"], BACKEND_IPS[0], BACKEND_PORT
        return topos[key], vip_of(0), 80

    def trial(keys: Sequence[str], duration: float) -> dict[str, tuple[float, int]]:
        """Load generators for every key at once, all starting at the same instant."""
        start_at = time.time() + 1.0
        procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        for key in keys:
            topo, target, port = targets(key)
            cmd = self_cmd(
                "_loadgen",
                "--target",
                target,
                "--port",
                str(port),
                "--start-at",
                f"{start_at:.3f}",
                "--duration",
                str(duration),
            )
            procs += [
                (key, res.spawn(topo.client, cmd, stdout_pipe=True)) for _ in range(args.dp_clients)
            ]
        totals = {key: [0, 0, 0.0] for key in keys}
        for key, proc in procs:
            try:
                out, _ = proc.communicate(timeout=duration + 30)
            except subprocess.TimeoutExpired:
                res.stop(proc)
                raise RuntimeError("a load generator did not finish") from None
            res.stop(proc)
            counts = json.loads(out.decode().strip().splitlines()[-1])
            total = totals[key]
            total[0] += counts["ok"]
            total[1] += counts["errors"]
            total[2] = max(total[2], counts["seconds"])
        return {key: (t[0] / t[2], int(t[1])) for key, t in totals.items()}

    labels = {"direct": "no farm, direct", "small": "1 farm", "large": f"{args.dp_farms} farms"}
    keys = ("direct", "small", "large")
    for rnd in range(args.dp_rounds):
        for topo in topos.values():
            run(["ip", "netns", "exec", topo.lb, "conntrack", "-F"], check=False)
        time.sleep(1.0)  # conntrack timeouts, CPU
        trial(keys, min(1.0, args.dp_duration))  # warm-up, not counted
        rates = trial(keys, args.dp_duration)
        for key, (rate, errors) in rates.items():
            result.rates[key].append(rate)
            result.errors[key] += errors
        result.round_ratios.append(rates["large"][0] / rates["small"][0])
        log(
            f"data plane round {rnd + 1}: "
            + ", ".join(f"{labels[k]} {rates[k][0]:,.0f}/s" for k in keys)
            + f"; ratio {result.round_ratios[-1]:.3f}"
        )
    for topo in topos.values():
        for name in (topo.client, topo.lb, topo.backend):
            res.del_ns(name)
    return result


# -------------------------------------------------------------------------------------------
# report


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3f}" if a / b < 0.1 else f"{a / b:.2f}"


def _load_cells(k: float | None, f: SystemResult | None, timeout: float) -> tuple[str, str]:
    """nftlb's cell and the ratio for a load time (nftlb may have timed out or failed)."""
    if f is None:
        return "not run", "-"
    value = f.load_oneshot_s if k is not None else None
    if f.load_oneshot_s is None:
        if "did not finish" in f.load_note:
            return f"> {timeout:.0f} s", (f"< {k / timeout:.3f}" if k is not None else "-")
        return "failed", "-"
    return _fmt_s(f.load_oneshot_s), _ratio(k, value)


def report(
    sizes: list[int],
    results: dict[int, dict[str, SystemResult]],
    dataplane: DataPlaneResult | None,
    args: argparse.Namespace,
    loadavg: tuple[float, float],
) -> str:
    lines: list[str] = []
    width = (7, 36, 11, 11, 8)

    def row(*cells: str) -> None:
        text = "  ".join(
            cell.ljust(w) if i == 1 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, width, strict=True))
        )
        lines.append(text.rstrip())

    if sizes:
        lines.append(
            f"kernlb vs nftlb control plane: farms with 2 backends each; latencies are medians of "
            f"{args.reps} requests (new TCP connection each)."
        )
        lines.append("ratio = kernlb / nftlb: below 1 means kernlb is faster.")
        lines.append("")
        row("farms", "operation", "kernlb", "nftlb", "ratio")
        row("-" * 7, "-" * 36, "-" * 11, "-" * 11, "-" * 8)
        notes: list[str] = []
        for n in sizes:
            k = results[n].get("kernlb") or SystemResult()
            f = results[n].get("nftlb")
            cell, ratio = _load_cells(k.load_oneshot_s, f, args.nftlb_timeout)
            row(
                f"{n:,}",
                "load all, one-shot (sync | nftlb -e)",
                _fmt_s(k.load_oneshot_s),
                cell,
                ratio,
            )
            if f is not None and f.load_oneshot_s is None:
                serve_cell = "not run"
            else:
                serve_cell = "not run" if f is None else _fmt_s(f.load_serve_s)
            row(
                "",
                "server start until its API answers",
                _fmt_s(k.load_serve_s),
                serve_cell,
                _ratio(k.load_serve_s, f.load_serve_s if f else None),
            )
            for op in OPS:
                kv = k.ops.get(op, OpResult()).median_ms
                fv = f.ops.get(op, OpResult()).median_ms if f else None
                missing = "not run" if f is None or f.load_serve_s is None else "-"
                row(
                    "",
                    OP_LABELS[op],
                    _fmt_ms(kv),
                    _fmt_ms(fv) if fv is not None else missing,
                    _ratio(kv, fv),
                )
                kc = k.ops.get(op, OpResult()).cpu_ms_per_request
                fc = f.ops.get(op, OpResult()).cpu_ms_per_request if f else None
                if kc is not None or fc is not None:
                    row(
                        "",
                        "  server CPU per request",
                        _fmt_ms(kc),
                        _fmt_ms(fc) if fc is not None else missing,
                        _ratio(kc, fc),
                    )
            for name, sysres in (("kernlb", k), ("nftlb", f)):
                if sysres is None:
                    continue
                if sysres.load_note:
                    notes.append(f"N={n:,}: {name}: {sysres.load_note}")
                for op in OPS:
                    errs = sysres.ops.get(op, OpResult()).errors
                    if errs:
                        notes.append(f"N={n:,}: {name} {op}: {len(errs)} failed, first: {errs[0]}")
            lines.append("")
        if notes:
            lines.append("Notes:")
            lines.extend(f"- {note}" for note in notes)
            lines.append("")
    if dataplane is not None:
        lines.append(
            "Data plane: new TCP connections per second through kernlb (client ns -> LB ns -> "
            f"backend ns). {args.dp_clients} client processes per target, the three targets "
            f"loaded at the same time, {args.dp_duration:g} s per round, median of "
            f"{args.dp_rounds} rounds:"
        )
        labels = {
            "direct": "no farm: routed to a backend directly",
            "small": "through a farm, 1 farm configured",
            "large": f"through the same farm, {dataplane.farms_large:,} farms configured",
        }
        for key, label in labels.items():
            median = dataplane.median(key)
            rounds = ", ".join(f"{r:,.0f}" for r in dataplane.rates[key])
            value = "-" if median is None else f"{median:,.0f}/s"
            lines.append(f"  {label:<52} {value:>9}   (rounds: {rounds})")
        dp_ratio = dataplane.ratio
        verdict = "" if dp_ratio is None else ("  OK" if dp_ratio >= 0.9 else "  BELOW TARGET")
        per_round = ", ".join(f"{r:.3f}" for r in dataplane.round_ratios)
        lines.append(f"  per-round ratio {dataplane.farms_large:,} farms / 1 farm: {per_round}")
        lines.append(
            f"  ratio {dataplane.farms_large:,} farms / 1 farm (median of the rounds): "
            f"{'-' if dp_ratio is None else f'{dp_ratio:.3f}'} (target >= 0.90){verdict}; "
            f"failed connections: {sum(dataplane.errors.values())}"
        )
        lines.append("")
    lines.append(
        f"Machine: {os.cpu_count()} CPUs, load average {loadavg[0]:.2f} at start, "
        f"{loadavg[1]:.2f} at end."
    )
    if max(loadavg) > 1.5:
        lines.append(
            "WARNING: the machine was busy with other work during the run; the figures are "
            "inflated and noisy."
        )
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------
# main


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    if not sizes or any(s < 1 or s > 60_000 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be between 1 and 60000")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[100, 1000, 10000],
        help="farm counts, comma-separated (default 100,1000,10000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="5 requests per operation; 2 data-plane rounds of 2 s trials",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--reps", type=int, help="measured requests per operation (20)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests first (2)")
    parser.add_argument("--no-nftlb", action="store_true", help="skip nftlb")
    parser.add_argument("--no-dataplane", action="store_true", help="skip the data plane")
    parser.add_argument("--no-controlplane", action="store_true", help="skip the control plane")
    parser.add_argument(
        "--nftlb-timeout",
        type=float,
        default=120.0,
        help="give up on an nftlb load after this many seconds (120)",
    )
    parser.add_argument(
        "--load-timeout",
        type=float,
        default=300.0,
        help="give up on a kernlb load after this many seconds (300)",
    )
    parser.add_argument(
        "--dp-farms",
        type=int,
        default=10_000,
        help="farms configured in the large data-plane case (10000)",
    )
    parser.add_argument("--dp-duration", type=float, help="seconds per data-plane trial (5)")
    parser.add_argument("--dp-rounds", type=int, help="data-plane rounds: 1 farm, N farms (6)")
    parser.add_argument("--dp-clients", type=int, default=3, help="client processes (3)")
    parser.add_argument("--dp-servers", type=int, default=2, help="backend processes (2)")
    parser.add_argument("--workdir", type=Path, help="keep databases, configs and logs here")
    parser.add_argument(
        "--src",
        type=Path,
        default=REPO,
        help="kernlb source tree to benchmark (default: this repository)",
    )
    return parser


def helper_main(argv: list[str]) -> int:
    """Hidden modes used inside the data-plane namespaces."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("_server", "_loadgen"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", default="")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=1.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.mode == "_server":
        serve_backend(args.port)
    else:
        generate_load(args.target, args.port, args.start_at, min(args.duration, 600.0))
    return 0


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C, even when started from a shell that made background jobs ignore SIGINT.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        return helper_main(argv)
    args = build_parser().parse_args(argv)
    global SRC
    SRC = args.src.resolve()
    if not (SRC / "app" / "__main__.py").exists():
        print(f"controlplane.py: no kernlb tree at {SRC}", file=sys.stderr)
        return 2
    args.reps = args.reps or (5 if args.quick else 20)
    args.dp_duration = args.dp_duration or (2.0 if args.quick else 5.0)
    args.dp_rounds = args.dp_rounds or (2 if args.quick else 6)
    if os.geteuid() != 0:
        print("controlplane.py: run as root (network namespaces)", file=sys.stderr)
        return 2
    if not args.no_nftlb and shutil.which("nftlb") is None:
        print(
            "controlplane.py: nftlb not found (apt-get install nftlb) or use --no-nftlb",
            file=sys.stderr,
        )
        return 2

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    res = Resources()
    tmp = None
    if args.workdir is not None:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="kernlb-bench-")
        work = Path(tmp.name)
    results: dict[int, dict[str, SystemResult]] = {}
    dataplane: DataPlaneResult | None = None
    complete = False
    started = time.time()
    load_start = os.getloadavg()[0]
    try:
        with signals_as_exceptions():
            if not args.no_controlplane:
                for n in args.sizes:
                    results[n] = {"kernlb": bench_kernlb(res, work, n, args, log)}
                    if not args.no_nftlb:
                        results[n]["nftlb"] = bench_nftlb(res, work, n, args, log)
            if not args.no_dataplane:
                dataplane = bench_dataplane(res, work, args, log)
            complete = True
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({type(exc).__name__} {exc}); cleaning up")
    finally:
        res.cleanup()
        sizes = [n for n in args.sizes if n in results]
        loadavg = (load_start, os.getloadavg()[0])
        if sizes or dataplane is not None:
            print(report(sizes, results, dataplane, args, loadavg))
        if args.json is not None:
            payload = {
                "complete": complete,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                "duration_s": round(time.time() - started, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "kernel": os.uname().release,
                    "loadavg_start_end": loadavg,
                },
                "kernlb_src": str(SRC),
                "kernlb_commit": _git_commit(SRC),
                "nftlb_version": _nftlb_version() if not args.no_nftlb else None,
                "settings": {
                    "reps": args.reps,
                    "warmup": args.warmup,
                    "nftlb_timeout_s": args.nftlb_timeout,
                    "dp_duration_s": args.dp_duration,
                    "dp_rounds": args.dp_rounds,
                    "dp_clients": args.dp_clients,
                },
                "controlplane": {
                    str(n): {name: r.as_json() for name, r in results[n].items()} for n in sizes
                },
                "dataplane": dataplane.as_json() if dataplane is not None else None,
            }
            args.json.write_text(json.dumps(payload, indent=1) + "\n")
        if tmp is not None:
            tmp.cleanup()
    return 0 if complete else 1


def _git_commit(path: Path) -> str | None:
    proc = run(["git", "-C", str(path), "rev-parse", "HEAD"], check=False)
    return proc.stdout.strip() or None


def _nftlb_version() -> str:
    proc = run(["nftlb", "-h"], check=False)
    out = proc.stdout + proc.stderr
    first = next((line for line in out.splitlines() if "Version" in line), "")
    return first.split("Version")[-1].strip()


if __name__ == "__main__":
    sys.exit(main())
