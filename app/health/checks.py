"""Farmguardian commands (`fgscript`), parsed once.

kernlb probes natively the commands it fully understands: `check_tcp` and `check_http` with the
options below and nothing else.  Any other command runs as a Nagios plugin from the plugin
directory, without a shell, `HOST` and `PORT` substituted in its arguments, exit code 0 meaning
healthy.  Recognising only exact option sets keeps both paths faithful: a script with an option
kernlb does not implement is run by the real plugin instead of being half-understood.

    check_tcp  -H HOST -p PORT [-t SECONDS]
    check_http (-I HOST [-H NAME] | -H HOST) [-p PORT] [-S] [-e STR[,STR..]] [-s STR] [-u PATH]
               [-t SECONDS]
"""

from __future__ import annotations

import getopt
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

HOST = "HOST"
PORT = "PORT"
_HOST_TOKEN = re.compile(r"\bHOST\b")
_PORT_TOKEN = re.compile(r"\bPORT\b")


class CheckError(ValueError):
    """An fgscript that cannot be run at all (the message completes "Invalid fgscript, ...")."""


@dataclass(frozen=True)
class TcpCheck:
    """`check_tcp -H HOST -p PORT`: healthy when a TCP connection is accepted."""

    port: str  # PORT or a number
    timeout: float | None = None  # -t


@dataclass(frozen=True)
class HttpCheck:
    """`check_http`: one GET over HTTP/1.0 (TLS with -S), judged like the plugin judges it."""

    port: str | None = None  # PORT, a number, or None for 80/443
    tls: bool = False  # -S
    hostname: str | None = None  # -H: the Host header (HOST means the backend's IP)
    url: str = "/"  # -u
    expect: tuple[str, ...] = ()  # -e: one of them must be in the status line; () = below 400
    body: str | None = None  # -s: must be in the content
    timeout: float | None = None  # -t


@dataclass(frozen=True)
class CommandCheck:
    """A Nagios plugin run as `<plugin dir>/<name> args...` with HOST and PORT substituted."""

    path: Path
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name


Check = TcpCheck | HttpCheck | CommandCheck


def parse_check(script: str, plugin_dir: Path) -> Check:
    try:
        argv = shlex.split(script)
    except ValueError:
        raise CheckError("its quoting is unbalanced") from None
    if not argv:
        raise CheckError("can't be blank")
    name, args = argv[0], argv[1:]
    if "/" in name or name in (".", ".."):
        raise CheckError(f"the check must be the name of a program in {plugin_dir}")
    native = _native(name, args)
    return native if native is not None else CommandCheck(plugin_dir / name, tuple(args))


def missing_plugin(check: Check) -> str | None:
    """Why a command check cannot run here (None when it can, or when kernlb probes natively)."""
    if not isinstance(check, CommandCheck):
        return None
    if check.path.is_file() and os.access(check.path, os.X_OK):
        return None
    return f"the check '{check.name}' is not installed in {check.path.parent}"


def uses_port(check: Check) -> bool:
    """Whether probing needs a port (the backend's, or the farm's)."""
    if isinstance(check, TcpCheck):
        return check.port == PORT
    if isinstance(check, HttpCheck):
        return check.port == PORT
    return any(_PORT_TOKEN.search(arg) for arg in check.args)


def substitute(text: str, host: str, port: int | None) -> str:
    """Zevenet's substitution, on whole words only (`LOCALHOST` and `HOSTNAME` stay intact)."""
    text = _HOST_TOKEN.sub(host, text)
    return _PORT_TOKEN.sub(str(port), text) if port is not None else text


def resolve_port(value: str | None, port: int | None, *, default: int) -> int | None:
    if value is None:
        return default
    if value == PORT:
        return port
    return int(value)


def check_timeout(check: Check) -> float | None:
    """The check's own `-t`, which bounds a probe like the plugin's timeout would."""
    return None if isinstance(check, CommandCheck) else check.timeout


# -- native recognition --------------------------------------------------------------------

_TCP_OPTIONS = ("H:p:t:", ["hostname=", "port=", "timeout="])
_HTTP_OPTIONS = (
    "H:I:p:e:s:u:t:S",
    ["hostname=", "IP-address=", "port=", "expect=", "string=", "url=", "timeout=", "ssl"],
)
_LONG = {
    "--hostname": "-H",
    "--IP-address": "-I",
    "--port": "-p",
    "--expect": "-e",
    "--string": "-s",
    "--url": "-u",
    "--timeout": "-t",
    "--ssl": "-S",
}


class _NotNative(Exception):
    """Something kernlb does not interpret exactly like the plugin: run the plugin."""


def _options(args: list[str], spec: tuple[str, list[str]]) -> dict[str, str]:
    """Options as {short: value}; an unknown option or a stray argument is not native."""
    try:
        pairs, rest = getopt.gnu_getopt(args, spec[0], spec[1])
    except getopt.GetoptError:
        raise _NotNative from None
    if rest:
        raise _NotNative
    return {_LONG.get(option, option): value for option, value in pairs}


def _port(value: str | None) -> str | None:
    """PORT, a valid port number, or None (absent)."""
    if value is None or value == PORT:
        return value
    if value.isdigit() and 1 <= int(value) <= 65535:
        return str(int(value))
    raise _NotNative


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    if value.isdigit() and int(value) > 0:
        return float(value)
    raise _NotNative


def _native(name: str, args: list[str]) -> Check | None:
    try:
        if name == "check_tcp":
            return _native_tcp(args)
        if name == "check_http":
            return _native_http(args)
    except _NotNative:
        pass
    return None


def _native_tcp(args: list[str]) -> Check | None:
    options = _options(args, _TCP_OPTIONS)
    if options.get("-H") != HOST:
        return None
    port = _port(options.get("-p"))
    if port is None:
        return None  # the plugin insists on a port: let it say so
    return TcpCheck(port=port, timeout=_seconds(options.get("-t")))


def _native_http(args: list[str]) -> Check | None:
    options = _options(args, _HTTP_OPTIONS)
    if options.get("-I", options.get("-H")) != HOST:
        return None  # the plugin would connect somewhere else than the backend
    url = options.get("-u", "/")
    if not url.startswith("/"):
        return None
    expect = tuple(e for e in options["-e"].split(",") if e) if "-e" in options else ()
    return HttpCheck(
        port=_port(options.get("-p")),
        tls="-S" in options,
        hostname=options.get("-H"),  # the plugin sends a Host header only with -H
        url=url,
        expect=expect,
        body=options.get("-s"),
        timeout=_seconds(options.get("-t")),
    )
