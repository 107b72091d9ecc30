"""The rule-handle dump's encoding and parsing (app.nft.netlink_rules), byte by byte."""

from __future__ import annotations

import errno
import struct

import pytest

from app.nft.netlink_dump import DumpInterrupted
from app.nft.netlink_rules import parse_handles, request

HEADER = struct.Struct("=IHHII")


def message(kind: int, seq: int, payload: bytes, flags: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(payload), kind, flags, seq, 0) + payload


def rule_reply(seq: int, handle: int) -> bytes:
    body = struct.pack("=BBH", 1, 0, 0)
    body += struct.pack("=HH", 12, 3) + struct.pack(">Q", handle)  # NFTA_RULE_HANDLE
    return message((10 << 8) | 6, seq, body, flags=0x2)  # NFT_MSG_NEWRULE, multipart


def test_the_request_names_the_table_and_chain() -> None:
    data = request("inet", "kernlb", "f-7", 42)
    length, kind, flags, seq, _ = HEADER.unpack_from(data)
    assert length == len(data) and seq == 42
    assert kind == (10 << 8) | 7  # NFT_MSG_GETRULE
    assert flags == 0x1 | 0x300  # request, dump
    assert data[16] == 1  # NFPROTO_INET
    assert b"kernlb\0" in data and b"f-7\0" in data


def test_handles_in_order_until_done() -> None:
    done = message(3, 5, struct.pack("=i", 0))
    data = rule_reply(5, 1001) + rule_reply(4, 7) + rule_reply(5, 1002) + done
    assert list(parse_handles(data, 5)) == [1001, 1002, None]  # seq 4: a stale answer


def test_an_error_or_an_interrupted_dump_is_raised() -> None:
    error = message(2, 9, struct.pack("=i", -errno.ENOENT))
    with pytest.raises(OSError, match="No such file"):
        list(parse_handles(error, 9))
    with pytest.raises(DumpInterrupted):
        list(parse_handles(message((10 << 8) | 6, 9, b"\1\0\0\0", flags=0x10), 9))
