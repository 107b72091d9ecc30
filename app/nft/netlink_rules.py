"""The handles of one chain's rules, read over nfnetlink (NFT_MSG_GETRULE for that chain).

`replace rule` needs the kernel's handle of the rule it replaces; kernlb's diff names the
rule by its position instead (app.nft.diff).  libnftables could list the chain, but only
after reading every chain of the table into its cache (10,000 farms: 8-20 ms); the kernel
answers a dump filtered by table and chain from its chain hash table, in one round trip.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

from app.nft.netlink_dump import (
    NFT_MSG_GETRULE,
    DumpInterrupted,
    attributes,
    encode_attr,
    open_socket,
    run_dump,
)
from app.nft.netlink_elements import NFPROTO

NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_RULE_HANDLE = 3


def chain_filter(table: str, chain: str) -> bytes:
    """The attributes that restrict a rule dump to one chain (pure; unit-tested)."""
    return encode_attr(NFTA_RULE_TABLE, table.encode() + b"\0") + encode_attr(
        NFTA_RULE_CHAIN, chain.encode() + b"\0"
    )


def rule_handle(rule: bytes) -> int | None:
    """The handle of a rule message's attributes (pure; unit-tested)."""
    handle = attributes(rule).get(NFTA_RULE_HANDLE)
    return struct.unpack(">Q", handle)[0] if handle is not None and len(handle) == 8 else None


class RuleHandles:
    """Reads rule handles over one long-lived netlink socket, in the network namespace of
    the thread that made it (as libnftables' own socket)."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self._seq = (os.getpid() & 0xFFFF) << 8
        self._sock: socket.socket | None = None
        try:
            self._sock = open_socket(self._timeout)
        except OSError:
            self._sock = None

    def handles(self, family: str, table: str, chain: str) -> list[int]:
        """The handles of the chain's rules, in order (none for a chain that does not exist;
        OSError when netlink fails)."""
        with self._lock:
            for _attempt in range(3):
                sock = self._sock if self._sock is not None else open_socket(self._timeout)
                self._sock = sock
                self._seq = (self._seq + 1) & 0x7FFFFFFF
                request = (sock, NFT_MSG_GETRULE, NFPROTO[family], chain_filter(table, chain))
                try:
                    rules = run_dump(*request, seq=self._seq)
                    return [h for rule, _ in rules if (h := rule_handle(rule)) is not None]
                except DumpInterrupted:
                    continue
                except TimeoutError:
                    self._sock = None
                    sock.close()
                    raise
            raise OSError("the ruleset kept changing while its rules were read")

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
