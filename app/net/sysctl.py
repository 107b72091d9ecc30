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
