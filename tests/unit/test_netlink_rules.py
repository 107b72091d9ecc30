"""The rule-handle dump's encoding and parsing (app.nft.netlink_rules over
app.nft.netlink_dump's dump), byte by byte."""

from __future__ import annotations

import errno
import struct

import pytest

from app.nft.netlink_dump import NFT_MSG_GETRULE, DumpInterrupted, dump_replies, dump_request
from app.nft.netlink_elements import NFPROTO
from app.nft.netlink_rules import chain_filter, rule_handle

HEADER = struct.Struct("=IHHII")


def message(kind: int, seq: int, payload: bytes, flags: int = 0) -> bytes:
    return HEADER.pack(HEADER.size + len(payload), kind, flags, seq, 0) + payload


def rule_reply(seq: int, handle: int) -> bytes:
    body = struct.pack("=BBH", 1, 0, 0)
    body += struct.pack("=HH", 12, 3) + struct.pack(">Q", handle)  # NFTA_RULE_HANDLE
    return message((10 << 8) | 6, seq, body, flags=0x2)  # NFT_MSG_NEWRULE, multipart


def handles(data: bytes, seq: int) -> list[int | None]:
    return [None if reply is None else rule_handle(reply[0]) for reply in dump_replies(data, seq)]


def test_the_request_names_the_table_and_chain() -> None:
    data = dump_request(NFT_MSG_GETRULE, NFPROTO["inet"], chain_filter("kernlb", "f-7"), 42)
    length, kind, flags, seq, _ = HEADER.unpack_from(data)
    assert length == len(data) and seq == 42
    assert kind == (10 << 8) | 7  # NFT_MSG_GETRULE
    assert flags == 0x1 | 0x300  # request, dump
    assert data[16] == 1  # NFPROTO_INET
    assert b"kernlb\0" in data and b"f-7\0" in data


def test_handles_in_order_until_done() -> None:
    done = message(3, 5, struct.pack("=i", 0))
    data = rule_reply(5, 1001) + rule_reply(4, 7) + rule_reply(5, 1002) + done
    assert handles(data, 5) == [1001, 1002, None]  # seq 4: a stale answer


def test_an_error_or_an_interrupted_dump_is_raised() -> None:
    error = message(2, 9, struct.pack("=i", -errno.ENOENT))
    with pytest.raises(OSError, match="No such file"):
        handles(error, 9)
    with pytest.raises(DumpInterrupted):
        handles(message((10 << 8) | 6, 9, b"\1\0\0\0", flags=0x10), 9)
