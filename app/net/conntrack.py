"""Conntrack over netlink (pyroute2): count each backend's connections, or delete them, by mark."""

from __future__ import annotations

import logging
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.domain.ruleset import BACKEND_MASK

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


IPPROTO_TCP = 6
# TCP conntrack states (include/uapi/linux/netfilter/nf_conntrack_tcp.h)
SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, SYN_SENT2 = 1, 2, 3, 4, 5, 6, 9
ESTABLISHED_STATES = {SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK}
PENDING_STATES = {SYN_SENT, SYN_RECV, SYN_SENT2}


@dataclass
class MarkCounts:
    established: int = 0  # TCP SYN_RECV..LAST_ACK, and every UDP/other entry
    pending: int = 0  # TCP entries still in a SYN state (SYN_RECV counts in both, as in ZAPI)
    active: int = 0  # entries that load the backend: not TIME_WAIT/CLOSE (leastconn, max_conns)


class ConnectionCounter(Protocol):
    def count_by_mark(self, marks: Collection[int] | None = None) -> dict[int, MarkCounts]:
        """Counts per backend mark: of every mark, or only of `marks` (others may be left out)."""
        ...


# Up to this many marks are counted with one kernel-filtered dump each (the kernel walks its
# table and sends only their entries); more, and one dump of everything is cheaper.
FILTERED_DUMP_MAX_MARKS = 32


class NetlinkConnectionCounter:
    def count_by_mark(self, marks: Collection[int] | None = None) -> dict[int, MarkCounts]:
        from pyroute2 import NFCTSocket

        counts: dict[int, MarkCounts] = {}
        wanted = sorted({m & BACKEND_MASK for m in marks} - {0}) if marks is not None else None
        if wanted is not None and not wanted:
            return counts  # never dump with mark 0: that means "no filter"
        with NFCTSocket(nfgen_family=socket.AF_UNSPEC) as ct:
            if wanted is not None and len(wanted) <= FILTERED_DUMP_MAX_MARKS:
                dumps: Iterable[Iterable[Any]] = (
                    ct.dump(mark=mark, mark_mask=BACKEND_MASK) for mark in wanted
                )
            else:
                dumps = (ct.dump(),)
            for dump in dumps:
                _tally(dump, counts)
        return counts


def _tally(entries: Iterable[Any], counts: dict[int, MarkCounts]) -> None:
    """Add conntrack entries (pyroute2 messages) to per-mark counts."""
    for entry in entries:
        mark = (entry.get_attr("CTA_MARK") or 0) & BACKEND_MASK
        if not mark:
            continue
        tally = counts.setdefault(mark, MarkCounts())
        proto = entry.get_attr("CTA_TUPLE_ORIG").get_attr("CTA_TUPLE_PROTO")
        if proto.get_attr("CTA_PROTO_NUM") != IPPROTO_TCP:
            tally.established += 1
            tally.active += 1
            continue
        info = entry.get_attr("CTA_PROTOINFO")
        tcp = info.get_attr("CTA_PROTOINFO_TCP") if info is not None else None
        state = tcp.get_attr("CTA_PROTOINFO_TCP_STATE") if tcp is not None else None
        if state in ESTABLISHED_STATES:
            tally.established += 1
        if state in PENDING_STATES:
            tally.pending += 1
        if state in ESTABLISHED_STATES or state in PENDING_STATES:
            tally.active += 1
