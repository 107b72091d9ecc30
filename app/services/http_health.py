"""A service's farmguardian (`fgscript`) as an HAProxy health check.

HAProxy probes the backends itself: `check_tcp` (a TCP connect) and `check_http` (`option
httpchk`) with the options app/health/checks.py's parser understands exactly (the same parser as
for l4xnat farms) become HAProxy's own checks; any other plugin of the plugin directory runs as
HAProxy's `external-check` (app/haproxy/config.py's runner).  A plugin that is not installed is
refused when the farmguardian is set, not at render time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from app.db.models import HttpService
from app.haproxy.config import quote
from app.haproxy.model import HealthCheck
from app.health.checks import (
    HOST,
    PORT,
    CheckError,
    CommandCheck,
    TcpCheck,
    check_timeout,
    missing_plugin,
    parse_check,
)

_STATUS = re.compile(r"[1-5][0-9][0-9]")


def health_check(
    script: str,
    *,
    plugin_dir: Path,
    interval: int,
    timeout: int = 0,
    rise: int = 1,
    fall: int = 1,
    cut_conns: bool = True,
    log: bool = False,
) -> HealthCheck:
    """Raises CheckError (the message completes "Invalid fgscript, ...")."""
    check = parse_check(script, plugin_dir)
    if isinstance(check, CommandCheck):
        problem = missing_plugin(check)
        if problem is not None:
            raise CheckError(problem)
        if any(ord(c) < 0x20 for arg in check.args for c in arg):
            raise CheckError("it contains control characters")
    seconds = max(int(check_timeout(check) or timeout or interval), 1)
    if isinstance(check, CommandCheck):  # HAProxy runs the plugin (`external-check`)
        command = (str(check.path), *check.args)
        return HealthCheck(interval, seconds, rise, fall, cut_conns, log=log, command=command)
    if isinstance(check, TcpCheck):
        port = None if check.port == PORT else int(check.port)
        return HealthCheck(interval, seconds, rise, fall, cut_conns, port=port, log=log)
    if check.port is None:
        port = 443 if check.tls else 80  # check_http's defaults
    else:
        port = None if check.port == PORT else int(check.port)
    statuses = tuple(check.expect)
    if any(not _STATUS.fullmatch(s) for s in statuses):
        raise CheckError("-e takes HTTP status codes (e.g. 200,301) for http farms")
    host = None if check.hostname in (None, HOST) else check.hostname
    health = HealthCheck(
        interval,
        seconds,
        rise,
        fall,
        cut_conns,
        http=True,
        port=port,
        tls=check.tls,
        url=check.url,
        host=host,
        statuses=statuses,
        body=check.body,
        log=log,
    )
    for text in (health.url, health.host or "", health.body or ""):
        try:
            quote(text)
        except ValueError:
            raise CheckError("it contains control characters") from None
    return health


def service_check(service: HttpService, plugin_dir: Path) -> HealthCheck:
    """The service's farmguardian as an HAProxy check (CheckError: HAProxy cannot run it)."""
    return health_check(
        service.fg_script,
        plugin_dir=plugin_dir,
        interval=service.fg_timecheck,
        timeout=service.fg_timeout,
        rise=service.fg_rise,
        fall=service.fg_fall,
        cut_conns=service.fg_cut_conns,
        log=service.fg_log,
    )


def service_health(plugin_dir: Path) -> Callable[[HttpService], HealthCheck | None]:
    """A service's check, or None: no farmguardian (or, which the API never lets happen, a
    script HAProxy cannot run): HAProxy's default TCP check."""

    def health(service: HttpService) -> HealthCheck | None:
        if not service.fg_enabled:
            return None
        try:
            return service_check(service, plugin_dir)
        except CheckError:
            return None

    return health
