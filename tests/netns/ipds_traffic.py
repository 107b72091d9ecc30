"""Client-side traffic for IPDS tests: paced connection attempts, raw TCP packets."""

from __future__ import annotations

import collections
import random
import select
import socket
import struct
import time
from dataclasses import dataclass

# A pending connection is judged (and closed) this long after its SYN: shorter than the first
# SYN retransmission (1 s), so a dropped SYN is never retried and counted twice.
JUDGE_AFTER = 0.3


@dataclass(frozen=True)
class PacedResult:
    attempts: int
    accepted: int
    first: float
    last: float

    @property
    def span(self) -> float:
        return self.last - self.first


def _judge(sock: socket.socket) -> bool:
    _, writable, _ = select.select([], [sock], [], 0)
    ok = bool(writable) and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    sock.close()
    return ok


def paced_attempts(dst: str, port: int, *, source: str, rate: float, seconds: float) -> PacedResult:
    """Open connections at `rate` per second for `seconds`; count those whose handshake
    completed within JUDGE_AFTER.  Non-blocking: the pace does not depend on the answers."""
    pending: collections.deque[tuple[socket.socket, float]] = collections.deque()
    accepted = attempts = 0
    start = time.monotonic()
    first = last = start
    interval = 1.0 / rate
    n = int(rate * seconds)
    for i in range(n):
        due = start + i * interval
        while True:
            now = time.monotonic()
            while pending and now - pending[0][1] >= JUDGE_AFTER:
                accepted += _judge(pending.popleft()[0])
            if now >= due:
                break
            time.sleep(min(due - now, 0.002))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex((dst, port))
        last = time.monotonic()
        if i == 0:
            first = last
        attempts += 1
        pending.append((sock, last))
    while pending:
        sock, sent = pending.popleft()
        time.sleep(max(0.0, sent + JUDGE_AFTER - time.monotonic()))
        accepted += _judge(sock)
    return PacedResult(attempts=attempts, accepted=accepted, first=first, last=last)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}


def send_tcp_packets(
    dst: str, port: int, *, source: str, flags: tuple[str, ...], count: int, seconds: float
) -> float:
    """`count` bare TCP segments with `flags` from random source ports, spread over `seconds`;
    returns the time taken."""
    bits = sum(TCP_FLAGS[f] for f in flags)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sock.bind((source, 0))
    src = socket.inet_aton(source)
    dst_bin = socket.inet_aton(dst)
    start = time.monotonic()
    try:
        for i in range(count):
            sport = random.randint(20000, 60000)
            header = struct.pack(
                "!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, bits, 1024, 0, 0
            )
            pseudo = src + dst_bin + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
            csum = _checksum(pseudo + header)
            header = header[:16] + struct.pack("!H", csum) + header[18:]
            sock.sendto(header, (dst, 0))
            due = start + (i + 1) * seconds / count
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    finally:
        sock.close()
    return time.monotonic() - start
