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
from collections.abc import Iterator

from app.nft.netlink_dump import (
    NFT_MSG_GETRULE,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    DumpInterrupted,
    attributes,
)
from app.nft.netlink_elements import NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, NFPROTO

NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_RULE_HANDLE = 3
_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")


def _string(kind: int, text: str) -> bytes:
    payload = text.encode() + b"\0"
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def request(family: str, table: str, chain: str, seq: int) -> bytes:
    """The dump request for one chain's rules (pure; unit-tested)."""
    body = struct.pack("=BBH", NFPROTO[family], 0, 0)
    body += _string(NFTA_RULE_TABLE, table) + _string(NFTA_RULE_CHAIN, chain)
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_handles(data: bytes, seq: int) -> Iterator[int | None]:
    """Handles of the rule messages in a datagram answering `seq`, in chain order; None
    ends the dump (NLMSG_DONE).  Raises OSError for an error answer, DumpInterrupted when
    the ruleset changed during the dump."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, reply_seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        if reply_seq == seq:
            if flags & NLM_F_DUMP_INTR:
                raise DumpInterrupted()
            if kind == NLMSG_DONE:
                yield None
                return
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                if code:
                    raise OSError(-code, f"nftables rule dump: {os.strerror(-code)}")
            else:
                attrs = attributes(data, offset + _HEADER.size + 4, offset + length)
                handle = attrs.get(NFTA_RULE_HANDLE)
                if handle is not None and len(handle) == 8:
                    yield struct.unpack(">Q", handle)[0]
        offset += (length + 3) & ~3


class RuleHandles:
    """Reads rule handles over one long-lived netlink socket, in the network namespace of
    the thread that made it (as libnftables' own socket)."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout
        self._seq = (os.getpid() & 0xFFFF) << 8
        self._sock: socket.socket | None = None
        try:
            self._sock = self._open()
        except OSError:
            self._sock = None

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.settimeout(self._timeout)
            sock.setsockopt(270, 10, 1)  # NETLINK_CAP_ACK: errors do not echo the request
            sock.bind((0, 0))
        except OSError:
            sock.close()
            raise
        return sock

    def handles(self, family: str, table: str, chain: str) -> list[int]:
        """The handles of the chain's rules, in order (none for a chain that does not exist;
        OSError when netlink fails)."""
        with self._lock:
            for _attempt in range(3):
                sock = self._sock if self._sock is not None else self._open()
                self._sock = sock
                self._seq = (self._seq + 1) & 0x7FFFFFFF
                seq = self._seq
                try:
                    return self._dump(sock, request(family, table, chain, seq), seq)
                except DumpInterrupted:
                    continue
                except TimeoutError:
                    self._sock = None
                    sock.close()
                    raise
            raise OSError("the ruleset kept changing while its rules were read")

    @staticmethod
    def _dump(sock: socket.socket, message: bytes, seq: int) -> list[int]:
        sock.send(message)
        found: list[int] = []
        while True:
            for handle in parse_handles(sock.recv(1 << 16), seq):
                if handle is None:
                    return found
                found.append(handle)

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
