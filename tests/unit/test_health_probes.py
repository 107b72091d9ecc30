"""Probes without a network: HTTP over in-memory streams (check_http's rules), and Nagios
plugins run as local processes (arguments, exit codes, timeouts that kill the process).

Native TCP and HTTP probes against real servers, and their agreement with the real plugins,
are in tests/netns/test_farmguardian.py (no traffic is sent in the root namespace)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from app.health.checks import CommandCheck, HttpCheck, parse_check
from app.health.clock import SystemClock, first_of
from app.health.probes import ProbeResult, command_probe, http_probe

HOST = "198.18.2.1"


class FakeWriter:
    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


def http(check: HttpCheck, response: bytes, *, port: int | None = 8080) -> tuple[ProbeResult, Any]:
    """Probe with a server that answers `response` then closes; returns (result, connection)."""
    seen: dict[str, Any] = {}

    async def connect(host: str, port: int, **options: Any) -> tuple[Any, Any]:
        reader = asyncio.StreamReader()
        reader.feed_data(response)
        reader.feed_eof()
        writer = FakeWriter()
        seen.update(host=host, port=port, options=options, writer=writer)
        return reader, writer

    async def probe() -> ProbeResult:
        return await http_probe(check, HOST, port, connect=connect)

    return asyncio.run(probe()), seen


OK_PAGE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall systems nominal\n"


def test_http_request_and_success() -> None:
    check = parse_check("check_http -I HOST -p PORT -e 200 -u /health", Path("/none"))
    assert isinstance(check, HttpCheck)
    result, seen = http(check, OK_PAGE)
    assert result == ProbeResult(True, "http://198.18.2.1:8080/health: HTTP/1.1 200 OK")
    assert (seen["host"], seen["port"], seen["options"]) == (HOST, 8080, {})
    assert seen["writer"].sent == (
        b"GET /health HTTP/1.0\r\nUser-Agent: kernlb-farmguardian\r\nConnection: close\r\n\r\n"
    )
    assert seen["writer"].closed


@pytest.mark.parametrize(
    ("script", "port", "host_header"),
    [
        ("check_http -H HOST -p PORT", 8080, b"Host: 198.18.2.1:8080\r\n"),
        ("check_http -H HOST -p PORT", 80, b"Host: 198.18.2.1\r\n"),
        ("check_http -I HOST -H www.example.com -p PORT", 80, b"Host: www.example.com\r\n"),
        ("check_http -I HOST -H www.example.com -S -p PORT", 443, b"Host: www.example.com\r\n"),
        ("check_http -I HOST -H www.example.com -S", None, b"Host: www.example.com\r\n"),
        ("check_http -I HOST -H www.example.com -p PORT", 8443, b"Host: www.example.com:8443\r\n"),
    ],
)
def test_host_header_like_check_http(script: str, port: int | None, host_header: bytes) -> None:
    check = parse_check(script, Path("/none"))
    assert isinstance(check, HttpCheck)
    _, seen = http(check, OK_PAGE, port=port)
    assert host_header in seen["writer"].sent


def test_tls_is_used_without_verifying_the_certificate() -> None:
    check = parse_check("check_http -I HOST -S", Path("/none"))
    assert isinstance(check, HttpCheck)
    result, seen = http(check, OK_PAGE, port=None)
    assert result.ok and result.reason.startswith("https://198.18.2.1:443/:")
    context = seen["options"]["ssl"]
    assert (seen["port"], context.check_hostname, context.verify_mode) == (443, False, 0)


@pytest.mark.parametrize(
    ("expect", "status_line", "healthy"),
    [
        ((), "HTTP/1.1 200 OK", True),
        ((), "HTTP/1.0 204 No Content", True),
        ((), "HTTP/1.1 302 Found", True),  # check_http: redirects are OK by default
        ((), "HTTP/1.1 404 Not Found", False),  # WARNING: not 0, so unhealthy
        ((), "HTTP/1.1 503 Service Unavailable", False),
        ((), "SSH-2.0-OpenSSH_9.2", False),
        ((), "HTTP/1.1 2000 OK", False),
        (("200",), "HTTP/1.1 200 OK", True),
        (("200",), "HTTP/1.1 302 Found", False),
        (("200", "302"), "HTTP/1.1 302 Found", True),
        (("404",), "HTTP/1.1 404 Not Found", True),  # -e skips the other status logic
    ],
)
def test_status_line_rules(expect: tuple[str, ...], status_line: str, healthy: bool) -> None:
    result, _ = http(HttpCheck(port="PORT", expect=expect), status_line.encode() + b"\r\n\r\n")
    assert result.ok is healthy, result


def test_expected_string_in_the_content() -> None:
    found, _ = http(HttpCheck(port="PORT", body="nominal"), OK_PAGE)
    assert found.ok
    missing, _ = http(HttpCheck(port="PORT", body="Content-Type"), OK_PAGE)  # only in headers
    assert missing == ProbeResult(False, "http://198.18.2.1:8080/: string 'Content-Type' not found")


def test_no_answer_is_unhealthy() -> None:
    result, _ = http(HttpCheck(port="PORT"), b"")
    assert result == ProbeResult(False, "http://198.18.2.1:8080/: no data received")


def test_connection_refused_is_unhealthy() -> None:
    async def connect(host: str, port: int, **options: Any) -> tuple[Any, Any]:
        raise ConnectionRefusedError(111, "Connection refused")

    result = asyncio.run(http_probe(HttpCheck(port="PORT"), HOST, 80, connect=connect))
    assert result == ProbeResult(
        False, "http://198.18.2.1:80/: connection failed: Connection refused"
    )


# -- Nagios plugins ------------------------------------------------------------------------


def plugin(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_plugin_gets_substituted_arguments_and_its_exit_code_decides(tmp_path: Path) -> None:
    plugin(tmp_path, "check_args", 'echo "ARGS $*"; echo second line; exit "$EXIT"\n')
    check = parse_check("check_args -H HOST -p PORT -x HOST:PORT '$(touch pwned)'", tmp_path)
    assert isinstance(check, CommandCheck)
    result = asyncio.run(command_probe(check, HOST, 8080))
    # $EXIT is not in the plugin's environment: `exit ""` is a shell error (status 2).
    assert result == ProbeResult(
        False, "check_args: ARGS -H 198.18.2.1 -p 8080 -x 198.18.2.1:8080 $(touch pwned)"
    )
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_plugin_exit_codes(tmp_path: Path) -> None:
    for code, healthy in ((0, True), (1, False), (2, False), (3, False)):
        plugin(tmp_path, "check_code", f"echo 'STATE {code}'; exit {code}\n")
        check = parse_check("check_code", tmp_path)
        assert isinstance(check, CommandCheck)
        result = asyncio.run(command_probe(check, HOST, None))
        assert result == ProbeResult(healthy, f"check_code: STATE {code}")


def test_plugin_without_output_reports_its_exit_code(tmp_path: Path) -> None:
    plugin(tmp_path, "check_quiet", "exit 2\n")
    check = parse_check("check_quiet", tmp_path)
    assert isinstance(check, CommandCheck)
    assert asyncio.run(command_probe(check, HOST, None)) == ProbeResult(
        False, "check_quiet: exit code 2"
    )


def test_missing_plugin_fails_the_probe(tmp_path: Path) -> None:
    check = parse_check("check_gone -H HOST", tmp_path)
    assert isinstance(check, CommandCheck)
    assert asyncio.run(command_probe(check, HOST, None)) == ProbeResult(
        False, "check_gone: No such file or directory"
    )


def test_a_plugin_that_outlives_the_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The plugin starts a child and both sleep; both must be gone once the probe timed out.
    plugin(tmp_path, "check_slow", f"sleep 30 & echo $$ $! > {pids}; wait\n")
    check = parse_check("check_slow", tmp_path)
    assert isinstance(check, CommandCheck)

    async def probe() -> ProbeResult | None:
        return await first_of(SystemClock(), 0.5, command_probe(check, HOST, None))

    started = time.monotonic()
    assert asyncio.run(probe()) is None
    assert time.monotonic() - started < 5
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} survived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of init is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
