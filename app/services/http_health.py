"""A service's farmguardian (`fgscript`) as an HAProxy health check.

HAProxy probes the backends itself, so only the commands kernlb understands exactly run for
http services: `check_tcp` (a TCP connect) and `check_http` (`option httpchk`); the options
come from app/health/checks.py's parser, the same as for l4xnat farms.  Other plugins are
refused when the farmguardian is set, not at render time.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.db.models import HttpService
from app.haproxy.config import quote
from app.haproxy.model import HealthCheck
from app.health.checks import HOST, PORT, CheckError, HttpCheck, TcpCheck, parse_check

_STATUS = re.compile(r"[1-5][0-9][0-9]")
# Only the path of a command check matters here, and those are refused.
_NO_PLUGINS = Path("/usr/lib/nagios/plugins")


def health_check(
    script: str,
    *,
    interval: int,
    timeout: int = 0,
    rise: int = 1,
    fall: int = 1,
    cut_conns: bool = True,
    log: bool = False,
) -> HealthCheck:
    """Raises CheckError (the message completes "Invalid fgscript, ...")."""
    check = parse_check(script, _NO_PLUGINS)
    if not isinstance(check, TcpCheck | HttpCheck):
        raise CheckError(
            "http farms run check_tcp -H HOST -p PORT or check_http -I HOST (-p, -S, -e, -s, "
            "-u, -t, -H)"
        )
    seconds = max(int(check.timeout or timeout or interval), 1)
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


def service_check(service: HttpService) -> HealthCheck:
    """The service's farmguardian as an HAProxy check (CheckError: HAProxy cannot run it)."""
    return health_check(
        service.fg_script,
        interval=service.fg_timecheck,
        timeout=service.fg_timeout,
        rise=service.fg_rise,
        fall=service.fg_fall,
        cut_conns=service.fg_cut_conns,
        log=service.fg_log,
    )


def service_health(service: HttpService) -> HealthCheck | None:
    """None: no farmguardian (or, which the API never lets happen, a script HAProxy cannot
    run): HAProxy's default TCP check."""
    if not service.fg_enabled:
        return None
    try:
        return service_check(service)
    except CheckError:
        return None
