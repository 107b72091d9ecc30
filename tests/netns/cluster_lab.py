"""Two kernlb nodes with keepalived and conntrackd, for the cluster traffic tests.

    cli 198.18.20.2 ── br-front ── lb1 f0 .20.11 / lb2 f0 .20.12   VIP 198.18.20.100 (VRRP)
                                   lb1 s0 198.18.22.1/30 ═══ lb2 s0 .22.2/30 (conntrackd)
    b1 .21.21, b2 .21.22 ── br-back ── lb1 b0 .21.11 / lb2 b0 .21.12  gateway VIP .21.1 (VRRP)

The bridges live in a switch namespace.  Farms are `dnat` (no SNAT): the backends answer
through the floating gateway, which moves with the front VIP (one VRRP sync group), so the
master also gets the replies.  Every node: `kernlb serve` (its own state directory, the shared
throw-away PostgreSQL), then keepalived and conntrackd on the files kernlb rendered.  As in
../shared/spec/ha-notes.md: per-node pid/lock/socket files, SIGKILL = SIGSTOP both keepalived
processes then SIGKILL them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .kernlb import API_KEY, API_PORT, KernlbServer
from .nsexec import NetnsExecutor
from .topology import BACKEND_SERVER, ns_exec, sh, stop_process, wait_for_line

VIP = "198.18.20.100"
GATEWAY = "198.18.21.1"
CLIENT = "198.18.20.2"
CLIENT_SOURCES = tuple(f"198.18.20.{i}" for i in range(2, 10))
BACKENDS = {"b1": "198.18.21.21", "b2": "198.18.21.22"}
ADVERT = 0.5  # seconds (VRRPv3): takeover after a silent failure in ~1.5-1.8 s

_counter = itertools.count(1)


@dataclass
class LbNode:
    name: str  # lb1 | lb2
    ns: str
    index: int  # 1 | 2
    priority: int
    state_dir: Path
    server: KernlbServer
    keepalived: subprocess.Popen[bytes] | None = None
    conntrackd: subprocess.Popen[bytes] | None = None

    @property
    def front(self) -> str:
        return f"198.18.20.1{self.index}"

    @property
    def back(self) -> str:
        return f"198.18.21.1{self.index}"

    def holds_vip(self) -> bool:
        out = sh(ns_exec(self.ns, "ip", "-4", "-o", "addr", "show", "dev", "f0"), check=False)
        return f" {VIP}/" in out.stdout

    def vrrp_state(self) -> str:
        try:
            return (self.state_dir / "vrrp_state").read_text().strip()
        except FileNotFoundError:
            return ""

    def start_keepalived(self) -> None:
        # The role a killed keepalived last reported is stale: the hook writes the new one.
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "vrrp_state").unlink()
        conf = self.state_dir / "keepalived.conf"
        log = (self.state_dir / "keepalived.log").open("ab")
        try:
            self.keepalived = subprocess.Popen(
                ns_exec(
                    self.ns,
                    "keepalived",
                    "-n",
                    "-l",
                    "-D",
                    "-f",
                    str(conf),
                    "-p",
                    str(self.state_dir / "keepalived.pid"),
                    "-r",
                    str(self.state_dir / "vrrp.pid"),
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def start_conntrackd(self) -> None:
        # A lock file left by a SIGKILLed daemon blocks the next one (ha-notes §5.2).
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "conntrackd.lock").unlink()
        log = (self.state_dir / "conntrackd.out").open("ab")
        try:
            self.conntrackd = subprocess.Popen(
                ns_exec(self.ns, "conntrackd", "-C", str(self.state_dir / "conntrackd.conf")),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def kill_keepalived(self) -> None:
        """SIGSTOP parent and VRRP child, then SIGKILL both: a crash, VIPs left behind."""
        assert self.keepalived is not None
        pids = [self.keepalived.pid]
        with contextlib.suppress(FileNotFoundError, ValueError):
            pids.append(int((self.state_dir / "vrrp.pid").read_text().split()[0]))
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        self.keepalived.wait(timeout=10)
        self.keepalived = None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)

    def stop_daemons(self) -> None:
        if self.keepalived is not None:
            stop_process(self.keepalived)
            self.keepalived = None
        if self.conntrackd is not None:
            stop_process(self.conntrackd)
            self.conntrackd = None


class ClusterServer(KernlbServer):
    """`kernlb serve` in cluster mode: the shared database and this node's VRRP settings."""

    def __init__(self, lb_ns: str, workdir: Path, *, env: dict[str, str]) -> None:
        super().__init__(lb_ns, workdir, resync_interval=30)
        self.env = env

    def command(self) -> list[str]:
        settings = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return ns_exec(
            self.lb_ns,
            "env",
            *settings,
            sys.executable,
            "-m",
            "app",
            "serve",
            "--no-tls",
            "--host",
            "127.0.0.1",
            "--port",
            str(API_PORT),
            "--key",
            API_KEY,
            "--state-dir",
            str(self.workdir),
        )


@dataclass
class ClusterLab:
    workdir: Path
    db_url: str
    prefix: str = field(default_factory=lambda: f"kc{os.getpid()}x{next(_counter)}")
    created: list[str] = field(default_factory=list)
    nodes: dict[str, LbNode] = field(default_factory=dict)
    backends: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client_exec: NetnsExecutor | None = None

    def ns(self, role: str) -> str:
        return f"{self.prefix}{role}"

    def _add_ns(self, role: str) -> str:
        name = self.ns(role)
        sh(["ip", "netns", "add", name])
        self.created.append(name)
        sh(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def build(self) -> None:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _build(self) -> None:
        sw = self._add_ns("sw")
        cli = self._add_ns("cli")
        lbs = {n: self._add_ns(n) for n in ("lb1", "lb2")}
        bes = {n: self._add_ns(n) for n in BACKENDS}
        sw_cmds = ["link add br-f type bridge", "link add br-b type bridge"]
        sw_cmds += ["link set br-f up", "link set br-b up"]
        legs = [(cli, "c0", "pc", "br-f")]
        for name, ns in lbs.items():
            legs += [(ns, "f0", f"p{name}f", "br-f"), (ns, "b0", f"p{name}b", "br-b")]
        legs += [(ns, "eth0", f"p{name}", "br-b") for name, ns in bes.items()]
        for ns, inner, port, bridge in legs:
            sw_cmds += [
                f"link add {port} type veth peer name {inner} netns {ns}",
                f"link set {port} master {bridge}",
                f"link set {port} up",
            ]
        sh(["ip", "-n", sw, "-batch", "-"], stdin="\n".join(sw_cmds) + "\n")
        cli_cmds = [f"addr add {ip}/24 dev c0" for ip in CLIENT_SOURCES]
        sh(["ip", "-n", cli, "-batch", "-"], stdin="\n".join([*cli_cmds, "link set c0 up"]) + "\n")
        sh(["ip", "-n", lbs["lb1"], "link", "add", "s0", "type", "veth", "peer", "name", "s0",
            "netns", lbs["lb2"]])  # fmt: skip
        for index, ns in enumerate(lbs.values(), start=1):
            cmds = [
                f"addr add 198.18.20.1{index}/24 dev f0",
                f"addr add 198.18.21.1{index}/24 dev b0",
                f"addr add 198.18.22.{index}/30 dev s0",
                "link set f0 up",
                "link set b0 up",
                "link set s0 up",
            ]
            sh(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(cmds) + "\n")
            sh(ns_exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        for name, ns in bes.items():
            cmds = [
                f"addr add {BACKENDS[name]}/24 dev eth0",
                "link set eth0 up",
                f"route add default via {GATEWAY}",
            ]
            sh(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(cmds) + "\n")
        for ns in self.created:
            sh(ns_exec(ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"))
        self.client_exec = NetnsExecutor(cli, workers=12)
        for name, ns in bes.items():
            log = (self.workdir / f"backend-{name}.log").open("ab")
            try:
                proc = subprocess.Popen(
                    ns_exec(
                        ns,
                        sys.executable,
                        str(BACKEND_SERVER),
                        f"--name={name}",
                        "--tcp=80,81",
                        "--udp=53",
                        "--no-ipv6",
                    ),
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                log.close()
            self.backends[name] = proc
            wait_for_line(proc, "ready", timeout=15)
        for index, name in enumerate(lbs, start=1):
            self.nodes[name] = self._node(name, lbs[name], index)

    def _node(self, name: str, ns: str, index: int) -> LbNode:
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
        }
        server = ClusterServer(ns, state, env=env)
        return LbNode(name, ns, index, priority, state, server)

    def start_node(self, name: str, *, daemons: bool = True) -> LbNode:
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
        if self.client_exec is not None:
            self.client_exec.shutdown()
            self.client_exec = None
        for node in self.nodes.values():
            node.stop_daemons()
            node.server.close()
        for proc in self.backends.values():
            stop_process(proc)
        self.backends.clear()
        for ns in reversed(self.created):
            sh(["ip", "netns", "del", ns], check=False)
        self.created.clear()
