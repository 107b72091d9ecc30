"""Probes: one check of one backend, answering healthy or not, with a reason.

Probes carry no timeout of their own: the scheduler cancels a probe that outlives its timeout,
and a cancelled command probe kills its plugin (the whole process group) before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.health.checks import Check, CommandCheck, HttpCheck, TcpCheck, resolve_port, substitute

MAX_RESPONSE = 1 << 20  # bytes of an HTTP response searched for `-s`
MAX_REASON = 255  # backend_health.reason
# Plugins get a fixed, minimal environment: their messages become reasons, so keep them in C.
PLUGIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}

Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str


Prober = Callable[[Check, str, int | None], Awaitable[ProbeResult]]


def endpoint(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    return shown if port is None else f"{shown}:{port}"


def _error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError):
        return os.strerror(exc.errno)  # asyncio's "Connect call failed (...)" says less
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def probe_target(check: Check, host: str, port: int | None) -> str:
    """What a probe talks to, for reasons: `198.18.2.1:80`, `http://...`, or the plugin."""
    if isinstance(check, TcpCheck):
        return endpoint(host, resolve_port(check.port, port, default=0))
    if isinstance(check, HttpCheck):
        target = resolve_port(check.port, port, default=443 if check.tls else 80)
        return f"{'https' if check.tls else 'http'}://{endpoint(host, target)}{check.url}"
    return f"{check.name} for {endpoint(host, port)}"


async def run_check(check: Check, host: str, port: int | None) -> ProbeResult:
    """The production prober: dispatch on the kind of check."""
    if isinstance(check, TcpCheck):
        return await tcp_probe(host, resolve_port(check.port, port, default=0))
    if isinstance(check, HttpCheck):
        return await http_probe(check, host, port)
    return await command_probe(check, host, port)


async def tcp_probe(host: str, port: int | None) -> ProbeResult:
    where = endpoint(host, port)
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return ProbeResult(False, f"TCP connect to {where} failed: {_error(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, f"TCP connect to {where} accepted")


def _insecure_tls() -> ssl.SSLContext:
    # Like check_http: encryption without verifying the certificate or the name.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_request(check: HttpCheck, host: str, port: int) -> bytes:
    lines = [f"GET {check.url} HTTP/1.0", "User-Agent: kernlb-farmguardian", "Connection: close"]
    if check.hostname is not None:
        name = substitute(check.hostname, host, port)
        default = 443 if check.tls else 80
        lines.append(f"Host: {name}" if port == default else f"Host: {name}:{port}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def judge_status(check: HttpCheck, status_line: str) -> str | None:
    """Why the status line fails the check (check_http's rules), or None when it passes."""
    if check.expect:
        if any(expected in status_line for expected in check.expect):
            return None
        return f"status '{status_line}' does not contain {' or '.join(check.expect)}"
    parts = status_line.split(" ", 2)
    if "HTTP/1." not in status_line or len(parts) < 2 or not (parts[1].isdigit()):
        return f"invalid HTTP response '{status_line[:80]}'"
    code = int(parts[1])
    if len(parts[1]) != 3 or not 100 <= code < 600:
        return f"invalid HTTP status '{status_line}'"
    if code >= 400:
        return f"status '{status_line}'"
    return None


async def http_probe(
    check: HttpCheck,
    host: str,
    port: int | None,
    *,
    connect: Connect = asyncio.open_connection,
) -> ProbeResult:
    target = resolve_port(check.port, port, default=443 if check.tls else 80)
    assert target is not None
    where = probe_target(check, host, port)
    options: dict[str, Any] = {"ssl": _insecure_tls()} if check.tls else {}
    try:
        reader, writer = await connect(host, target, **options)
    except (OSError, ssl.SSLError) as exc:
        return ProbeResult(False, f"{where}: connection failed: {_error(exc)}")
    try:
        writer.write(http_request(check, host, target))
        await writer.drain()
        response = await _read_response(reader, check.body)
    except (OSError, ssl.SSLError, EOFError) as exc:
        return ProbeResult(False, f"{where}: {_error(exc)}")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not response:
        return ProbeResult(False, f"{where}: no data received")
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = response.partition(b"\n\n")
    status_line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    problem = judge_status(check, status_line)
    if problem is not None:
        return ProbeResult(False, f"{where}: {problem}")
    if check.body is not None and check.body.encode() not in body:
        return ProbeResult(False, f"{where}: string '{check.body}' not found")
    return ProbeResult(True, f"{where}: {status_line}")


async def _read_response(reader: asyncio.StreamReader, wanted: str | None) -> bytes:
    """The response until the peer closes, or only as much as the check needs."""
    data = b""
    needle = wanted.encode() if wanted is not None else None
    while len(data) < MAX_RESPONSE:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
        if needle is None and b"\n" in data:
            break  # the status line is all that is judged
        if needle is not None and needle in data.partition(b"\r\n\r\n")[2]:
            break
    return data


async def command_probe(check: CommandCheck, host: str, port: int | None) -> ProbeResult:
    argv = [str(check.path), *(substitute(arg, host, port) for arg in check.args)]
    try:
        # Never a shell: the arguments go to the plugin as they are.
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=PLUGIN_ENV,
            start_new_session=True,  # its own process group, killed whole on timeout
        )
    except OSError as exc:
        return ProbeResult(False, f"{check.name}: {_error(exc)}")
    try:
        output, _ = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
        raise
    text = output.decode(errors="replace").strip()
    line = text.splitlines()[0] if text else f"exit code {proc.returncode}"
    return ProbeResult(proc.returncode == 0, f"{check.name}: {line}"[:MAX_REASON])
