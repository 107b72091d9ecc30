"""Parsing of nfnetlink dumps for the large-list drift check (bytes built here, no kernel)."""

from __future__ import annotations

import struct

from app.nft.netlink_dump import element_keys, rule_fingerprint
from app.nft.netlink_elements import Element, encode_element, ipv4

NESTED = 0x8000


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def expression(name: str, data: bytes) -> bytes:
    return attr(1 | NESTED, attr(1, name.encode() + b"\0") + attr(2 | NESTED, data))


def test_rule_fingerprint_ignores_what_counters_accumulate() -> None:
    match = expression("cmp", attr(1, b"\0\0\0\1"))
    counted = expression("counter", attr(1, struct.pack(">Q", 10)) + attr(2, struct.pack(">Q", 1)))
    later = expression("counter", attr(1, struct.pack(">Q", 99)) + attr(2, struct.pack(">Q", 7)))
    assert rule_fingerprint(match + counted) == rule_fingerprint(match + later)
    other = expression("cmp", attr(1, b"\0\0\0\2"))
    assert rule_fingerprint(match + counted) != rule_fingerprint(other + counted)
    assert rule_fingerprint(match) != rule_fingerprint(match + counted)


def test_element_keys_of_a_dump_reply() -> None:
    elements = encode_element(ipv4("10.0.0.1")) + encode_element(
        Element(ipv4("10.0.0.9"), interval_end=True)
    )
    reply = attr(1, b"kernlb\0") + attr(2, b"l-1-4-32\0") + attr(3 | NESTED, elements)
    found = [(key, flags) for key, _, flags in element_keys(reply)]
    assert found == [(ipv4("10.0.0.1"), 0), (ipv4("10.0.0.9"), 1)]
