"""The nftables ruleset generation id: one netlink request (NFT_MSG_GETGEN).

The kernel bumps the id on every committed nftables transaction in a network namespace, by
any process; a batch that fails or changes nothing leaves it alone.  kernlb reads it around
its own batches, so a drift check can tell "nobody else committed since" with one cheap
request instead of listing and comparing 10,000 farms.  libnftables does not expose the id
(`nft -j list ruleset` metainfo carries only the version and `json_schema_version` in
nftables 1.0.6), hence this small netlink client.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETGEN = 16
NFT_MSG_NEWGEN = 15
NFTA_GEN_ID = 1
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian, unused here)
_ATTR = struct.Struct("=HH")


def parse_generation(reply: bytes) -> int | None:
    """The NFTA_GEN_ID of a NEWGEN reply, or None for anything else (pure; unit-tested)."""
    if len(reply) < _HEADER.size + _NFGENMSG.size:
        return None
    length, msg_type, _flags, _seq, _pid = _HEADER.unpack_from(reply)
    if msg_type != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN:
        return None
    offset = _HEADER.size + _NFGENMSG.size
    end = min(length, len(reply))
    while offset + _ATTR.size <= end:
        attr_len, attr_type = _ATTR.unpack_from(reply, offset)
        if attr_len < _ATTR.size:
            return None
        if attr_type & 0x7FFF == NFTA_GEN_ID and attr_len >= _ATTR.size + 4:
            generation: int = struct.unpack_from(">I", reply, offset + _ATTR.size)[0]
            return generation
        offset += (attr_len + 3) & ~3
    return None


def _request(sequence: int) -> bytes:
    payload = _NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
    msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN
    header = _HEADER.pack(_HEADER.size + len(payload), msg_type, NLM_F_REQUEST, sequence, 0)
    return header + payload


def _open() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.settimeout(2.0)
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def ruleset_generation() -> int | None:
    """The current generation id of this network namespace's ruleset (None if unavailable)."""
    try:
        sock = _open()
    except OSError:
        return None
    try:
        sock.send(_request(os.getpid() & 0xFFFF))
        return parse_generation(sock.recv(65536))
    except OSError:
        return None
    finally:
        sock.close()


class GenerationReader:
    """Reads the generation id over one long-lived netlink socket.

    The socket belongs to the network namespace of the thread that made the reader (as
    libnftables' own socket does).  A socket per read costs little on a quiet host, but
    closing a netfilter netlink socket can wait for an RCU grace period: 3 ms per read was
    measured on a loaded 2-core machine, four reads per batch.  If the socket fails, reads
    fall back to a socket each (in the calling thread's namespace).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sequence = os.getpid() & 0xFFFF
        try:
            self._sock: socket.socket | None = _open()
        except OSError:
            self._sock = None

    def read(self) -> int | None:
        with self._lock:
            sock = self._sock
            if sock is None:
                return ruleset_generation()
            self._sequence = (self._sequence + 1) & 0x7FFFFFFF
            try:
                sock.send(_request(self._sequence))
                while True:  # skip a late answer to an earlier, timed-out request
                    reply = sock.recv(65536)
                    if len(reply) >= _HEADER.size and _HEADER.unpack_from(reply)[3] == (
                        self._sequence
                    ):
                        return parse_generation(reply)
            except OSError:
                self._sock = None
                sock.close()
                return ruleset_generation()

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
