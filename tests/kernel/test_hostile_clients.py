"""Hostile clients against the real server (uvicorn + kernlb) in a scratch namespace: a 50 MB
chunked body is cut at the limit without being buffered; clients that dribble headers or a
body byte by byte are cut after the timeout and do not starve a well-behaved client."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import require_netns
from tests.kernel.server import KEY, PORT, kernlb_in_scratch_namespace, rss_kib

pytestmark = pytest.mark.netns

TIMEOUT = 2.0
SLOW_CLIENTS = 30


def _post_chunked(total: int) -> tuple[int, bytes]:
    """Send up to `total` bytes as a chunked JSON body; stop when the server answers."""
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    sock.sendall(
        b"POST /zapi/v3.1/zapi.cgi/farms HTTP/1.1\r\nHost: lb\r\n"
        + f"ZAPI_KEY: {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(framed)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return sent, answer


def test_a_50_mb_chunked_body_is_cut_at_the_limit(tmp_path: Path) -> None:
    require_netns()
    with kernlb_in_scratch_namespace(tmp_path) as (proc, executor):
        before = rss_kib(proc.pid)
        sent, answer = executor.run(_post_chunked, 50 * 1024 * 1024)
        grown_mib = (rss_kib(proc.pid) - before) / 1024
    head, _, body = answer.partition(b"\r\n\r\n")
    print(
        f"\n50 MB chunked POST: server answered after {sent / 2**20:.1f} MiB sent, "
        f"RSS +{grown_mib:.1f} MiB"
    )
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body) == {
        "description": "POST /farms",
        "error": "true",
        "message": "The request body exceeds the limit of 1048576 bytes.",
    }
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes before answering"
    assert grown_mib < 20, f"server memory grew by {grown_mib:.1f} MiB"


def _dribble(request: bytes, started: float, *, limit: float) -> float:
    """Send `request` one byte every 0.2 s until the server closes; seconds until it did."""
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=limit)
    try:
        for byte in request:
            sock.send(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                data = sock.recv(65536)
                if data.startswith(b"HTTP/1.1 408") or not data:
                    return time.monotonic() - started
            if time.monotonic() - started > limit:
                break
        raise AssertionError("the server never cut a client that sent one byte every 0.2 s")
    except (BrokenPipeError, ConnectionResetError):
        return time.monotonic() - started
    finally:
        sock.close()


def _version() -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as sock:
        sock.sendall(
            b"GET /zapi/v3.1/zapi.cgi/system/version HTTP/1.1\r\nHost: lb\r\n"
            + f"ZAPI_KEY: {KEY}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return time.monotonic() - started


def test_slow_clients_are_cut_and_do_not_starve_others(tmp_path: Path) -> None:
    require_netns()
    headers = b"GET /zapi/v3.1/zapi.cgi/farms HTTP/1.1\r\nHost: lb\r\n" + b"X-Slow: " + b"a" * 200
    body_head = (
        b"POST /zapi/v3.1/zapi.cgi/farms HTTP/1.1\r\nHost: lb\r\n"
        + f"ZAPI_KEY: {KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    with kernlb_in_scratch_namespace(tmp_path, "--client-timeout", str(TIMEOUT)) as (_, executor):
        started = time.monotonic()
        slow = [
            executor.submit(_dribble, headers, started, limit=4 * TIMEOUT)
            for _ in range(SLOW_CLIENTS // 2)
        ]
        # Body dribblers: the headers arrive at once, then one body byte every 0.2 s.
        slow += [
            executor.submit(_dribble_body, body_head, started, limit=4 * TIMEOUT)
            for _ in range(SLOW_CLIENTS // 2)
        ]
        time.sleep(0.5)
        fast = [executor.run(_version) for _ in range(10)]
        cut_after = [future.result(timeout=30) for future in slow]
    print(
        f"\n{SLOW_CLIENTS} slow clients cut after {min(cut_after):.1f}-{max(cut_after):.1f}s "
        f"(timeout {TIMEOUT}s); meanwhile 10 requests took at most {max(fast) * 1000:.0f} ms"
    )
    assert max(fast) < 1.0, fast
    # Never before the timeout; late by at most 2.5 s: a body dribbler's deadline starts once its
    # request has passed authentication, which waits for a CPU when the suite's parallel workers
    # load both cores (3.8 s was seen at load average 10; a hung cut would take 4 x TIMEOUT).
    assert all(TIMEOUT - 0.3 <= t <= TIMEOUT + 2.5 for t in cut_after), cut_after


def _dribble_body(head: bytes, started: float, *, limit: float) -> float:
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=limit)
    try:
        sock.sendall(head)
        for _ in range(200):
            sock.send(b" ")
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                data = sock.recv(65536)
                if data.startswith(b"HTTP/1.1 408"):
                    cut = time.monotonic() - started
                    while more := sock.recv(65536):  # closed after the envelope
                        data += more
                    assert b"The request body was not received in time." in data, data
                    return cut
                raise AssertionError(f"unexpected answer {data[:200]!r}")
            if time.monotonic() - started > limit:
                break
        raise AssertionError("the server never cut a client dribbling its body")
    except (BrokenPipeError, ConnectionResetError):
        return time.monotonic() - started
    finally:
        sock.close()
