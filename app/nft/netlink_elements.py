"""Set and map elements written straight through nfnetlink: one batch, many per message.

libnftables parses JSON, builds an object per element and re-checks the ruleset: about
20 us per element, 20 s for a 1,000,000-source IPDS list.  The kernel takes the same
elements in about a tenth of that when they arrive packed (NFTA_SET_ELEM_LIST_ELEMENTS holds
thousands of elements per NEWSETELEM message) in one NFNL batch, which is one nftables
transaction: all of it is committed or none.

Only elements (add, delete, flush of a set's elements) go this way; tables, sets, chains and
rules stay with libnftables.  The caller passes the ruleset generation it expects: the batch
carries it (NFNL_BATCH_GENID) and the kernel refuses the whole batch if anyone committed in
between (`GenerationChanged`), so elements never land in a ruleset the caller did not see.

Keys are raw bytes in the set's key layout (`ipv4`, `ipv6`, `concat`, ... below build them).
Pure encoding (`encode_batch`) is separate from the socket (`ElementWriter`) so it is
unit-tested byte by byte.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFNL_BATCH_GENID = 1
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14

NLM_F_REQUEST = 0x001
NLM_F_ACK = 0x004
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 0x2
NLA_F_NESTED = 0x8000

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # errors do not echo the (large) request back
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_SET_ELEM_DATA = 2
NFTA_SET_ELEM_FLAGS = 3
NFTA_SET_ELEM_TIMEOUT = 4
NFTA_SET_ELEM_KEY_END = 10
NFTA_DATA_VALUE = 1
NFTA_DATA_VERDICT = 2
NFTA_VERDICT_CODE = 1
NFTA_VERDICT_CHAIN = 2
NFT_SET_ELEM_INTERVAL_END = 0x1

NFPROTO: dict[str, int] = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
VERDICTS: dict[str, int] = {
    "drop": 0,
    "accept": 1,
    "continue": -1,
    "return": -5,
    "jump": -3,
    "goto": -4,
}

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, port id
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian)
_NLA = struct.Struct("=HH")
NFT_DATA_VALUE_MAXLEN = 64  # the kernel's largest key or value (a concatenation)
MAX_ATTR = 0xFFFF  # an attribute's length is a u16: it bounds the elements of one message


class ElementError(Exception):
    """The kernel refused the batch: nothing of it was applied."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        self.what = what
        super().__init__(f"{what}: {os.strerror(code)}")


class GenerationChanged(ElementError):
    """Someone committed to nftables after the generation the caller expected."""

    def __init__(self) -> None:
        super().__init__(errno.ERESTART, "the ruleset changed since it was read")


# -- keys -----------------------------------------------------------------------------------


def ipv4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def ipv6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def address(text: str) -> bytes:
    return ipv6(text) if ":" in text else ipv4(text)


def be16(value: int) -> bytes:
    """A port (`inet_service`): network order, as the packet carries it."""
    return struct.pack(">H", value)


def host32(value: int) -> bytes:
    """A mark (`mark`) or other host-order integer."""
    return struct.pack("=I", value)


def u8(value: int) -> bytes:
    """`inet_proto` and the like."""
    return struct.pack("=B", value)


def concat(*fields: bytes) -> bytes:
    """A concatenated key (`a . b`): each field padded to a 32-bit register."""
    return b"".join(f + b"\0" * (-len(f) % 4) for f in fields)


@dataclass(frozen=True)
class Verdict:
    """A verdict map's value: `accept`, `drop`, `goto CHAIN`, `jump CHAIN`, ..."""

    code: str
    chain: str | None = None


@dataclass(frozen=True)
class Element:
    """An element with more than a key (maps, intervals, timeouts).  Plain keys are bytes."""

    key: bytes
    data: bytes | None = None
    verdict: Verdict | None = None
    key_end: bytes | None = None  # interval sets with concatenations (`a-b . c`)
    interval_end: bool = False
    timeout_ms: int | None = None


ElementLike = bytes | Element


@dataclass(frozen=True)
class ElementOp:
    """Add or delete elements of one set or map, or `flush` (delete them all)."""

    verb: Literal["add", "delete", "flush"]
    family: str
    table: str
    set: str
    elements: Sequence[ElementLike] = ()


# -- encoding (pure) ------------------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _nested(kind: int, payload: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, payload)


def _string(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _data_value(kind: int, value: bytes) -> bytes:
    if not 0 < len(value) <= NFT_DATA_VALUE_MAXLEN:
        raise ValueError(f"a key or value is 1 to {NFT_DATA_VALUE_MAXLEN} bytes")
    return _nested(kind, _attr(NFTA_DATA_VALUE, value))


def _verdict(verdict: Verdict) -> bytes:
    if verdict.code not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict.code!r}")
    if (verdict.code in ("goto", "jump")) != (verdict.chain is not None):
        raise ValueError("goto and jump (only) name a chain")
    body = _attr(NFTA_VERDICT_CODE, struct.pack(">i", VERDICTS[verdict.code]))
    if verdict.chain is not None:
        body += _string(NFTA_VERDICT_CHAIN, verdict.chain)
    return _nested(NFTA_SET_ELEM_DATA, _nested(NFTA_DATA_VERDICT, body))


def encode_element(element: ElementLike) -> bytes:
    """One NFTA_LIST_ELEM attribute."""
    if isinstance(element, bytes):
        return _nested(NFTA_LIST_ELEM, _data_value(NFTA_SET_ELEM_KEY, element))
    body = _data_value(NFTA_SET_ELEM_KEY, element.key)
    if element.key_end is not None:
        body += _data_value(NFTA_SET_ELEM_KEY_END, element.key_end)
    if element.interval_end:
        body += _attr(NFTA_SET_ELEM_FLAGS, struct.pack(">I", NFT_SET_ELEM_INTERVAL_END))
    if element.timeout_ms is not None:
        body += _attr(NFTA_SET_ELEM_TIMEOUT, struct.pack(">Q", element.timeout_ms))
    if element.data is not None and element.verdict is not None:
        raise ValueError("an element has a value or a verdict, not both")
    if element.data is not None:
        body += _data_value(NFTA_SET_ELEM_DATA, element.data)
    if element.verdict is not None:
        body += _verdict(element.verdict)
    return _nested(NFTA_LIST_ELEM, body)


def _encoded_runs(elements: Sequence[ElementLike]) -> Iterator[tuple[int, bytes]]:
    """(size of one element, encoded elements) runs of equal-sized NFTA_LIST_ELEM attributes.

    Plain keys of one length (an IPDS list, a blocklist) share one header: one bytes join
    per run instead of a call per element (the encoding of 1,000,000 keys takes ~0.1 s).
    """
    if elements and set(map(type, elements)) == {bytes}:
        sizes = set(map(len, elements))  # type: ignore[arg-type]
        size = sizes.pop() if len(sizes) == 1 else 0
        if 0 < size <= NFT_DATA_VALUE_MAXLEN and not size % 4:
            yield 12 + size, _plain_run(size, elements)  # type: ignore[arg-type]
            return
    start = 0
    while start < len(elements):
        first = elements[start]
        if not isinstance(first, bytes) or len(first) % 4 or len(first) > NFT_DATA_VALUE_MAXLEN:
            encoded = encode_element(first)
            yield len(encoded), encoded
            start += 1
            continue
        size = len(first)
        end = start + 1
        while end < len(elements):
            item = elements[end]
            if not isinstance(item, bytes) or len(item) != size:
                break
            end += 1
        keys: Sequence[bytes] = elements[start:end]  # type: ignore[assignment]
        yield 12 + size, _plain_run(size, keys)
        start = end


def _plain_run(size: int, keys: Sequence[bytes]) -> bytes:
    """NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE key } } for keys of one size."""
    header = (
        _NLA.pack(12 + size, NFTA_LIST_ELEM | NLA_F_NESTED)
        + _NLA.pack(8 + size, NFTA_SET_ELEM_KEY | NLA_F_NESTED)
        + _NLA.pack(4 + size, NFTA_DATA_VALUE)
    )
    return header + header.join(keys)


def _chunks(elements: Sequence[ElementLike], room: int) -> Iterator[bytes]:
    """Encoded elements grouped so each group fits one NFTA_SET_ELEM_LIST_ELEMENTS."""
    pending: list[bytes] = []
    used = 0
    for unit, run in _encoded_runs(elements):
        if unit > room:
            raise ValueError("an element is larger than a netlink attribute can hold")
        offset = 0
        while offset < len(run):
            if used + unit > room:
                yield b"".join(pending)
                pending, used = [], 0
            take = min(len(run) - offset, (room - used) // unit * unit)
            pending.append(run[offset : offset + take])
            used += take
            offset += take
    if pending:
        yield b"".join(pending)


def _message(
    kind: int, flags: int, seq: int, family: int, payload: bytes, res_id: int = 0
) -> bytes:
    body = _NFGENMSG.pack(family, 0, socket.htons(res_id)) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


@dataclass(frozen=True)
class EncodedBatch:
    data: bytes
    # seq -> what the message does (for error messages); every one of them is acked.
    messages: dict[int, str]
    begin_seq: int


def encode_batch(
    ops: Iterable[ElementOp],
    *,
    generation: int | None = None,
    first_seq: int = 1,
    room: int = MAX_ATTR - _NLA.size,
) -> EncodedBatch:
    """One NFNL batch (one nftables transaction) for these operations, in their order."""
    seq = first_seq
    begin_payload = (
        b"" if generation is None else _attr(NFNL_BATCH_GENID, struct.pack(">I", generation))
    )
    parts = [
        _message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, begin_payload, NFNL_SUBSYS_NFTABLES)
    ]
    begin_seq = seq
    messages: dict[int, str] = {}
    for op in ops:
        if op.family not in NFPROTO:
            raise ValueError(f"unknown nftables family {op.family!r}")
        family = NFPROTO[op.family]
        head = _string(NFTA_SET_ELEM_LIST_TABLE, op.table) + _string(NFTA_SET_ELEM_LIST_SET, op.set)
        where = f"{op.family} {op.table} {op.set}"
        if op.verb == "flush":
            seq += 1
            kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM
            parts.append(_message(kind, NLM_F_REQUEST | NLM_F_ACK, seq, family, head))
            messages[seq] = f"flushing the elements of {where}"
            continue
        if op.verb == "add":
            kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM
            flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
            what = f"adding elements to {where}"
        elif op.verb == "delete":
            kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM
            flags = NLM_F_REQUEST | NLM_F_ACK
            what = f"deleting elements of {where}"
        else:
            raise ValueError(f"unknown verb {op.verb!r}")
        for chunk in _chunks(op.elements, room):
            seq += 1
            payload = head + _nested(NFTA_SET_ELEM_LIST_ELEMENTS, chunk)
            parts.append(_message(kind, flags, seq, family, payload))
            messages[seq] = what
    seq += 1
    parts.append(_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq, 0, b"", NFNL_SUBSYS_NFTABLES))
    return EncodedBatch(data=b"".join(parts), messages=messages, begin_seq=begin_seq)


def parse_acks(data: bytes) -> Iterator[tuple[int, int]]:
    """(seq, error code) of each NLMSG_ERROR in a datagram (code 0 = ack)."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return
        if kind == NLMSG_ERROR and length >= _NLMSGHDR.size + 4:
            (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
            yield seq, -code
        offset += (length + 3) & ~3


# -- the socket -----------------------------------------------------------------------------


class ElementWriter:
    """Sends element batches to the kernel of the current network namespace."""

    def __init__(self, *, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._seq = (os.getpid() & 0xFFFF) << 12

    def write(self, ops: Sequence[ElementOp], *, generation: int | None = None) -> None:
        """Apply the operations as one transaction; raise `ElementError` (nothing applied).

        `generation`: the ruleset generation the operations were computed against; if the
        kernel's differs (someone else committed), `GenerationChanged` and nothing applied.
        """
        if not any(op.verb == "flush" or op.elements for op in ops):
            return
        batch = encode_batch(ops, generation=generation, first_seq=self._next_seq())
        self._seq = max(batch.messages) + 2
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._prepare(sock, len(batch.data))
            sock.sendto(batch.data, (0, 0))
            self._wait(sock, batch)
        finally:
            sock.close()

    def _next_seq(self) -> int:
        if self._seq > 0x7FFF_0000:
            self._seq = 1
        return self._seq

    def _prepare(self, sock: socket.socket, size: int) -> None:
        sock.settimeout(self.timeout)
        try:
            # The whole batch is one datagram: the send buffer must hold it.
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size + 65536)
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 22)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size + 65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))

    @staticmethod
    def _wait(sock: socket.socket, batch: EncodedBatch) -> None:
        pending = set(batch.messages)
        while pending:
            for seq, code in parse_acks(sock.recv(1 << 20)):
                if code == 0:
                    pending.discard(seq)
                    continue
                if seq == batch.begin_seq and code == errno.ERESTART:
                    raise GenerationChanged()
                what = batch.messages.get(seq, "committing the element batch")
                raise ElementError(code, what)
