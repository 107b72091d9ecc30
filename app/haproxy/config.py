"""Render one HAProxy configuration from the desired state of every http farm (pure).

A frontend per running farm, a backend per service; services are tried in order and the
first whose `vhost` (Host header) and `urlp` (URL) regexes both match takes the request, as
in Zevenet.  Every user string reaches the text validated *and* quoted (`quote`), and the
error pages go to files, never into the configuration.

Servers are rendered with their runtime-changeable values (address, weight, maintenance)
kept apart: `Rendered.skeleton` is the text without them, so the engine can tell a change it
can apply through HAProxy's runtime API from one that needs a reload.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.haproxy.model import HTTP_VERBS, HealthCheck, HttpFarmSpec, ServerSpec, ServiceSpec

ERROR_REASONS = {
    414: "Request-URI Too Long",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
# Zevenet's "highsecurity" (cipherpci) set.
HIGH_SECURITY_CIPHERS = (
    "kEECDH+ECDSA+AES128:kEECDH+ECDSA+AES256:kEECDH+AES128:kEECDH+AES256:kEDH+AES128:"
    "kEDH+AES256:DES-CBC3-SHA:+SHA:!aNULL:!eNULL:!LOW:!kECDH:!DSS:!MD5:!EXP:!PSK:!SRP:"
    "!CAMELLIA:!SEED"
)
# OpenSSL 3 refuses TLS 1.0/1.1 above security level 0: a farm that allows them says so.
ALL_CIPHERS = "ALL:@SECLEVEL=0"
TLS_VERSIONS = (("tlsv1", "TLSv1.0", ""), ("tlsv1_1", "TLSv1.1", ""),
                ("tlsv1_2", "TLSv1.2", ""), ("tlsv1_3", "TLSv1.3", ""))  # fmt: skip


@dataclass(frozen=True)
class ServerState:
    """What HAProxy's runtime API can change on a server without a reload."""

    ip: str
    port: int
    weight: int  # 0 while draining: persistent (sticky) sessions only
    maint: bool  # cut: no traffic at all
    server_id: int = 0  # HAProxy's numeric id (`id`), as stored in stick tables
    sticky: bool = False  # its backend has a stick table (persistence)


@dataclass(frozen=True)
class Rendered:
    config: str
    skeleton: str  # `config` without the runtime-changeable values of the servers
    servers: dict[tuple[str, str], ServerState] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # error pages, certificates
    listeners: int = 0
    peers: bool = False  # the local peer carries the stick tables across reloads

    def same_shape(self, other: Rendered) -> bool:
        """True when `other` differs from this one only in runtime-changeable values."""
        return self.skeleton == other.skeleton and self.files == other.files


def quote(text: str) -> str:
    """A HAProxy double-quoted word: backslash, quote and `$` (environment) escaped.

    Callers validate first: no control characters reach here."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError("control characters cannot be rendered")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def backend_name(service_id: int) -> str:
    return f"svc{service_id}"


def server_name(server_id: int) -> str:
    return f"s{server_id}"


def frontend_name(farm_id: int) -> str:
    return f"farm{farm_id}"


def _address(ip: str, port: int) -> str:
    return f"ipv6@{ip}:{port}" if ":" in ip else f"ipv4@{ip}:{port}"


def error_file_name(farm_id: int, code: int) -> str:
    return f"farm{farm_id}-{code}.http"


def error_page(code: int, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.0 {code} {ERROR_REASONS[code]}\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def certificate_file_name(name: str) -> str:
    return f"cert-{name}"


def server_state(server: ServerSpec, *, sticky: bool = False) -> ServerState:
    return ServerState(
        ip=server.ip,
        port=server.port,
        weight=0 if server.maintenance == "drain" else server.weight,
        maint=server.maintenance == "cut",
        server_id=server.id,
        sticky=sticky,
    )


def _server_line(
    server: ServerSpec, service: ServiceSpec, farm: HttpFarmSpec, *, skeleton: bool
) -> str:
    name = server_name(server.id)
    options = f" id {server.id}{_check_options(service, farm)}"
    if service.httpsb:
        options += " ssl verify none"
    if skeleton:
        return f"    server {name} ADDRESS{options}"
    state = server_state(server)
    disabled = " disabled" if state.maint else ""
    address = _address(state.ip, state.port)
    return f"    server {name} {address} weight {state.weight}{disabled}{options}"


def _check_options(service: ServiceSpec, farm: HttpFarmSpec) -> str:
    """The server's health-check options: the service's farmguardian, or else HAProxy's TCP
    check every `resurrectime` (how Pound brings dead backends back)."""
    health = service.health
    if health is None:
        return f" check inter {farm.resurrectime}s"
    options = f" check inter {health.interval}s fall {health.fall} rise {health.rise}"
    if health.port is not None:
        options += f" port {health.port}"
    if health.tls and not service.httpsb:
        options += " check-ssl"
    elif service.httpsb and not health.tls:
        options += " no-check-ssl"
    if health.cut_conns:
        options += " on-marked-down shutdown-sessions"
    return options


# HAProxy runs an external check as `command PROXY_ADDR PROXY_PORT SERVER_ADDR SERVER_PORT`
# (and the server's address in HAPROXY_SERVER_ADDR/PORT): this runner, written beside the
# configuration, execs the plugin with HOST and PORT substituted (whole words, as
# app/health/checks.py), the plugin's arguments read from `fgcheck-<backend>.json` beside it:
# no user text in the configuration, no shell.
FG_RUNNER = "kernlb-fgcheck"
FG_RUNNER_TEXT = """#!/usr/bin/python3
import json, os, re, sys
here = os.path.dirname(os.path.abspath(__file__))
name = os.environ.get("HAPROXY_PROXY_NAME", "")
if not re.fullmatch(r"svc[0-9]+", name):
    sys.exit(3)
with open(os.path.join(here, "fgcheck-" + name + ".json")) as spec:
    argv = json.load(spec)
host, port = os.environ.get("HAPROXY_SERVER_ADDR", ""), os.environ.get("HAPROXY_SERVER_PORT", "")
argv = [re.sub(r"\\bPORT\\b", port, re.sub(r"\\bHOST\\b", host, a)) for a in argv]
os.execv(argv[0], argv)
"""


def fg_command_file(service_id: int) -> str:
    return f"fgcheck-{backend_name(service_id)}.json"


def health_check_lines(health: HealthCheck, *, assets: str) -> list[str]:
    """A backend's check definition (farmguardian's `check_http` as HAProxy's `httpchk`, a
    plugin as an `external-check`)."""
    lines = [f"    timeout check {health.timeout}s"]
    if health.log:
        lines += ["    log global", "    option log-health-checks"]
    if health.command:
        return [
            *lines,
            "    option external-check",
            '    external-check path "/usr/bin:/bin"',
            f"    external-check command {quote(f'{assets}/{FG_RUNNER}')}",
        ]
    if not health.http:
        return lines
    send = f"    http-check send meth GET uri {quote(health.url)} ver HTTP/1.0"
    if health.host is not None:
        send += f" hdr Host {quote(health.host)}"
    statuses = ",".join(health.statuses) or "200-399"
    lines += ["    option httpchk", send, f"    http-check expect status {statuses}"]
    if health.body is not None:
        lines.append(f"    http-check expect string {quote(health.body)}")
    return lines


PEERS = "kernlb"  # the peers section, and the local peer's name in it


def _persistence(service: ServiceSpec, *, peers: bool) -> list[str]:
    kind = service.persistence
    if not kind:
        return []
    # With the local peer, a reload's new worker learns the old worker's table.
    expire = f"expire {max(service.ttl, 1)}s" + (f" peers {PEERS}" if peers else "")
    if kind == "IP":
        return [f"    stick-table type ipv6 size 1m {expire}", "    stick on src"]
    sample = {
        "COOKIE": f"req.cook({quote(service.sessionid)})",
        "HEADER": f"req.hdr({quote(service.sessionid)})",
        "URL": f"url_param({quote(service.sessionid)})",
        "PARM": 'path,field(2,";")',
        "BASIC": "req.hdr(authorization)",
    }[kind]
    lines = [f"    stick-table type string len 128 size 1m {expire}", f"    stick on {sample}"]
    if kind == "COOKIE":
        # The application's own cookie, learnt from its responses too (Pound's Session COOKIE).
        lines.append(f"    stick store-response res.cook({quote(service.sessionid)})")
    return lines


def _error_lines(farm: HttpFarmSpec, assets: str) -> list[str]:
    return [
        f"    errorfile {code} {quote(f'{assets}/{error_file_name(farm.id, code)}')}"
        for code, _text in farm.errors
    ]


def _tls_options(farm: HttpFarmSpec, assets: str) -> str:
    parts = ["ssl"]
    parts += [f"crt {quote(f'{assets}/{certificate_file_name(c)}')}" for c in farm.certificates]
    # HAProxy takes a range of versions (its no-tlsv1x options are ignored next to a range):
    # the highest enabled version and every enabled one below it down to the first disabled.
    versions = [(key, name) for key, name, _ in TLS_VERSIONS]
    enabled = [key not in farm.disabled_protocols for key, _ in versions]
    top = max((i for i, on in enumerate(enabled) if on), default=len(versions) - 1)
    bottom = top
    while bottom > 0 and enabled[bottom - 1]:
        bottom -= 1
    parts.append(f"ssl-min-ver {versions[bottom][1]} ssl-max-ver {versions[top][1]}")
    if farm.ciphers == "customsecurity" and farm.cipherc:
        ciphers = farm.cipherc
    elif farm.ciphers == "highsecurity":
        ciphers = HIGH_SECURITY_CIPHERS
    else:
        ciphers = ALL_CIPHERS
    parts.append(f"ciphers {quote(ciphers)}")
    return " ".join(parts)


def _frontend(farm: HttpFarmSpec, assets: str) -> list[str]:
    bind = f"    bind {_address(farm.vip, farm.vport)}"
    if farm.listener == "https":
        bind += " " + _tls_options(farm, assets)
    methods = " ".join(HTTP_VERBS.get(farm.httpverb, HTTP_VERBS["standardHTTP"]))
    lines = [
        f"frontend {frontend_name(farm.id)}  # farm {farm.name}",
        bind,
        f"    timeout client {farm.reqtimeout}s",
        f"    timeout http-request {farm.reqtimeout}s",
        f"    http-request deny deny_status 501 unless {{ method {methods} }}",
        *_error_lines(farm, assets),
    ]
    if farm.rewritelocation != "disabled":
        lines.append("    http-request set-var(txn.kernlb_host) req.hdr(host)")
    for service in farm.services:
        conditions = []
        if service.vhost:
            conditions.append(f"{{ req.hdr(host) -m reg -i {quote(service.vhost)} }}")
        if service.urlp:
            conditions.append(f"{{ url -m reg {quote(service.urlp)} }}")
        condition = f" if {' '.join(conditions)}" if conditions else ""
        lines.append(f"    use_backend {backend_name(service.id)}{condition}")
    return lines


def _backend(
    farm: HttpFarmSpec, service: ServiceSpec, assets: str, *, skeleton: bool, peers: bool
) -> list[str]:
    # One response timeout per HAProxy backend: the longest asked for, so no server is cut
    # off earlier than its own `timeout` (or the farm's `restimeout`) allows.
    response = max([farm.restimeout, *(s.timeout or 0 for s in service.servers), 1])
    lines = [
        f"backend {backend_name(service.id)}  # farm {farm.name} service {service.name}",
        f"    balance {'leastconn' if service.leastresp else 'roundrobin'}",
        f"    timeout connect {max(farm.contimeout, 1)}s",
        f"    timeout server {response}s",
        *_error_lines(farm, assets),
    ]
    if service.redirect:
        how = "prefix" if service.redirecttype == "append" else "location"
        lines.append(f"    http-request redirect {how} {quote(service.redirect)} code 302")
    if farm.rewritelocation != "disabled":
        scheme = "https" if farm.listener == "https" else "http"
        own = [(s.ip, s.port) for s in service.servers]
        if farm.rewritelocation == "enabled":
            own.append((farm.vip, farm.vport))
        for ip, port in own:
            host = re.escape(f"[{ip}]" if ":" in ip else ip)
            pattern = f"^https?://{host}(:{port})?(/.*)?$"
            lines.append(
                f"    http-response replace-header Location {quote(pattern)} "
                f"{scheme}://%[var(txn.kernlb_host)]\\2"
            )
    if service.health is not None:
        lines += health_check_lines(service.health, assets=assets)
    lines += _persistence(service, peers=peers)
    lines += [_server_line(s, service, farm, skeleton=skeleton) for s in service.servers]
    return lines


def sticky(farms: Iterable[HttpFarmSpec]) -> bool:
    """Whether any service keeps a stick table (persistence other than the cookie's own)."""
    return any(service.persistence for farm in farms for service in farm.services)


def _text(
    farms: list[HttpFarmSpec], *, admin_socket: str, peer_socket: str, assets: str, skeleton: bool
) -> str:
    peers = bool(peer_socket) and sticky(farms)
    lines = [
        "# Rendered by kernlb from its database: edits here are overwritten.",
        "global",
        f"    stats socket {quote(admin_socket)} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    hard-stop-after 60s",
        "    ssl-server-verify none",
    ]
    if peers:
        lines.append(f"    localpeer {PEERS}")
    checks = [s.health for f in farms for s in f.services if s.health is not None]
    if any(health.log for health in checks):
        lines.append("    log stdout format short local0")  # HAProxy's output: haproxy.log
    if any(health.command for health in checks):
        lines += ["    insecure-fork-wanted", "    external-check"]  # plugins run as checks
    lines.append("")
    if peers:
        # Only the local peer: on a reload the old worker teaches its tables to the new one.
        lines += [f"peers {PEERS}", f"    peer {PEERS} unix@{peer_socket}", ""]
    lines += [
        "defaults",
        "    mode http",
        "    option forwardfor",
        "    option redispatch 1",
        "    retries 3",
        "    timeout connect 20s",
        "    timeout client 30s",
        "    timeout server 45s",
        "    timeout http-keep-alive 5s",
        "",
    ]
    for farm in farms:
        lines += [*_frontend(farm, assets), ""]
        for service in farm.services:
            lines += [
                *_backend(farm, service, assets, skeleton=skeleton, peers=peers),
                "",
            ]
    return "\n".join(lines)


def render(
    farms: Iterable[HttpFarmSpec],
    *,
    admin_socket: str,
    assets: str,
    certificates: dict[str, str],
    peer_socket: str = "",
) -> Rendered:
    """`assets`: the directory of this configuration's files; `certificates`: name -> PEM;
    `peer_socket`: the local peer's Unix socket (stick tables kept across reloads), if any."""
    if any(c in peer_socket for c in " \t\"'#\\"):
        raise ValueError("the peer socket path cannot be rendered")
    running = sorted((f for f in farms if f.running), key=lambda f: f.id)
    servers: dict[tuple[str, str], ServerState] = {}
    files: dict[str, bytes] = {}
    for farm in running:
        for code, text in farm.errors:
            files[error_file_name(farm.id, code)] = error_page(code, text)
        if farm.listener == "https":
            for name in farm.certificates:
                files[certificate_file_name(name)] = certificates[name].encode()
        for service in farm.services:
            if service.health is not None and service.health.command:
                files[FG_RUNNER] = FG_RUNNER_TEXT.encode()
                command = json.dumps(list(service.health.command)).encode()
                files[fg_command_file(service.id)] = command
            for server in service.servers:
                key = (backend_name(service.id), server_name(server.id))
                servers[key] = server_state(server, sticky=bool(service.persistence))
    sockets = {"admin_socket": admin_socket, "peer_socket": peer_socket}
    return Rendered(
        config=_text(running, **sockets, assets=assets, skeleton=False) + "\n",
        skeleton=_text(running, **sockets, assets="", skeleton=True),
        servers=servers,
        files=files,
        listeners=len(running),
        peers=bool(peer_socket) and sticky(running),
    )


def digest(rendered: Rendered) -> str:
    """A short fingerprint of a configuration and its files (names a generation)."""
    sha = hashlib.sha256(rendered.config.encode())
    for name in sorted(rendered.files):
        sha.update(name.encode() + b"\0" + rendered.files[name])
    return sha.hexdigest()[:12]
