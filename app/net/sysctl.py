"""Kernel switches a load balancer needs in its network namespace."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

FORWARDING = (
    Path("/proc/sys/net/ipv4/ip_forward"),
    Path("/proc/sys/net/ipv6/conf/all/forwarding"),
)


def enable_forwarding() -> None:
    for path in FORWARDING:
        try:
            if path.read_text().strip() != "1":
                path.write_text("1\n")
                log.info("enabled %s", path)
        except OSError as exc:
            log.warning("could not enable %s: %s", path, exc)


TCP_LOOSE = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_loose")


def disable_tcp_loose() -> bool:
    """Conntrack must not take a mid-stream TCP packet for a new connection: on a cluster node
    with conntrackd, such a packet comes before the synced entry is committed, and scheduled
    afresh it may reach another backend (docs/cluster.md). True when it is off now."""
    try:
        if TCP_LOOSE.read_text().strip() != "0":
            TCP_LOOSE.write_text("0\n")
            log.info("set %s to 0 (conntrackd's commit window)", TCP_LOOSE)
    except OSError as exc:
        log.warning(
            "could not set %s to 0: %s; a packet arriving at a new master before conntrackd "
            "commits may start a new connection to another backend",
            TCP_LOOSE,
            exc,
        )
        return False
    return True
