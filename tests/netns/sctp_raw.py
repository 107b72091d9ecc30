"""SCTP handshakes over raw sockets, for kernels without an SCTP stack (``CONFIG_IP_SCTP``).

The load balancer only needs SCTP *conntrack* and NAT (``CONFIG_NF_CT_PROTO_SCTP``), which a
kernel can have without SCTP sockets. So the client sends an SCTP INIT chunk from a raw socket,
and each backend runs this file as a responder that answers every INIT with an INIT ACK whose
State Cookie is a hello line like backend_server.py's (``<name> <peer_ip> <peer_port>
<local_port>``). The first two packets of a real association thus cross the LB, both ways, with
correct verification tags and CRC32c checksums (conntrack checks both).

As a module: :func:`sctp_hello` (client side). As a script (in a backend namespace):

    python3 sctp_raw.py --name b1      # answers INITs on every port, IPv4 and IPv6
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass

IPPROTO_SCTP = 132
INIT, INIT_ACK = 1, 2
STATE_COOKIE = 7


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli), as SCTP uses it (RFC 9260 appendix A)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _padded(body: bytes) -> bytes:
    return body + b"\0" * (-len(body) % 4)


def chunk(kind: int, value: bytes) -> bytes:
    return _padded(struct.pack("!BBH", kind, 0, 4 + len(value)) + value)


def packet(src_port: int, dst_port: int, vtag: int, chunks: bytes) -> bytes:
    """An SCTP packet (common header + chunks) with its CRC32c (stored little-endian)."""
    body = struct.pack("!HHII", src_port, dst_port, vtag, 0) + chunks
    return body[:8] + struct.pack("<I", crc32c(body)) + body[12:]


def init_chunk(kind: int, tag: int, tsn: int, params: bytes = b"") -> bytes:
    """INIT or INIT ACK: initiate tag, a_rwnd, 1 stream each way, initial TSN, parameters."""
    return chunk(kind, struct.pack("!IIHHI", tag, 65536, 1, 1, tsn) + params)


@dataclass(frozen=True)
class Parsed:
    src_port: int
    dst_port: int
    vtag: int
    kind: int
    tag: int  # the initiate tag of an INIT / INIT ACK
    cookie: bytes


def parse(data: bytes, family: socket.AddressFamily) -> Parsed | None:
    """An INIT / INIT ACK from what a raw socket read (IPv4 raw sockets include the IP header)."""
    if family == socket.AF_INET:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 32:
        return None
    src_port, dst_port, vtag, checksum = struct.unpack("!HHII", data[:12])
    if struct.pack("!I", checksum) != struct.pack("<I", crc32c(data[:8] + b"\0" * 4 + data[12:])):
        return None
    kind, _flags, length = struct.unpack("!BBH", data[12:16])
    if kind not in (INIT, INIT_ACK) or length < 20:
        return None
    tag = struct.unpack("!I", data[16:20])[0]
    cookie = b""
    params = data[32 : 12 + length]
    while len(params) >= 4:
        ptype, plen = struct.unpack("!HH", params[:4])
        if plen < 4:
            break
        if ptype == STATE_COOKIE:
            cookie = params[4:plen]
        params = params[(plen + 3) // 4 * 4 :]
    return Parsed(src_port, dst_port, vtag, kind, tag, cookie)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def sctp_exchange(
    dst: str, port: int, *, source: str | None = None, timeout: float = 2.0
) -> tuple[bytes, tuple[str, int]]:
    """Send an INIT to dst:port from a random port; return the INIT ACK's State Cookie and where
    the INIT ACK came from (address, port). Raises TimeoutError if none comes back."""
    family = _family(dst)
    src_port = 1024 + int.from_bytes(os.urandom(2), "big") % 60000
    tag = 1 + int.from_bytes(os.urandom(4), "big") % 0xFFFFFFFE
    with socket.socket(family, socket.SOCK_RAW, IPPROTO_SCTP) as sock:
        if source is not None:
            sock.bind((source, 0))
        sock.sendto(packet(src_port, port, 0, init_chunk(INIT, tag, tag)), (dst, 0))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no INIT ACK from {dst}:{port} for source port {src_port}")
            sock.settimeout(remaining)
            data, addr = sock.recvfrom(65535)
            got = parse(data, family)
            if got and got.kind == INIT_ACK and got.dst_port == src_port and got.vtag == tag:
                return got.cookie, (addr[0], got.src_port)


def _respond(name: str, sock: socket.socket) -> None:
    data, addr = sock.recvfrom(65535)
    got = parse(data, sock.family)
    if got is None or got.kind != INIT:
        return
    hello = f"{name} {addr[0]} {got.src_port} {got.dst_port}".encode()
    params = _padded(struct.pack("!HH", STATE_COOKIE, 4 + len(hello)) + hello)
    reply = init_chunk(INIT_ACK, got.tag ^ 0x5A5A5A5A or 1, 1, params)
    sock.sendto(packet(got.dst_port, got.src_port, got.tag, reply), (addr[0], 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sel = selectors.DefaultSelector()
    socks = [
        socket.socket(f, socket.SOCK_RAW, IPPROTO_SCTP) for f in (socket.AF_INET, socket.AF_INET6)
    ]
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            for key, _ in sel.select(timeout=1.0):
                assert isinstance(key.fileobj, socket.socket)
                with contextlib.suppress(OSError):
                    _respond(args.name, key.fileobj)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
