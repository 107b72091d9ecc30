"""A one-arm topology for DSR and stateless DNAT: everybody on one L2 segment.

    switch ns: br0 ── client  eth0 198.18.4.1/24, 198.18.4.21-60/24, 198.18.5.1/24
                 ├── LB      eth0 198.18.4.254/24, 198.18.5.254/24; VIPs 198.18.4.100-101/32
                 └── b1..b3  eth0 198.18.4.11-13/24; VIP 198.18.4.100 on lo (ARP suppressed)

    IPv6 (DSR only): client 2001:2:0:4::1, LB 2001:2:0:4::fe + VIP 2001:2:0:4::100/128,
    b1..b3 2001:2:0:4::11-13 with the VIP on lo; the client routes the VIP via the LB.

DSR: backends answer the client (198.18.4.x, on-link) directly, from the VIP on their lo.
Stateless DNAT: the client uses 198.18.5.1, a network the backends reach through the LB, so
their replies come back to the LB, which restores the VIP as source.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from app.net.lab import addresses, ip_batch, sysctl, veth

from .topology import Backend, LabTopology

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
SEGMENT_CLIENT6 = "2001:2:0:4::1"
LB_IP6 = "2001:2:0:4::fe"
DSR_VIP6 = "2001:2:0:4::100"
ONEARM_BACKENDS6 = {"b1": "2001:2:0:4::11", "b2": "2001:2:0:4::12", "b3": "2001:2:0:4::13"}

_counter = itertools.count(1)


@dataclass
class OneArm(LabTopology):
    backend_tcp_ports = (80, 443)
    backend_udp_ports = (53,)

    @staticmethod
    def new_prefix() -> str:
        return f"kla{os.getpid() % 100000}x{next(_counter)}"

    @property
    def switch(self) -> str:
        return f"{self.prefix}s"

    def _build(self) -> None:
        members = {"c": self.client, "l": self.lb}
        members.update({name: f"{self.prefix}{name}" for name in ONEARM_BACKENDS})
        switch_cmds = ["link add br0 type bridge", "link set br0 up"]
        for ns in (self.switch, *members.values()):
            # no DAD: the IPv6 VIP sits on the LB's eth0 and on every backend's lo
            self.lab.add_netns(ns, no_dad=True, rp_filter=False)
        for short, ns in members.items():
            switch_cmds += veth(f"p-{short}", "eth0", ns, master="br0")
        ip_batch(self.switch, switch_cmds)

        ip_batch(
            self.client,
            [
                *addresses("eth0", (SEGMENT_CLIENT, REMOTE_CLIENT, *MANY_CLIENTS), 24),
                f"addr add {SEGMENT_CLIENT6}/64 dev eth0",
                "link set eth0 up",
                f"route add {DSR_VIP6}/128 via {LB_IP6}",
            ],
        )
        ip_batch(
            self.lb,
            [
                *addresses("eth0", (LB_IP, LB_REMOTE_SIDE), 24),
                *addresses("eth0", (DSR_VIP, STATELESS_VIP), 32),
                f"addr add {LB_IP6}/64 dev eth0",
                f"addr add {DSR_VIP6}/128 dev eth0",
                "link set eth0 up",
            ],
        )
        # kernlb turns forwarding on at start; with IPv6 addresses that adds a subnet-router
        # anycast route, which must be in the baseline the shared topology is compared with.
        sysctl(self.lb, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        for name, ip in ONEARM_BACKENDS.items():
            ns = f"{self.prefix}{name}"
            # The VIP on lo must not be announced or answered for: only the LB owns it.
            sysctl(
                ns,
                *(
                    f"net.ipv4.conf.{dev}.{key}"
                    for key in ("arp_ignore=1", "arp_announce=2")
                    for dev in ("all", "eth0")
                ),
            )
            ip_batch(
                ns,
                [
                    f"addr add {ip}/24 dev eth0",
                    f"addr add {DSR_VIP}/32 dev lo",
                    f"addr add {ONEARM_BACKENDS6[name]}/64 dev eth0",
                    f"addr add {DSR_VIP6}/128 dev lo",
                    "link set eth0 up",
                    f"route add 198.18.5.0/24 via {LB_IP}",
                ],
            )
            self.backends[name] = Backend(name=name, ns=ns, ip=ip)
        self.client_exec = self.lab.executor(self.client, workers=8)
        self.start_backends()
