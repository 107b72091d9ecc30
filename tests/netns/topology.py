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

import difflib
import itertools
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

from app.net import backend_server
from app.net.lab import (
    BuiltOnLab,
    Lab,
    LabCommandError,
    addresses,
    ip_batch,
    netns_snapshot,
    ns_exec,
    stop_process,
    sysctl,
    veth,
    wait_for_line,
    wait_tcp_reachable,
)
from app.net.lab import run as sh

from .nsexec import NetnsExecutor

__all__ = [
    "Backend",
    "CommandError",
    "NetnsExecutor",
    "Topology",
    "nft",
    "ns_exec",
    "sh",
    "stop_process",
    "wait_for_line",
    "wait_tcp_reachable",
]

HERE = Path(__file__).resolve().parent
BACKEND_SERVER = Path(backend_server.__file__)  # also the cluster demo's backends

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


CommandError = LabCommandError


def nft(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run ``nft`` inside a namespace (never the root one)."""
    return sh(ns_exec(ns, "nft", *args), stdin=stdin, check=check).stdout


@dataclass
class Backend:
    name: str
    ns: str
    ip: str
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class LabTopology(BuiltOnLab):
    """What the topologies share: a name prefix (with our PID: other runs coexist), the lab that
    holds their namespaces and processes, and a client and an LB namespace.

    A topology serves all the tests of a module: :meth:`reset` brings it back between tests
    (helpers stopped, stopped backends restarted, conntrack and neighbours flushed in the LB) and
    says whether the namespaces still look as built (addresses, links, routes, nftables tables
    other than kernlb's); if not, :meth:`rebuild` makes new ones (``generation`` counts them).
    """

    workdir: Path
    prefix: str = ""
    backends: dict[str, Backend] = field(default_factory=dict)
    client_exec: NetnsExecutor | None = None
    lab: Lab = field(default_factory=Lab)
    generation: int = 0
    _as_built: str = ""
    backend_tcp_ports: ClassVar[Sequence[int]] = BACKEND_TCP_PORTS
    backend_udp_ports: ClassVar[Sequence[int]] = BACKEND_UDP_PORTS
    _probes: dict[str, NetnsExecutor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prefix:
            self.prefix = self.new_prefix()

    @staticmethod
    def new_prefix() -> str:
        raise NotImplementedError

    @property
    def client(self) -> str:
        return f"{self.prefix}c"

    @property
    def lb(self) -> str:
        return f"{self.prefix}l"

    def _built(self) -> None:
        self._as_built = self.fingerprint()

    def __enter__(self) -> Self:
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def destroy(self) -> None:
        """Stop every process (by PID) and delete every namespace this topology made."""
        self.client_exec = None
        for backend in self.backends.values():
            backend.proc = None
        self.lab.close()

    def fingerprint(self) -> str:
        """Addresses, routes and nftables tables (but kernlb's) of every namespace, over netlink
        from a thread in each (a process per namespace took seconds on a busy machine)."""
        lines = []
        for ns in self.created:
            if ns not in self._probes:
                self._probes[ns] = self.lab.executor(ns)
            lines.append(f"== {ns}")
            lines += self._probes[ns].run(netns_snapshot, skip_tables={"kernlb"})
        return "\n".join(lines)

    def reset(self) -> bool:
        """Undo what a test may do through the harness; True when the namespaces are as built."""
        self._restart_servers()
        sh(ns_exec(self.lb, "conntrack", "-F"), check=False)
        sh(["ip", "-n", self.lb, "neigh", "flush", "all"], check=False)
        now = self.fingerprint()
        if now != self._as_built:
            diff = difflib.unified_diff(self._as_built.splitlines(), now.splitlines(), n=0)
            changed = "\n".join(diff)
            print(f"\nthe test changed the namespaces: rebuilding them\n{changed}")
            return False
        return True

    def _restart_servers(self) -> None:
        stopped = [
            b.name for b in self.backends.values() if b.proc is None or b.proc.poll() is not None
        ]
        for name in stopped:
            proc = self.backends[name].proc
            if proc is not None:
                self.lab.stop(proc)
        if stopped:
            self.start_backends(stopped)

    def start_backends(self, names: Sequence[str] | None = None) -> None:
        """Start the backends' servers: all of them, or those named (to restart stopped ones)."""
        chosen = [self.backends[n] for n in (self.backends if names is None else names)]
        tcp = ",".join(str(p) for p in self.backend_tcp_ports)
        udp = ",".join(str(p) for p in self.backend_udp_ports)
        for backend in chosen:
            backend.proc = self.lab.spawn(
                backend.ns,
                [
                    sys.executable,
                    str(BACKEND_SERVER),
                    f"--name={backend.name}",
                    f"--tcp={tcp}",
                    f"--udp={udp}",
                ],
                log=self.workdir / f"backend-{backend.name}.log",
                stdout_pipe=True,
            )
        for backend in chosen:
            assert backend.proc is not None
            wait_for_line(backend.proc, "ready", timeout=15)

    def rebuild(self) -> None:
        """New namespaces (a new prefix) in place of these, for a test that changed them."""
        self.destroy()
        self.lab = Lab()
        self.backends = {}
        self._probes = {}
        self.prefix = self.new_prefix()
        self.generation += 1
        self.build()


@dataclass
class Topology(LabTopology):
    """Client, LB and three backend namespaces; see the module docstring."""

    lb_exec: NetnsExecutor | None = None
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @staticmethod
    def new_prefix() -> str:
        return f"klb{os.getpid()}x{next(_counter)}"

    def reset(self) -> bool:
        for proc in self.helpers:
            self.lab.stop(proc)
        self.helpers.clear()
        return super().reset()

    def _build(self) -> None:
        client, lb = self.client, self.lb
        for ns in (client, lb, *(f"{self.prefix}{name}" for name in BACKEND_IPS)):
            self.lab.add_netns(ns, no_dad=True, rp_filter=False)

        lb_cmds = [
            *veth("v-c", "v-lb", client),
            "link add br0 type bridge",
            "link set br0 up",
            f"addr add {LB_CLIENT_SIDE_IP}/24 dev v-c",
            f"addr add {LB_BACKEND_SIDE_IP}/24 dev br0",
            f"addr add {LB_CLIENT_SIDE_IP6}/64 dev v-c nodad",
            f"addr add {LB_BACKEND_SIDE_IP6}/64 dev br0 nodad",
            *addresses("br0", LB_SOURCE_IPS, 24),
            # Deprecated (preferred_lft 0): never picked as a source address by the kernel (so
            # masquerade keeps using ::fe), still valid for SNAT and for receiving the replies.
            *addresses("br0", LB_SOURCE_IPS6, 64, extra="nodad preferred_lft 0"),
            *addresses("lo", VIPS, 32),
            *addresses("lo", VIPS6, 128),
        ]
        for name, ip in BACKEND_IPS.items():
            ns = f"{self.prefix}{name}"
            lb_cmds += veth(f"v-{name}", "eth0", ns, master="br0")
            self.backends[name] = Backend(name=name, ns=ns, ip=ip)
        ip_batch(lb, lb_cmds)

        ip_batch(
            client,
            [
                *addresses("v-lb", CLIENT_IPS, 24),
                *addresses("v-lb", CLIENT_IPS6, 64, extra="nodad"),
                "link set v-lb up",
                f"route add 198.18.0.0/24 via {LB_CLIENT_SIDE_IP}",
                f"route add 2001:2::/64 via {LB_CLIENT_SIDE_IP6}",
            ],
        )
        for backend in self.backends.values():
            ip_batch(
                backend.ns,
                [
                    f"addr add {backend.ip}/24 dev eth0",
                    f"addr add {BACKEND_IPS6[backend.name]}/64 dev eth0 nodad",
                    "link set eth0 up",
                    f"route add default via {LB_BACKEND_SIDE_IP}",
                    f"route add default via {LB_BACKEND_SIDE_IP6}",
                ],
            )

        sysctl(lb, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        # The bridge stands in for a plain backend-side interface: keep bridged frames out of
        # the IP hooks so that only routed traffic meets the ruleset, as on a real LB.
        sysctl(
            lb,
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            check=False,
        )

        nft(lb, "-f", "-", stdin=FOREIGN_RULESET)
        self.client_exec = self.lab.executor(client, workers=CLIENT_WORKERS)
        self.lb_exec = self.lab.executor(lb, workers=2)
        self.start_backends()
        self.wait_links_up()

    def spawn(self, ns: str, script: Path, *args: str, log_name: str) -> subprocess.Popen[bytes]:
        """Run a helper server (e.g. ftp_server.py) in a namespace until it prints ``ready``.

        It is stopped by PID in :meth:`destroy` (or earlier with :func:`stop_process`)."""
        proc = self.lab.spawn(
            ns,
            [sys.executable, str(script), *args],
            log=self.workdir / f"{log_name}.log",
            stdout_pipe=True,
        )
        self.helpers.append(proc)
        wait_for_line(proc, "ready", timeout=15)
        return proc

    def stop_backend(self, name: str) -> None:
        """Stop one backend's server (by PID): its ports refuse connections, its links stay."""
        backend = self.backends[name]
        if backend.proc is not None:
            self.lab.stop(backend.proc)
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
        self.lb_exec = None
        self.helpers.clear()
        super().destroy()
