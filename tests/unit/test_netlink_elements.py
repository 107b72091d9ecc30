"""The nfnetlink element writer's encoding, byte by byte (no socket, no kernel)."""

from __future__ import annotations

import errno
import struct

import pytest

from app.nft.netlink_elements import (
    NFNL_BATCH_GENID,
    NFNL_MSG_BATCH_BEGIN,
    NFNL_MSG_BATCH_END,
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWSETELEM,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    Element,
    ElementOp,
    Verdict,
    be16,
    concat,
    encode_batch,
    encode_element,
    ipv4,
    ipv6,
    parse_acks,
)

NESTED = 0x8000


def messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload after nfgenmsg) of each message of a batch."""
    out = []
    offset = 0
    while offset < len(data):
        length, kind, flags, seq, _ = struct.unpack_from("=IHHII", data, offset)
        out.append((kind, flags, seq, data[offset + 16 : offset + length]))
        offset += (length + 3) & ~3
    assert offset == len(data)
    return out


def attrs(payload: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of the attributes of a payload (the nfgenmsg already stripped)."""
    out = []
    offset = 0
    while offset < len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        assert length >= 4
        out.append((kind, payload[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    assert offset == len(payload)
    return out


def test_one_ipv4_key_is_the_kernels_layout() -> None:
    # NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE 198.51.100.7 } }
    expected = struct.pack("=HHHHHH", 16, 1 | NESTED, 12, 1 | NESTED, 8, 1) + bytes(
        [198, 51, 100, 7]
    )
    assert encode_element(ipv4("198.51.100.7")) == expected
    # The same through the fast path for runs of plain keys.
    batch = encode_batch([ElementOp("add", "inet", "kernlb", "l-1-4-32", [ipv4("198.51.100.7")])])
    (_, _, _, payload) = messages(batch.data)[1]
    (_, _, (kind, elements)) = attrs(payload[4:])
    assert kind == 3 | NESTED
    assert elements == expected


def test_batch_frame_generation_and_flags() -> None:
    ops = [
        ElementOp("add", "inet", "kernlb", "s", [ipv4("10.0.0.1")]),
        ElementOp("delete", "inet", "kernlb", "s", [ipv4("10.0.0.2")]),
        ElementOp("flush", "ip6", "kernlb", "t"),
    ]
    batch = encode_batch(ops, generation=0x01020304, first_seq=100)
    found = messages(batch.data)
    kinds = [kind for kind, _, _, _ in found]
    assert kinds == [
        NFNL_MSG_BATCH_BEGIN,
        (10 << 8) | NFT_MSG_NEWSETELEM,
        (10 << 8) | NFT_MSG_DELSETELEM,
        (10 << 8) | NFT_MSG_DELSETELEM,
        NFNL_MSG_BATCH_END,
    ]
    assert [seq for _, _, seq, _ in found] == [100, 101, 102, 103, 104]
    assert batch.begin_seq == 100
    assert sorted(batch.messages) == [101, 102, 103]
    begin = found[0][3]
    # nfgenmsg: AF_UNSPEC, version 0, res_id = NFNL_SUBSYS_NFTABLES (big-endian)
    assert begin[:4] == bytes([0, 0, 0, 10])
    assert attrs(begin[4:]) == [(NFNL_BATCH_GENID, bytes([1, 2, 3, 4]))]
    assert found[1][1] == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
    assert found[2][1] == NLM_F_REQUEST | NLM_F_ACK
    # families: inet = 1, ip6 = 10; the flush names table and set and carries no elements
    assert found[1][3][0] == 1 and found[3][3][0] == 10
    assert attrs(found[3][3][4:]) == [(1, b"kernlb\0"), (2, b"t\0")]
    assert messages(encode_batch(ops).data)[0][3] == bytes([0, 0, 0, 10])  # no generation


def test_large_loads_are_split_into_full_messages() -> None:
    keys = [struct.pack(">I", 0x0A000000 + i) for i in range(10_000)]
    batch = encode_batch([ElementOp("add", "inet", "kernlb", "big", keys)])
    found = messages(batch.data)[1:-1]
    total = []
    for _, _, _, payload in found:
        (_, _, (_, elements)) = attrs(payload[4:])
        assert len(elements) + 4 <= 0xFFFF  # a u16 attribute length
        total.extend(value[-4:] for _, value in attrs(elements))
    assert total == keys  # every key, once, in order
    assert len(found) == 3  # 4,095 elements of 16 bytes per message


def test_ipv6_and_mixed_elements_keep_their_order() -> None:
    items = [ipv6("2001:db8::1"), Element(ipv4("10.0.0.1"), data=be16(80)), ipv6("2001:db8::2")]
    batch = encode_batch([ElementOp("add", "inet", "kernlb", "m", items)])
    (_, _, _, payload) = messages(batch.data)[1]
    (_, _, (_, elements)) = attrs(payload[4:])
    listed = attrs(elements)
    assert [encode_element(i) for i in items] == [
        struct.pack("=HH", len(v) + 4, k) + v for k, v in listed
    ]


def test_map_element_with_a_verdict() -> None:
    element = Element(concat(ipv4("198.18.0.10"), be16(80)), verdict=Verdict("goto", "f-1"))
    ((kind, body),) = attrs(encode_element(element))
    assert kind == 1 | NESTED
    key, data = attrs(body)
    # a concatenation pads each field to 32 bits
    assert key == (1 | NESTED, struct.pack("=HH", 12, 1) + bytes([198, 18, 0, 10, 0, 80, 0, 0]))
    assert data[0] == 2 | NESTED
    ((verdict_kind, verdict),) = attrs(data[1])
    assert verdict_kind == 2 | NESTED
    assert attrs(verdict) == [(1, struct.pack(">i", -4)), (2, b"f-1\0")]


def test_bad_elements_are_refused_before_any_io() -> None:
    with pytest.raises(ValueError):
        encode_element(Element(b"\0" * 4, verdict=Verdict("goto")))
    with pytest.raises(ValueError):
        encode_element(Element(b"\0" * 4, verdict=Verdict("accept", "c")))
    with pytest.raises(ValueError):
        encode_element(Element(b"\0" * 4, data=b"\0" * 4, verdict=Verdict("drop")))
    with pytest.raises(ValueError):
        encode_batch([ElementOp("add", "nosuch", "kernlb", "s", [b"\0" * 4])])
    with pytest.raises(ValueError):
        encode_batch([ElementOp("add", "inet", "kernlb", "s", [b"\0" * 70_000])])


def test_acks_and_errors_are_parsed() -> None:
    def error(seq: int, code: int) -> bytes:
        return struct.pack("=IHHII", 36, 2, 0, seq, 0) + struct.pack("=i", code) + b"\0" * 16

    data = error(7, 0) + error(8, -errno.ENOENT) + error(9, -errno.ERESTART)
    assert list(parse_acks(data)) == [(7, 0), (8, errno.ENOENT), (9, errno.ERESTART)]
