"""The desired state of the http farms, as frozen values (no ORM, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

PERSISTENCES = ("", "IP", "BASIC", "URL", "PARM", "COOKIE", "HEADER")
REDIRECT_TYPES = ("default", "append")
REWRITE_LOCATIONS = ("disabled", "enabled", "enabled-backends")
CIPHER_SETS = ("all", "highsecurity", "customsecurity")
ERROR_CODES = (414, 500, 501, 503)
# HAProxy has no error page for 414 (it answers its own): error414 is kept, not rendered.
HAPROXY_ERROR_PAGES = (500, 501, 503)

# The methods each `httpverb` level lets through (Pound's xHTTP 0-4, plus OPTIONS).
_STANDARD = ("GET", "POST", "HEAD")
_EXTENDED = (*_STANDARD, "PUT", "PATCH", "DELETE")
_WEBDAV = (
    *_EXTENDED,
    "LOCK",
    "UNLOCK",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "MKCOL",
    "MOVE",
    "COPY",
    "OPTIONS",
    "TRACE",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "REPORT",
)
_MS_WEBDAV = (
    *_WEBDAV,
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "NOTIFY",
    "BPROPFIND",
    "BPROPPATCH",
    "POLL",
    "BMOVE",
    "BCOPY",
    "BDELETE",
    "CONNECT",
)
HTTP_VERBS: dict[str, tuple[str, ...]] = {
    "standardHTTP": _STANDARD,
    "extendedHTTP": _EXTENDED,
    "standardWebDAV": _WEBDAV,
    "MSextWebDAV": _MS_WEBDAV,
    "MSRPCext": (*_MS_WEBDAV, "RPC_IN_DATA", "RPC_OUT_DATA"),
    "optionsHTTP": (*_STANDARD, "OPTIONS"),
}


@dataclass(frozen=True)
class ServerSpec:
    id: int  # stable: the HAProxy server is `s<id>`
    ip: str
    port: int
    weight: int
    timeout: int | None = None
    maintenance: str = ""  # "" | "drain" | "cut"


@dataclass(frozen=True)
class HealthCheck:
    """A service's farmguardian as HAProxy checks it (`check_tcp`/`check_http`, parsed)."""

    interval: int  # seconds between checks (`fgtimecheck`)
    timeout: int  # seconds a check may take
    rise: int = 1
    fall: int = 1
    cut_conns: bool = True  # a backend taken down loses its connections
    http: bool = False  # False: a TCP connect
    port: int | None = None  # None: the backend's own port
    tls: bool = False
    url: str = "/"
    host: str | None = None  # the Host header (None: none, as check_http without -H NAME)
    statuses: tuple[str, ...] = ()  # accepted status codes; (): any below 400
    body: str | None = None  # a string the body must contain
    log: bool = False  # `fglog`: every check's result to HAProxy's log (STATE_DIR/haproxy)
    # A Nagios plugin HAProxy runs (`external-check`): its path and arguments, HOST and PORT
    # substituted per server when it runs; () for the TCP/HTTP checks above.
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    id: int  # stable: the HAProxy backend is `svc<id>`
    name: str
    vhost: str = ""
    urlp: str = ""
    redirect: str = ""
    redirecttype: str = "default"
    persistence: str = ""
    ttl: int = 120
    sessionid: str = ""
    leastresp: bool = False
    httpsb: bool = False
    health: HealthCheck | None = None  # None: HAProxy's TCP check every `resurrectime`
    servers: tuple[ServerSpec, ...] = ()


@dataclass(frozen=True)
class HttpFarmSpec:
    id: int  # the HAProxy frontend is `farm<id>`
    name: str
    vip: str
    vport: int
    listener: str = "http"
    running: bool = True
    contimeout: int = 20
    restimeout: int = 45
    resurrectime: int = 10
    reqtimeout: int = 30
    rewritelocation: str = "disabled"
    httpverb: str = "standardHTTP"
    errors: tuple[tuple[int, str], ...] = ()  # (status, page text) for the custom pages set
    ciphers: str = "all"
    cipherc: str = ""
    disabled_protocols: frozenset[str] = field(default_factory=frozenset)  # "sslv3", "tlsv1"...
    certificates: tuple[str, ...] = ()  # certificate names, the first is the default
    services: tuple[ServiceSpec, ...] = ()
