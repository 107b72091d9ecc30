"""Conntrack access over netlink (pyroute2): delete a backend's connections by mark."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Protocol

from app.nft.render import BACKEND_MASK

log = logging.getLogger(__name__)


class Conntrack(Protocol):
    def flush_marks(self, marks: Iterable[int]) -> None: ...


class NetlinkConntrack:
    def flush_marks(self, marks: Iterable[int]) -> None:
        from pyroute2 import NFCTSocket

        wanted = [m for m in marks if m & BACKEND_MASK]
        if not wanted:
            return  # mark 0 would mean "no filter": every entry in the namespace
        with NFCTSocket(nfgen_family=socket.AF_INET) as ct:
            for mark in wanted:
                try:
                    ct.flush(mark=mark & BACKEND_MASK, mark_mask=BACKEND_MASK)
                except Exception:
                    log.exception("could not flush conntrack entries of mark %#x", mark)


class NullConntrack:
    """For tests without a kernel: records what would have been cut."""

    def __init__(self) -> None:
        self.flushed: list[int] = []

    def flush_marks(self, marks: Iterable[int]) -> None:
        self.flushed.extend(marks)
