"""kernlb's tables read straight over nfnetlink: for drift checks beside very large sets.

libnftables 1.0.6 reads every element of every set to list a table (terse output too): with
a 1,000,000-source IPDS list, listing kernlb's table takes tens of seconds.  This reader
dumps only what a drift check needs, in raw form:

- tables, chains and their rules (each rule's expressions as bytes, without the values of
  stateful expressions: counters, quotas, `last`);
- sets, maps and stateful objects (named counters, ct helpers), with the raw elements of the
  sets the caller asks for.

Raw bytes are not kernlb's JSON: the content of rules and maps is compared against a
snapshot read at a generation kernlb itself wrote (see `Reconciler.check_drift`), the
structure against what kernlb applied (`KernelSummary`), and IPDS list sets key by key.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from app.domain.ruleset import TABLE, qualified
from app.nft.diff import KernelSet, KernelSummary
from app.nft.netlink_elements import NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, NFPROTO

NLM_F_REQUEST = 0x001
NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x010
NLMSG_ERROR = 2
NLMSG_DONE = 3
NFT_MSG_GETTABLE = 1
NFT_MSG_GETCHAIN = 4
NFT_MSG_GETRULE = 7
NFT_MSG_GETSET = 10
NFT_MSG_GETSETELEM = 13
NFT_MSG_GETOBJ = 19
NFT_SET_ANONYMOUS = 0x1
NFT_SET_MAP = 0x8
NFT_SET_INTERVAL_END = 0x1
OBJECT_KINDS = {1: "counter", 3: "ct helper"}
STATEFUL_EXPRESSIONS = frozenset({b"counter", b"quota", b"last"})
_FAMILY_NAMES = {number: name for name, number in NFPROTO.items()}
_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")


class DumpInterrupted(Exception):
    """The ruleset changed during the dump (retried, then reported)."""


def attributes(buffer: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Type (flags stripped) -> value of the attributes in buffer[offset:end] (last wins)."""
    found: dict[int, bytes] = {}
    for kind, value in attribute_list(buffer, offset, end):
        found[kind] = value
    return found


def attribute_list(
    buffer: bytes, offset: int = 0, end: int | None = None
) -> Iterator[tuple[int, bytes]]:
    stop = len(buffer) if end is None else end
    while offset + _ATTR.size <= stop:
        length, kind = _ATTR.unpack_from(buffer, offset)
        if length < _ATTR.size:
            return
        yield kind & 0x3FFF, buffer[offset + _ATTR.size : offset + length]
        offset += (length + 3) & ~3


def _text(value: bytes) -> str:
    return value.rstrip(b"\0").decode()


def rule_fingerprint(expressions: bytes) -> bytes:
    """A rule's expressions without the values stateful ones accumulate (pure; unit-tested)."""
    parts = []
    for _, element in attribute_list(expressions):
        expr = attributes(element)
        name = expr.get(1, b"").rstrip(b"\0")
        parts.append(name + b"\0" + (b"" if name in STATEFUL_EXPRESSIONS else expr.get(2, b"")))
    return b"\1".join(parts)


def element_keys(payload: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    """(key, whole element, flags) of each element of a GETSETELEM reply's attributes."""
    top = attributes(payload)
    for _, element in attribute_list(top.get(3, b"")):
        fields = attributes(element)
        key = attributes(fields.get(1, b"")).get(1, b"")
        flags = struct.unpack(">I", fields[3])[0] if 3 in fields else 0
        yield key, element, flags


@dataclass
class KernelDump:
    tables: set[str] = field(default_factory=set)
    chains: dict[str, list[bytes]] = field(default_factory=dict)  # name -> rule fingerprints
    sets: dict[str, KernelSet] = field(default_factory=dict)
    elements: dict[str, frozenset[bytes]] = field(default_factory=dict)  # raw, asked-for sets
    keys: dict[str, frozenset[bytes]] = field(default_factory=dict)  # keys, asked-for sets

    def summary(self) -> KernelSummary | None:
        if not self.tables:
            return None
        chains = {name: len(rules) for name, rules in self.chains.items()}
        return KernelSummary(chains=chains, sets=dict(self.sets), tables=frozenset(self.tables))

    def content_digest(self, skip: Iterable[str] = ()) -> dict[str, str]:
        """Object -> digest of its rules or elements (the sets in `skip` left out)."""
        skipped = set(skip)
        digests = {
            f"chain {name}": hashlib.sha256(b"\2".join(rules)).hexdigest()
            for name, rules in self.chains.items()
        }
        for name, items in self.elements.items():
            if name not in skipped:
                digests[f"set {name}"] = hashlib.sha256(b"\2".join(sorted(items))).hexdigest()
        return digests


def open_socket(timeout: float) -> socket.socket:
    """An nfnetlink socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.settimeout(timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 23)  # SO_RCVBUFFORCE: large dumps
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
        sock.setsockopt(270, 10, 1)  # NETLINK_CAP_ACK: errors do not echo the request
        sock.bind((0, 0))
    except OSError:
        sock.close()
        raise
    return sock


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, length, type, flags, seq) of each netlink message of a datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield offset, length, kind, flags, seq
        offset += (length + 3) & ~3


class NetlinkDumper:
    """Reads kernlb's tables of the current network namespace."""

    def __init__(self, *, timeout: float = 60.0, attempts: int = 3) -> None:
        self.timeout = timeout
        self.attempts = attempts

    def dump(self, element_sets: Iterable[str] = ()) -> KernelDump:
        """Tables, chains, rules, sets, objects; elements of `element_sets` (qualified names)."""
        wanted = set(element_sets)
        for attempt in range(self.attempts):
            try:
                return self._dump(wanted)
            except DumpInterrupted:
                if attempt + 1 == self.attempts:
                    raise
        raise AssertionError("unreachable")

    def _dump(self, wanted: set[str]) -> KernelDump:
        result = KernelDump()
        sock = open_socket(self.timeout)
        try:
            for family, attrs in self._request(sock, NFT_MSG_GETTABLE, 0, b""):
                if _text(attrs.get(1, b"")) == TABLE:
                    result.tables.add(family)
            for family, attrs in self._request(sock, NFT_MSG_GETCHAIN, 0, b""):
                if family in result.tables and _text(attrs.get(1, b"")) == TABLE:
                    result.chains.setdefault(qualified(family, _text(attrs[3])), [])
            for family, attrs in self._request(sock, NFT_MSG_GETRULE, 0, b""):
                if family in result.tables and _text(attrs.get(1, b"")) == TABLE:
                    chain = qualified(family, _text(attrs[2]))
                    result.chains.setdefault(chain, []).append(rule_fingerprint(attrs.get(4, b"")))
            # Whole dumps first: one request at a time on the socket.
            for family, attrs in list(self._request(sock, NFT_MSG_GETSET, 0, b"")):
                if family not in result.tables or _text(attrs.get(1, b"")) != TABLE:
                    continue
                flags = struct.unpack(">I", attrs[3])[0] if 3 in attrs else 0
                if flags & NFT_SET_ANONYMOUS:
                    continue
                name = qualified(family, _text(attrs[2]))
                kind = "map" if flags & NFT_SET_MAP else "set"
                count = 0
                if name in wanted:
                    raw, keys, count = self._elements(sock, family, _text(attrs[2]))
                    result.elements[name] = raw
                    result.keys[name] = keys
                result.sets[name] = KernelSet(kind=kind, type=None, elements=count)
            for family, attrs in self._request(sock, NFT_MSG_GETOBJ, 0, b""):
                if family not in result.tables or _text(attrs.get(1, b"")) != TABLE:
                    continue
                object_kind = OBJECT_KINDS.get(
                    struct.unpack(">I", attrs[3])[0] if 3 in attrs else 0
                )
                if object_kind is not None:
                    name = qualified(family, _text(attrs[2]))
                    result.sets[name] = KernelSet(kind=object_kind, type=None)
        finally:
            sock.close()
        return result

    def _elements(
        self, sock: socket.socket, family: str, name: str
    ) -> tuple[frozenset[bytes], frozenset[bytes], int]:
        payload = encode_attr(1, TABLE.encode() + b"\0") + encode_attr(2, name.encode() + b"\0")
        raw: list[bytes] = []
        keys: list[bytes] = []
        count = 0
        for data, _family in run_dump(sock, NFT_MSG_GETSETELEM, NFPROTO[family], payload):
            for key, element, flags in element_keys(data):
                raw.append(element)
                if not flags & NFT_SET_INTERVAL_END:
                    keys.append(key)
                    count += 1
        return frozenset(raw), frozenset(keys), count

    def _request(
        self, sock: socket.socket, message: int, family: int, payload: bytes
    ) -> Iterator[tuple[str, dict[int, bytes]]]:
        for data, reply_family in run_dump(sock, message, family, payload):
            name = _FAMILY_NAMES.get(reply_family)
            if name is not None:
                yield name, attributes(data)


def dump_request(message: int, family: int, payload: bytes, seq: int) -> bytes:
    """An nf_tables dump request (pure; unit-tested)."""
    kind = (NFNL_SUBSYS_NFTABLES << 8) | message
    body = struct.pack("=BBH", family, 0, 0) + payload
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def dump_replies(data: bytes, seq: int) -> Iterator[tuple[bytes, int] | None]:
    """(attributes, family) of each reply message answering `seq` in a datagram; None ends
    the dump (NLMSG_DONE).  Answers to other requests (a stale dump) are skipped.  Raises
    OSError for an error answer, DumpInterrupted when the ruleset changed during the dump
    (NLM_F_DUMP_INTR on any of its messages), at once: a later request's own `seq` skips what
    is left of this dump (pure; unit-tested)."""
    for offset, length, mtype, flags, reply_seq in _messages(data):
        if reply_seq != seq:
            continue
        if flags & NLM_F_DUMP_INTR:
            raise DumpInterrupted()
        if mtype == NLMSG_DONE:
            yield None
            return
        if mtype == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            if code:
                raise OSError(-code, f"nftables dump: {os.strerror(-code)}")
        else:
            yield data[offset + _HEADER.size + 4 : offset + length], data[offset + _HEADER.size]


def run_dump(
    sock: socket.socket, message: int, family: int, payload: bytes, *, seq: int = 1
) -> Iterator[tuple[bytes, int]]:
    """Send one dump request on `sock` and yield (attributes, family) of its replies."""
    sock.send(dump_request(message, family, payload, seq))
    while True:
        for reply in dump_replies(sock.recv(1 << 20), seq):
            if reply is None:
                return
            yield reply


def encode_attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def missing_elements(
    family: str, set_name: str, keys: list[bytes], *, timeout: float = 30.0
) -> int:
    """How many of these keys the set does not hold (one GETSETELEM request per key, all in
    one datagram): a sampled membership check where a full read-back costs too much (the
    kernel walks a hash set from its start for every part of a dump: quadratic)."""
    if not keys:
        return 0
    head = encode_attr(1, TABLE.encode() + b"\0") + encode_attr(2, set_name.encode() + b"\0")
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM
    messages = []
    for seq, key in enumerate(keys, start=1):
        element = encode_attr(1 | 0x8000, encode_attr(1 | 0x8000, encode_attr(1, key)))
        body = struct.pack("=BBH", NFPROTO[family], 0, 0) + head + encode_attr(3 | 0x8000, element)
        messages.append(
            _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | 0x4, seq, 0) + body
        )
    sock = open_socket(timeout)
    try:
        sock.send(b"".join(messages))
        pending = set(range(1, len(keys) + 1))
        absent = 0
        while pending:
            data = sock.recv(1 << 20)
            for offset, _length, mtype, _flags, seq in _messages(data):
                if mtype == NLMSG_ERROR and seq in pending:
                    (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    pending.discard(seq)
                    if code == -errno.ENOENT:
                        absent += 1
                    elif code:
                        raise OSError(-code, f"nftables get element: {os.strerror(-code)}")
        return absent
    finally:
        sock.close()
