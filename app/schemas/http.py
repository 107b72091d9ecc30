"""http/https farms: request models (they validate; ZAPI spellings, the coercions real
clients need) and the response bodies in v3.1's JSON types (zapi31.md §9.1)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from app.errors import BadRequest

M = TypeVar("M", bound=BaseModel)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
CIPHER_LIST = re.compile(r"[A-Za-z0-9+!:@=_.,-]{1,1024}")
CERT_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.pem")


def _digits(value: Any) -> Any:
    """JSON integers and digit strings ("8080"), nothing else (no bools, no "8e3")."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        if not 0 <= value <= 2**31 - 1:
            raise ValueError("out of range")
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        return _digits(int(value))
    raise ValueError("not a number")


def _true_false(value: Any) -> Any:
    if value in ("true", "false"):
        return value == "true"
    raise ValueError('"true" or "false"')


def _regex(value: str) -> str:
    if len(value) > 1024 or _CONTROL.search(value):
        raise ValueError("not a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return value


def _redirect(value: str) -> str:
    if value == "":
        return value
    if len(value) > 2048 or _CONTROL.search(value) or " " in value:
        raise ValueError("not a URL")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http(s) URL")
    return value


def _page(value: str) -> str:
    if len(value) > 4096 or re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value):
        raise ValueError("not a page")
    return value


def _matches(pattern: re.Pattern[str]) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError("invalid characters")
        return value

    return check


Digits = Annotated[int, BeforeValidator(_digits)]
Flag = Annotated[bool, BeforeValidator(_true_false)]
Regex = Annotated[str, AfterValidator(_regex)]
RedirectUrl = Annotated[str, AfterValidator(_redirect)]
Page = Annotated[str, AfterValidator(_page)]


class _Body(BaseModel):
    # Clients send whole objects back (status, services, certlist...): unknown keys are ignored.
    model_config = ConfigDict(extra="ignore", strict=False)


class HttpFarmUpdate(_Body):
    newfarmname: str | None = None
    contimeout: Digits | None = None
    restimeout: Digits | None = None
    resurrectime: Digits | None = None
    reqtimeout: Digits | None = None
    rewritelocation: Literal["disabled", "enabled", "enabled-backends"] | None = None
    httpverb: (
        Literal[
            "standardHTTP",
            "extendedHTTP",
            "standardWebDAV",
            "MSextWebDAV",
            "MSRPCext",
            "optionsHTTP",
        ]
        | None
    ) = None
    error414: Page | None = None
    error500: Page | None = None
    error501: Page | None = None
    error503: Page | None = None
    listener: Literal["http", "https"] | None = None
    ciphers: Literal["all", "highsecurity", "customsecurity", "ssloffloading"] | None = None
    cipherc: Annotated[str, AfterValidator(_matches(CIPHER_LIST))] | None = None
    certname: str | None = None
    disable_sslv2: Flag | None = None
    disable_sslv3: Flag | None = None
    disable_tlsv1: Flag | None = None
    disable_tlsv1_1: Flag | None = None
    disable_tlsv1_2: Flag | None = None
    vip: str | None = None
    vport: Digits | None = None


HTTP_FARM_MESSAGES = {
    "newfarmname": "Invalid newfarmname value.",
    "contimeout": "Invalid contimeout value.",
    "restimeout": "Invalid restimeout value.",
    "resurrectime": "Invalid resurrectime value.",
    "reqtimeout": "Invalid reqtimeout value.",
    "rewritelocation": "Invalid rewritelocation value.",
    "httpverb": "Invalid httpverb value.",
    "listener": "Invalid listener value.",
    "ciphers": "Invalid ciphers value.",
    "cipherc": "Invalid cipherc value.",
    "vport": "Invalid port value.",
    **{
        f"error{c}": f"Some errors happened trying to modify the error{c}."
        for c in (414, 500, 501, 503)
    },
    **{
        f"disable_{p}": f"Error, the value is not valid for parameter disable_{p}."
        for p in ("sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2")
    },
}


class ServiceCreate(_Body):
    id: str


class ServiceUpdate(_Body):
    vhost: Regex | None = None
    urlp: Regex | None = None
    redirect: RedirectUrl | None = None
    redirecttype: Literal["default", "append", ""] | None = None
    persistence: Literal["", "IP", "BASIC", "URL", "PARM", "COOKIE", "HEADER"] | None = None
    ttl: Digits | None = None
    sessionid: (
        Annotated[str, AfterValidator(_matches(re.compile(r"|" + SESSION_ID.pattern)))] | None
    ) = None
    leastresp: Flag | None = None
    httpsb: Flag | None = None


SERVICE_MESSAGES = {
    "vhost": "Invalid vhost value: it must be a valid regular expression.",
    "urlp": "Invalid urlp value: it must be a valid regular expression.",
    "redirect": "Invalid redirect value.",
    "redirecttype": "Invalid redirecttype value.",
    "persistence": "Invalid persistence.",
    "ttl": "Invalid ttl, must be numeric.",
    "sessionid": "Invalid sessionid value.",
    "leastresp": "Invalid leastresp.",
    "httpsb": "Invalid httpsb value.",
}


class ServiceBackendCreate(_Body):
    ip: str | None = None
    port: Digits | None = None
    weight: Digits | None = None
    timeout: Digits | None = None


class ServiceBackendUpdate(ServiceBackendCreate):
    pass


BACKEND_ADD_MESSAGES = {
    "ip": "Invalid backend IP value, please insert a valid value.",
    "port": "Invalid port for a backend.",
    "weight": "Invalid weight value for a backend, it must be 1-9.",
    "timeout": "Invalid timeout value for a backend, it must be empty or greater than 0.",
}
BACKEND_MODIFY_MESSAGES = {
    "ip": "Invalid IP.",
    "port": "Invalid port.",
    "weight": "Invalid weight.",
    "timeout": "Invalid timeout.",
}


class FarmCertificateAdd(_Body):
    file: Annotated[str, AfterValidator(_matches(CERT_FILE))]


def parse(model: type[M], body: dict[str, Any], *, description: str, messages: dict[str, str]) -> M:
    """Validate a body; the first invalid field answers its ZAPI message (a 400)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        field = str(loc[0]) if loc else ""
        raise BadRequest(
            messages.get(field, f"Invalid {field} value."), description=description
        ) from None
