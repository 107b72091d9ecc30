"""Is a backend reachable at layer 2?  (DSR and stateless DNAT forward frames to it.)

kernlb never renders a MAC address: `fwd ip to <backend>` lets the kernel's neighbour layer
supply it.  What kernlb must know is whether the neighbour layer *can*: a backend whose
neighbour entry is missing or failed is shown `undefined` and left out of scheduling, and a
resolution is triggered (a datagram to its discard port makes the kernel ARP/ND for it).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

# NUD states in which the kernel can (or will by itself) deliver to the neighbour.
NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_NOARP, NUD_PERMANENT = (
    0x02,
    0x04,
    0x08,
    0x10,
    0x40,
    0x80,
)
USABLE = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_NOARP | NUD_PERMANENT
Target = tuple[str, str]  # (ip, device)


class NeighbourBook(Protocol):
    def unreachable(self, targets: Iterable[Target]) -> set[Target]: ...


class NetlinkNeighbours:
    def __init__(self, *, settle: float = 0.25) -> None:
        self.settle = settle  # how long to wait for a triggered resolution

    def _unusable(self, targets: set[Target]) -> set[Target]:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            states: dict[Target, int] = {}
            for entry in ipr.get_neighbours():
                dst = entry.get_attr("NDA_DST")
                if dst:
                    states[(dst, names.get(entry["ifindex"], ""))] = entry["state"]
        return {t for t in targets if not states.get(t, 0) & USABLE}

    def unreachable(self, targets: Iterable[Target]) -> set[Target]:
        wanted = set(targets)
        if not wanted:
            return set()
        missing = self._unusable(wanted)
        deadline = time.monotonic() + self.settle
        while missing:
            for ip, device in missing:
                _solicit(ip, device)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
            missing = self._unusable(missing)
        return missing


def _solicit(ip: str, device: str) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
            sock.setblocking(False)
            sock.sendto(b"", (ip, 9))  # discard port: only the resolution matters
    except OSError as exc:
        if exc.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN):
            log.debug("could not solicit %s on %s: %s", ip, device, exc)


class AllReachable:
    """For tests without a kernel."""

    def __init__(self, unreachable: set[str] | None = None) -> None:
        self.down = unreachable or set()

    def unreachable(self, targets: Iterable[Target]) -> set[Target]:
        return {t for t in targets if t[0] in self.down}
