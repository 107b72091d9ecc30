"""Throw-away network namespaces for the traffic tests.

    client ns  v-lb 198.18.1.1-40/24 ──── v-c 198.18.1.254/24  LB ns
                    2001:2:0:1::1-28/64       2001:2:0:1::fe/64
                                                       lo: VIPs 198.18.0.10-12/32
                                                           2001:2::10-12/128
                                                       br0 198.18.2.254/24 (+ .250, .251)
                                                           2001:2:0:2::fe/64 (+ ::fa, ::fb)
                        b1/b2/b3 ns  eth0 198.18.2.1-3/24 ──┘ (v-b1..v-b3 bridged)
                                          2001:2:0:2::1-3/64

Addresses come from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48 (RFC 2544, 5180).
The secondary LB addresses (.250, .251, ::fa, ::fb) are source addresses for SNAT tests; the
kernel never picks them itself (IPv4 secondaries, deprecated IPv6 addresses).
IPv6 addresses are added without duplicate address detection, so they are usable at once.

Every interface is created directly inside its namespace (``ip -n``), so nothing is ever added
to the root namespace and interface names cannot collide between runs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .nsexec import NetnsExecutor

HERE = Path(__file__).resolve().parent
BACKEND_SERVER = HERE / "backend_server.py"

CLIENT_IP = "198.18.1.1"
CLIENT_IPS = tuple(f"198.18.1.{i}" for i in range(1, 41))
LB_CLIENT_SIDE_IP = "198.18.1.254"
LB_BACKEND_SIDE_IP = "198.18.2.254"
VIP1, VIP2, VIP3 = "198.18.0.10", "198.18.0.11", "198.18.0.12"
VIPS = (VIP1, VIP2, VIP3)
BACKEND_IPS = {"b1": "198.18.2.1", "b2": "198.18.2.2", "b3": "198.18.2.3"}
# Extra addresses of the LB on the backend side, e.g. for `source_addr` (SNAT).
LB_SOURCE_IPS = ("198.18.2.250", "198.18.2.251")

# IPv6 (2001:2::/48): the same shape, one /64 per segment, VIPs in 2001:2::/64.
CLIENT_IP6 = "2001:2:0:1::1"
CLIENT_IPS6 = tuple(f"2001:2:0:1::{i:x}" for i in range(1, 41))
LB_CLIENT_SIDE_IP6 = "2001:2:0:1::fe"
LB_BACKEND_SIDE_IP6 = "2001:2:0:2::fe"
VIP6_1, VIP6_2, VIP6_3 = "2001:2::10", "2001:2::11", "2001:2::12"
VIPS6 = (VIP6_1, VIP6_2, VIP6_3)
BACKEND_IPS6 = {"b1": "2001:2:0:2::1", "b2": "2001:2:0:2::2", "b3": "2001:2:0:2::3"}
LB_SOURCE_IPS6 = ("2001:2:0:2::fa", "2001:2:0:2::fb")

BACKEND_TCP_PORTS = (53, 80, 443, 999, 1000, 1500, 2000, 2001, 5000, 8080, 8443, 12345)
BACKEND_UDP_PORTS = (53, 80, 5000, 5353, 12345)

# Foreign tables that kernlb must never touch. Their counters match an address that never
# sends, so the text listing only changes if someone edits the tables.
FOREIGN_RULESET = """
table inet hostfw {
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr 198.19.255.1 counter drop
    }
    chain forward {
        type filter hook forward priority filter + 5; policy accept;
        ip saddr 198.19.255.1 counter drop
    }
}
table ip foo {
    set blocked {
        type ipv4_addr
        elements = { 198.19.255.2, 198.19.255.3 }
    }
    chain pre {
        type filter hook prerouting priority raw; policy accept;
        ip saddr @blocked counter drop
    }
}
"""
FOREIGN_TABLES = (("inet", "hostfw"), ("ip", "foo"))

CLIENT_WORKERS = 12

_counter = itertools.count(1)


class CommandError(subprocess.SubprocessError):
    pass


def sh(
    cmd: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; raise with its stderr when it fails."""
    proc = subprocess.run(
        list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise CommandError(
            f"{' '.join(cmd)} -> rc={proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def ns_exec(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def nft(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run ``nft`` inside a namespace (never the root one)."""
    return sh(ns_exec(ns, "nft", *args), stdin=stdin, check=check).stdout


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps (kills by PID only)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_for_line(proc: subprocess.Popen[bytes], expected: str, *, timeout: float) -> None:
    """Wait until the process prints ``expected`` on stdout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if expected.encode() in seen:
                return
        elif proc.poll() is not None:
            break
    raise RuntimeError(f"process {proc.args!r} not {expected!r} (rc={proc.poll()}): {seen!r}")


def wait_tcp_reachable(ip: str, port: int, *, timeout: float) -> None:
    """Poll until a TCP connect to ip:port is answered (accepted or refused)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return
        except ConnectionRefusedError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Backend:
    name: str
    ns: str
    ip: str
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Topology:
    """Client, LB and three backend namespaces; see the module docstring."""

    workdir: Path
    prefix: str = field(default_factory=lambda: f"klb{os.getpid()}x{next(_counter)}")
    created: list[str] = field(default_factory=list)
    backends: dict[str, Backend] = field(default_factory=dict)
    client_exec: NetnsExecutor | None = None
    lb_exec: NetnsExecutor | None = None
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def client(self) -> str:
        return f"{self.prefix}c"

    @property
    def lb(self) -> str:
        return f"{self.prefix}l"

    def _add_ns(self, name: str) -> None:
        sh(["ip", "netns", "add", name])
        self.created.append(name)
        # Before any interface exists, so that every interface inherits it: no DAD delay.
        sh(ns_exec(name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"))
        sh(ns_exec(name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"))
        sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def build(self) -> None:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _build(self) -> None:
        client, lb = self.client, self.lb
        self._add_ns(client)
        self._add_ns(lb)
        for name in BACKEND_IPS:
            self._add_ns(f"{self.prefix}{name}")

        lb_cmds = [
            f"link add v-c type veth peer name v-lb netns {client}",
            "link add br0 type bridge",
            "link set br0 up",
            f"addr add {LB_CLIENT_SIDE_IP}/24 dev v-c",
            "link set v-c up",
            f"addr add {LB_BACKEND_SIDE_IP}/24 dev br0",
            f"addr add {LB_CLIENT_SIDE_IP6}/64 dev v-c nodad",
            f"addr add {LB_BACKEND_SIDE_IP6}/64 dev br0 nodad",
        ]
        lb_cmds += [f"addr add {ip}/24 dev br0" for ip in LB_SOURCE_IPS]
        # Deprecated (preferred_lft 0): never picked as a source address by the kernel (so
        # masquerade keeps using ::fe), still valid for SNAT and for receiving the replies.
        lb_cmds += [f"addr add {ip}/64 dev br0 nodad preferred_lft 0" for ip in LB_SOURCE_IPS6]
        lb_cmds += [f"addr add {vip}/32 dev lo" for vip in VIPS]
        lb_cmds += [f"addr add {vip}/128 dev lo" for vip in VIPS6]
        for name, ip in BACKEND_IPS.items():
            ns = f"{self.prefix}{name}"
            lb_cmds += [
                f"link add v-{name} type veth peer name eth0 netns {ns}",
                f"link set v-{name} master br0",
                f"link set v-{name} up",
            ]
            self.backends[name] = Backend(name=name, ns=ns, ip=ip)
        sh(["ip", "-n", lb, "-batch", "-"], stdin="\n".join(lb_cmds) + "\n")

        client_cmds = [f"addr add {ip}/24 dev v-lb" for ip in CLIENT_IPS]
        client_cmds += [f"addr add {ip}/64 dev v-lb nodad" for ip in CLIENT_IPS6]
        client_cmds += [
            "link set v-lb up",
            f"route add 198.18.0.0/24 via {LB_CLIENT_SIDE_IP}",
            f"route add 2001:2::/64 via {LB_CLIENT_SIDE_IP6}",
        ]
        sh(["ip", "-n", client, "-batch", "-"], stdin="\n".join(client_cmds) + "\n")

        for backend in self.backends.values():
            cmds = [
                f"addr add {backend.ip}/24 dev eth0",
                f"addr add {BACKEND_IPS6[backend.name]}/64 dev eth0 nodad",
                "link set eth0 up",
                f"route add default via {LB_BACKEND_SIDE_IP}",
                f"route add default via {LB_BACKEND_SIDE_IP6}",
            ]
            sh(["ip", "-n", backend.ns, "-batch", "-"], stdin="\n".join(cmds) + "\n")

        for ns in self.created:
            sh(ns_exec(ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"))
            sh(ns_exec(ns, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"))
        sh(ns_exec(lb, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        sh(ns_exec(lb, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"))
        # The bridge stands in for a plain backend-side interface: keep bridged frames out of
        # the IP hooks so that only routed traffic meets the ruleset, as on a real LB.
        sh(ns_exec(lb, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"), check=False)
        sh(ns_exec(lb, "sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=0"), check=False)

        nft(lb, "-f", "-", stdin=FOREIGN_RULESET)
        self.client_exec = NetnsExecutor(client, workers=CLIENT_WORKERS)
        self.lb_exec = NetnsExecutor(lb, workers=2)
        self.start_backends()
        self.wait_links_up()

    def start_backends(self, names: Sequence[str] | None = None) -> None:
        """Start the backends' servers: all of them, or those named (to restart stopped ones)."""
        chosen = [self.backends[n] for n in (self.backends if names is None else names)]
        tcp = ",".join(str(p) for p in BACKEND_TCP_PORTS)
        udp = ",".join(str(p) for p in BACKEND_UDP_PORTS)
        for backend in chosen:
            log = (self.workdir / f"backend-{backend.name}.log").open("ab")
            try:
                backend.proc = subprocess.Popen(
                    ns_exec(
                        backend.ns,
                        sys.executable,
                        str(BACKEND_SERVER),
                        f"--name={backend.name}",
                        f"--tcp={tcp}",
                        f"--udp={udp}",
                    ),
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                log.close()
        for backend in chosen:
            assert backend.proc is not None
            wait_for_line(backend.proc, "ready", timeout=15)

    def spawn(self, ns: str, script: Path, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        """Run a helper server (e.g. ftp_server.py) in a namespace until it prints ``ready``.

        It is stopped by PID in :meth:`destroy` (or earlier with :func:`stop_process`)."""
        log = (self.workdir / f"{log_name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                ns_exec(ns, sys.executable, str(script), *args),
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        self.helpers.append(proc)
        wait_for_line(proc, "ready", timeout=15)
        return proc

    def stop_backend(self, name: str) -> None:
        """Stop one backend's server (by PID): its ports refuse connections, its links stay."""
        backend = self.backends[name]
        if backend.proc is not None:
            stop_process(backend.proc)
            backend.proc = None

    def wait_links_up(self, timeout: float = 10) -> None:
        """Wait until the LB reaches every backend and the client reaches the LB."""
        assert self.lb_exec is not None and self.client_exec is not None
        for ip in (*BACKEND_IPS.values(), *BACKEND_IPS6.values()):
            self.lb_exec.run(wait_tcp_reachable, ip, 80, timeout=timeout)
        for ip in (LB_CLIENT_SIDE_IP, LB_CLIENT_SIDE_IP6):
            self.client_exec.run(wait_tcp_reachable, ip, 1, timeout=timeout)

    def foreign_tables(self) -> dict[str, str]:
        """Text listing of each foreign table in the LB namespace."""
        return {
            f"{family} {name}": nft(self.lb, "list", "table", family, name)
            for family, name in FOREIGN_TABLES
        }

    def destroy(self) -> None:
        for executor in (self.client_exec, self.lb_exec):
            if executor is not None:
                executor.shutdown()
        self.client_exec = self.lb_exec = None
        for backend in self.backends.values():
            if backend.proc is not None:
                stop_process(backend.proc)
        for proc in self.helpers:
            stop_process(proc)
        self.helpers.clear()
        for ns in reversed(self.created):
            sh(["ip", "netns", "del", ns], check=False)
        self.created.clear()
