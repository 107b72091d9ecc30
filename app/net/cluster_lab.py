"""Two kernlb nodes with keepalived and conntrackd: the cluster traffic tests' lab and
`kernlb demo --cluster`'s.

    cli 198.18.20.2 ── br-front ── lb1 f0 .20.11 / lb2 f0 .20.12   VIP 198.18.20.100 (VRRP)
                                   lb1 s0 198.18.22.1/30 ═══ lb2 s0 .22.2/30 (conntrackd)
    b1 .21.21, b2 .21.22 ── br-back ── lb1 b0 .21.11 / lb2 b0 .21.12  gateway VIP .21.1 (VRRP)

The bridges live in a switch namespace.  Farms are `dnat` (no SNAT): the backends answer
through the floating gateway, which moves with the front VIP (one VRRP sync group), so the
master also gets the replies.  Every node: `kernlb serve` (its own state directory, the shared
PostgreSQL), then keepalived and conntrackd on the files kernlb rendered.  As in
../shared/spec/ha-notes.md: per-node pid/lock/socket files, SIGKILL = SIGSTOP both keepalived
processes then SIGKILL them.

How kernlb itself is run is the caller's: `server_factory(ns, state_dir, env)` makes a node's
server object (the tests' `KernlbServer`, the demo's own), from the KERNLB_* settings `env`.
Everything else (namespaces, processes, threads) belongs to an :class:`app.net.lab.Lab` and is
removed, by PID, by :meth:`ClusterLab.destroy`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from app.net import backend_server
from app.net.lab import (
    BuiltOnLab,
    Lab,
    NetnsExecutor,
    ip_batch,
    ns_exec,
    run,
    sysctl,
    veth,
    wait_for_line,
)

VIP = "198.18.20.100"
GATEWAY = "198.18.21.1"
CLIENT = "198.18.20.2"
CLIENT_SOURCES = tuple(f"198.18.20.{i}" for i in range(2, 10))
BACKENDS = {"b1": "198.18.21.21", "b2": "198.18.21.22"}
BACKEND_TCP_PORTS = (80, 81)
ADVERT = 0.5  # seconds (VRRPv3): takeover after a silent failure in ~1.5-1.8 s


class Server(Protocol):
    """A node's kernlb: started (ready to answer) and stopped by the caller's code."""

    def start(self, *, timeout: float) -> None: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=Server)


@dataclass
class LbNode(Generic[S]):
    name: str  # lb1 | lb2
    ns: str
    index: int  # 1 | 2
    priority: int
    state_dir: Path
    env: dict[str, str]  # the node's KERNLB_* settings
    server: S
    lab: Lab
    keepalived: subprocess.Popen[bytes] | None = None
    conntrackd: subprocess.Popen[bytes] | None = None

    @property
    def front(self) -> str:
        return f"198.18.20.1{self.index}"

    @property
    def back(self) -> str:
        return f"198.18.21.1{self.index}"

    def holds_vip(self) -> bool:
        out = run(ns_exec(self.ns, "ip", "-4", "-o", "addr", "show", "dev", "f0"), check=False)
        return f" {VIP}/" in out.stdout

    def vrrp_state(self) -> str:
        try:
            return (self.state_dir / "vrrp_state").read_text().strip()
        except FileNotFoundError:
            return ""

    def start_keepalived(self) -> int:
        """keepalived in the foreground (its PID is ours to signal) on kernlb's rendered file."""
        # The role a killed keepalived last reported is stale: the hook writes the new one.
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "vrrp_state").unlink()
        d = self.state_dir
        argv = ["keepalived", "-n", "-l", "-D", "-f", str(d / "keepalived.conf")]
        argv += ["-p", str(d / "keepalived.pid"), "-r", str(d / "vrrp.pid")]
        self.keepalived = self.lab.spawn(self.ns, argv, log=d / "keepalived.log")
        return self.keepalived.pid

    def start_conntrackd(self) -> int:
        # A lock file left by a SIGKILLed daemon blocks the next one (ha-notes §5.2).
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "conntrackd.lock").unlink()
        argv = ["conntrackd", "-C", str(self.state_dir / "conntrackd.conf")]
        self.conntrackd = self.lab.spawn(self.ns, argv, log=self.state_dir / "conntrackd.out")
        return self.conntrackd.pid

    def kill_keepalived(self) -> list[int]:
        """SIGSTOP parent and VRRP child, then SIGKILL both: a crash, VIPs left behind. The
        PIDs signalled."""
        assert self.keepalived is not None
        pids = [self.keepalived.pid]
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            pids.append(int((self.state_dir / "vrrp.pid").read_text().split()[0]))
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        self.keepalived.wait(timeout=10)
        self.lab.stop(self.keepalived)  # reaped already; forgets it
        self.keepalived = None
        return pids

    def stop_daemons(self) -> None:
        for proc in (self.keepalived, self.conntrackd):
            if proc is not None:
                self.lab.stop(proc)
        self.keepalived = self.conntrackd = None


@dataclass
class ClusterLab(BuiltOnLab, Generic[S]):
    """The namespaces, backends and nodes; `prefix` (with the caller's PID) names them."""

    workdir: Path
    db_url: str
    prefix: str
    server_factory: Callable[[str, Path, dict[str, str]], S]
    lab: Lab = field(default_factory=Lab)
    nodes: dict[str, LbNode[S]] = field(default_factory=dict)
    backends: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client_exec: NetnsExecutor | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # added to every node's settings

    def ns(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def _build(self) -> None:
        lab = self.lab
        sw = lab.add_netns(self.ns("sw"), rp_filter=False)
        cli = lab.add_netns(self.ns("cli"), rp_filter=False)
        lbs = {n: lab.add_netns(self.ns(n), rp_filter=False) for n in ("lb1", "lb2")}
        bes = {n: lab.add_netns(self.ns(n), rp_filter=False) for n in BACKENDS}
        sw_cmds = ["link add br-f type bridge", "link add br-b type bridge"]
        sw_cmds += ["link set br-f up", "link set br-b up"]
        legs = [(cli, "c0", "pc", "br-f")]
        for name, ns in lbs.items():
            legs += [(ns, "f0", f"p{name}f", "br-f"), (ns, "b0", f"p{name}b", "br-b")]
        legs += [(ns, "eth0", f"p{name}", "br-b") for name, ns in bes.items()]
        for ns, inner, port, bridge in legs:
            sw_cmds += veth(port, inner, ns, master=bridge)
        ip_batch(sw, sw_cmds)
        ip_batch(cli, [*(f"addr add {ip}/24 dev c0" for ip in CLIENT_SOURCES), "link set c0 up"])
        ip_batch(lbs["lb1"], [f"link add s0 type veth peer name s0 netns {lbs['lb2']}"])
        for index, ns in enumerate(lbs.values(), start=1):
            ip_batch(
                ns,
                [
                    f"addr add 198.18.20.1{index}/24 dev f0",
                    f"addr add 198.18.21.1{index}/24 dev b0",
                    f"addr add 198.18.22.{index}/30 dev s0",
                    "link set f0 up",
                    "link set b0 up",
                    "link set s0 up",
                ],
            )
            sysctl(ns, "net.ipv4.ip_forward=1")
        for name, ns in bes.items():
            ip_batch(
                ns,
                [
                    f"addr add {BACKENDS[name]}/24 dev eth0",
                    "link set eth0 up",
                    f"route add default via {GATEWAY}",
                ],
            )
        self.client_exec = lab.executor(cli, workers=12)
        for name in bes:
            self.start_backend(name)
        for index, name in enumerate(lbs, start=1):
            self.nodes[name] = self._node(name, lbs[name], index)

    def start_backend(self, name: str) -> int:
        """The echo/hello server (app/net/backend_server.py) in backend `name`'s namespace."""
        argv = [sys.executable, str(Path(backend_server.__file__)), f"--name={name}"]
        argv += [f"--tcp={','.join(map(str, BACKEND_TCP_PORTS))}", "--udp=53", "--no-ipv6"]
        proc = self.lab.spawn(
            self.ns(name), argv, stdout_pipe=True, log=self.workdir / f"backend-{name}.log"
        )
        self.backends[name] = proc
        wait_for_line(proc, "ready", timeout=15)
        return proc.pid

    def stop_backend(self, name: str) -> None:
        self.lab.stop(self.backends.pop(name))

    def _node(self, name: str, ns: str, index: int) -> LbNode[S]:
        state = self.workdir / name
        state.mkdir(parents=True, exist_ok=True)
        os.chmod(state, 0o755)  # keepalived's script security: no group/other write
        peer = 3 - index
        priority = 150 if index == 1 else 100
        env = {
            "KERNLB_DB": self.db_url,
            "KERNLB_NODE_NAME": name,
            "KERNLB_CLUSTER": "true",
            "KERNLB_CLUSTER_INTERFACE": "f0",
            "KERNLB_CLUSTER_ADDRESS": f"198.18.20.1{index}",
            "KERNLB_CLUSTER_PRIORITY": str(priority),
            "KERNLB_CLUSTER_ADVERT": str(ADVERT),
            "KERNLB_CLUSTER_EXTRA_VIPS": f"{GATEWAY}/24@b0",
            "KERNLB_CLUSTER_SYNC_INTERFACE": "s0",
            "KERNLB_CLUSTER_SYNC_ADDRESS": f"198.18.22.{index}",
            "KERNLB_CLUSTER_SYNC_PEER": f"198.18.22.{peer}",
            "KERNLB_CLUSTER_OWN_ADDRESSES": f"198.18.21.1{index}",
            "KERNLB_DB_RETRY_INTERVAL": "0.5",
            "KERNLB_LOAD_INTERVAL": "0",
            **self.extra_env,
        }
        server = self.server_factory(ns, state, env)
        return LbNode(name, ns, index, priority, state, env, server, self.lab)

    def start_node(self, name: str, *, daemons: bool = True) -> LbNode[S]:
        """kernlb (it renders keepalived's and conntrackd's files), then the daemons."""
        node = self.nodes[name]
        node.server.start(timeout=40)
        if daemons:
            if node.conntrackd is None:
                node.start_conntrackd()
            node.start_keepalived()
        return node

    def master(self) -> str | None:
        holders = [n for n, node in self.nodes.items() if node.holds_vip()]
        return holders[0] if len(holders) == 1 else None

    def wait_master(self, name: str, *, timeout: float, exclusive: bool = True) -> float:
        """Until `name` is MASTER with the VIP and (`exclusive`) the other node neither.

        Not exclusive after a SIGKILL of keepalived: the dead node keeps its VIPs (ha-notes
        §5.6) and the clients follow the new master's gratuitous ARPs."""
        started = time.monotonic()
        others = [node for n, node in self.nodes.items() if n != name and exclusive]
        while time.monotonic() - started < timeout:
            node = self.nodes[name]
            if (
                node.holds_vip()
                and node.vrrp_state() == "MASTER"
                and not any(o.holds_vip() or o.vrrp_state() == "MASTER" for o in others)
            ):
                return time.monotonic() - started
            time.sleep(0.05)
        states = {n: (node.vrrp_state(), node.holds_vip()) for n, node in self.nodes.items()}
        raise AssertionError(f"{name} not MASTER within {timeout} s: {states}")

    def destroy(self) -> None:
        """Daemons and servers, then every process, thread and namespace of the lab."""
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.stop_daemons()
            with contextlib.suppress(Exception):
                node.server.close()
        self.backends.clear()
        self.client_exec = None
        self.lab.close()
