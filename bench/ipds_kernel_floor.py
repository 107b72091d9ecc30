#!/usr/bin/env python3
"""How fast the kernel itself takes a large IPDS list, without libnftables.

Not a test, not used by kernlb: it measures the floor that a future nfnetlink element writer
could reach, beside what kernlb does today (libnftables JSON).  Run as root:

    .venv/bin/python bench/ipds_kernel_floor.py --size 1000000

In a private namespace (`kbf<pid>`, deleted on exit): one hash set of IPv4 addresses, filled
(1) through libnftables' JSON input, as kernlb's reconciler does, and (2) with one nfnetlink
batch of NEWSETELEM messages packed here (NFTA_SET_ELEM_LIST_ELEMENTS, 2,048 per message).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.net.netns import enter_netns
from app.nft.adapter import LibNftAdapter

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
BATCH_BEGIN, BATCH_END = 0x10, 0x11
NFT_MSG_NEWSETELEM = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x01, 0x04, 0x400
NLMSG_ERROR = 0x2
NESTED = 0x8000
PER_MESSAGE = 2048
NFPROTO_INET = 1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(
    kind: int, flags: int, seq: int, family: int, payload: bytes, res_id: int = 0
) -> bytes:
    body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + payload
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def netlink_fill(table: str, set_name: str, keys: list[bytes]) -> None:
    """One batch (one transaction) of NEWSETELEM messages; waits for every ack."""
    # Every IPv4 element has the same 12-byte header: LIST_ELEM { KEY { DATA_VALUE key } }.
    prefix = struct.pack("=HHHHHH", 16, 1 | NESTED, 12, 1 | NESTED, 8, 1)
    head = _attr(1, table.encode() + b"\0") + _attr(2, set_name.encode() + b"\0")
    kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM
    parts = [_message(BATCH_BEGIN, NLM_F_REQUEST, 1, 0, b"", NFNL_SUBSYS_NFTABLES)]
    seq = 1
    for start in range(0, len(keys), PER_MESSAGE):
        seq += 1
        chunk = keys[start : start + PER_MESSAGE]
        elements = prefix + prefix.join(chunk)
        payload = head + _attr(3 | NESTED, elements)
        parts.append(
            _message(kind, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, seq, NFPROTO_INET, payload)
        )
    parts.append(_message(BATCH_END, NLM_F_REQUEST, seq + 1, 0, b"", NFNL_SUBSYS_NFTABLES))
    batch = b"".join(parts)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 32, len(batch) + 65536)  # SO_SNDBUFFORCE
        sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE
        sock.bind((0, 0))
        sock.sendto(batch, (0, 0))
        pending = set(range(2, seq + 1))
        while pending:
            data = sock.recv(1 << 20)
            offset = 0
            while offset < len(data):
                length, mtype, _, mseq, _ = struct.unpack_from("=IHHII", data, offset)
                if mtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    pending.discard(mseq)
                offset += (length + 3) & ~3
    finally:
        sock.close()


def run(size: int) -> None:
    adapter = LibNftAdapter()
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    texts = [str(ipaddress.IPv4Address(base + 4 * i)) for i in range(size)]
    table = {"family": "inet", "table": "kbfloor"}
    adapter.apply(
        [
            {"add": {"table": {"family": "inet", "name": "kbfloor"}}},
            {"add": {"set": {**table, "name": "a", "type": "ipv4_addr"}}},
            {"add": {"set": {**table, "name": "b", "type": "ipv4_addr"}}},
        ]
    )
    started = time.perf_counter()
    adapter.apply([{"add": {"element": {**table, "name": "a", "elem": texts}}}])
    json_load = time.perf_counter() - started
    started = time.perf_counter()
    keys = [socket.inet_aton(t) for t in texts]
    encode = time.perf_counter() - started
    started = time.perf_counter()
    netlink_fill("kbfloor", "b", keys)
    kernel = time.perf_counter() - started
    print(
        f"{size:,} addresses: libnftables JSON {json_load:.2f} s; "
        f"nfnetlink {encode + kernel:.2f} s "
        f"({encode:.2f} s encoding, {kernel:.2f} s packing and kernel)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    ns = f"kbf{os.getpid()}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            enter_netns(ns)
            run(args.size)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    if failure:
        raise failure[0]


if __name__ == "__main__":
    main()
