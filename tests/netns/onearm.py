"""A one-arm topology for DSR and stateless DNAT: everybody on one L2 segment.

    switch ns: br0 ── client  eth0 198.18.4.1/24, 198.18.4.21-60/24, 198.18.5.1/24
                 ├── LB      eth0 198.18.4.254/24, 198.18.5.254/24; VIPs 198.18.4.100-101/32
                 └── b1..b3  eth0 198.18.4.11-13/24; VIP 198.18.4.100 on lo (ARP suppressed)

DSR: backends answer the client (198.18.4.x, on-link) directly, from the VIP on their lo.
Stateless DNAT: the client uses 198.18.5.1, a network the backends reach through the LB, so
their replies come back to the LB, which restores the VIP as source.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .nsexec import NetnsExecutor
from .topology import BACKEND_SERVER, Backend, ns_exec, sh, stop_process, wait_for_line

SEGMENT_CLIENT = "198.18.4.1"
MANY_CLIENTS = tuple(f"198.18.4.{i}" for i in range(21, 61))
REMOTE_CLIENT = "198.18.5.1"
LB_IP = "198.18.4.254"
LB_REMOTE_SIDE = "198.18.5.254"
DSR_VIP = "198.18.4.100"
STATELESS_VIP = "198.18.4.101"
ONEARM_BACKENDS = {"b1": "198.18.4.11", "b2": "198.18.4.12", "b3": "198.18.4.13"}
GHOST_BACKEND = "198.18.4.14"  # on the segment, but nobody answers ARP for it
OFF_SEGMENT_BACKEND = "198.18.9.1"

_counter = itertools.count(1)


@dataclass
class OneArm:
    workdir: Path
    prefix: str = field(default_factory=lambda: f"kla{os.getpid() % 100000}x{next(_counter)}")
    created: list[str] = field(default_factory=list)
    backends: dict[str, Backend] = field(default_factory=dict)
    client_exec: NetnsExecutor | None = None

    @property
    def lb(self) -> str:
        return f"{self.prefix}l"

    @property
    def client(self) -> str:
        return f"{self.prefix}c"

    @property
    def switch(self) -> str:
        return f"{self.prefix}s"

    def _ns(self, name: str) -> None:
        sh(["ip", "netns", "add", name])
        self.created.append(name)
        sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def build(self) -> None:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    def _build(self) -> None:
        self._ns(self.switch)
        members = {"c": self.client, "l": self.lb}
        members.update({name: f"{self.prefix}{name}" for name in ONEARM_BACKENDS})
        switch_cmds = ["link add br0 type bridge", "link set br0 up"]
        for short, ns in members.items():
            self._ns(ns)
            switch_cmds += [
                f"link add p-{short} type veth peer name eth0 netns {ns}",
                f"link set p-{short} master br0",
                f"link set p-{short} up",
            ]
        sh(["ip", "-n", self.switch, "-batch", "-"], stdin="\n".join(switch_cmds) + "\n")

        client = [f"addr add {SEGMENT_CLIENT}/24 dev eth0", f"addr add {REMOTE_CLIENT}/24 dev eth0"]
        client += [f"addr add {ip}/24 dev eth0" for ip in MANY_CLIENTS]
        client += ["link set eth0 up"]
        sh(["ip", "-n", self.client, "-batch", "-"], stdin="\n".join(client) + "\n")
        lb = [
            f"addr add {LB_IP}/24 dev eth0",
            f"addr add {LB_REMOTE_SIDE}/24 dev eth0",
            f"addr add {DSR_VIP}/32 dev eth0",
            f"addr add {STATELESS_VIP}/32 dev eth0",
            "link set eth0 up",
        ]
        sh(["ip", "-n", self.lb, "-batch", "-"], stdin="\n".join(lb) + "\n")
        for name, ip in ONEARM_BACKENDS.items():
            ns = f"{self.prefix}{name}"
            cmds = [
                f"addr add {ip}/24 dev eth0",
                f"addr add {DSR_VIP}/32 dev lo",
                "link set eth0 up",
                f"route add 198.18.5.0/24 via {LB_IP}",
            ]
            # The VIP on lo must not be announced or answered for: only the LB owns it.
            for sysctl in ("arp_ignore=1", "arp_announce=2"):
                for dev in ("all", "eth0"):
                    sh(ns_exec(ns, "sysctl", "-qw", f"net.ipv4.conf.{dev}.{sysctl}"))
            sh(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(cmds) + "\n")
            self.backends[name] = Backend(name=name, ns=ns, ip=ip)
        for ns in self.created:
            sh(ns_exec(ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"))
        self.client_exec = NetnsExecutor(self.client, workers=8)
        self.start_backends()

    def start_backends(self) -> None:
        for backend in self.backends.values():
            backend.proc = subprocess.Popen(
                ns_exec(
                    backend.ns,
                    sys.executable,
                    str(BACKEND_SERVER),
                    f"--name={backend.name}",
                    "--tcp=80,443",
                    "--udp=53",
                ),
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        for backend in self.backends.values():
            assert backend.proc is not None
            wait_for_line(backend.proc, "ready", timeout=15)

    def destroy(self) -> None:
        if self.client_exec is not None:
            self.client_exec.shutdown()
            self.client_exec = None
        for backend in self.backends.values():
            if backend.proc is not None:
                stop_process(backend.proc)
        for ns in reversed(self.created):
            sh(["ip", "netns", "del", ns], check=False)
        self.created.clear()
