"""ctnetlink dump requests and replies (app/net/ctnetlink.py), byte by byte."""

from __future__ import annotations

import struct

import pytest

from app.net.ctnetlink import DumpError, Entry, dump_request, parse_entries


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def message(kind: int, payload: bytes) -> bytes:
    body = struct.pack("=BBH", 2, 0, 0) + payload
    return struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body


def test_a_mark_filter_of_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        dump_request(1, mark=0)
    with pytest.raises(ValueError):
        dump_request(1, mark=0x80000000, mask=0x00FFFFFF)


def test_filtered_request_carries_mark_and_mask() -> None:
    request = dump_request(7, mark=5, mask=0x00FFFFFF)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq) == (len(request), 0x101, 0x301, 7)
    assert request[20:] == attr(8, struct.pack(">I", 5)) + attr(21, struct.pack(">I", 0xFFFFFF))


def test_entries_mark_protocol_and_tcp_state() -> None:
    nested = 0x8000
    tuple_orig = attr(1 | nested, attr(2 | nested, attr(1, b"\x06")))
    protoinfo = attr(4 | nested, attr(1 | nested, attr(1, b"\x03")))
    tcp = message(0x100, tuple_orig + protoinfo + attr(8, struct.pack(">I", 0x80000005)))
    udp = message(0x100, attr(1 | nested, attr(2 | nested, attr(1, b"\x11"))))
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0" * 4
    entries, complete = parse_entries(tcp + udp)
    assert (entries, complete) == ([Entry(0x80000005, 6, 3), Entry(0, 17, None)], False)
    assert parse_entries(done) == ([], True)


def test_an_error_reply_raises() -> None:
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
    with pytest.raises(DumpError):
        parse_entries(error)
