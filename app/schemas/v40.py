"""ZAPI v4.0 request models and the generic parameter checker (zapi40-l4.md §1.2, §1.3).

Each 4.0 POST/PUT body is a pydantic model whose fields carry a `Param` annotation: the checks of
Zevenet's `M/<model>.json` (required, non_blank, values, regex, interval, exceptions).  The
checker `check_params` runs those checks in Zevenet's order and answers Zevenet's messages; the
same models (with `extra="forbid"`) generate the OpenAPI request schemas, and the validated
model is what the routes translate into the service calls v3.1 uses.

Values arrive as JSON strings (zcli) or numbers (other clients); both pass `regex` and
`interval`, as in the original.  JSON booleans are read the way Perl reads them (1/0), so they
fail every `"true"`/`"false"` check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import BadRequest, ZapiError

DOCUMENTATION = "https://www.zevenet.com/zapidoc_ce_v4.0/"
HELP_MESSAGE = "No parameter has been sent. Please, try with:"

Value = str | int


@dataclass(frozen=True)
class Param:
    """The checks of one parameter of a ZAPI 4.0 model (`M/<model>.json` `params.<name>`)."""

    required: bool = False
    non_blank: bool = False
    values: tuple[str, ...] | None = None
    regex: str | None = None
    interval: tuple[int | None, int | None] | None = None
    exceptions: tuple[str, ...] = ()
    valid_format: str | None = None  # the name shown in the help answer
    format_check: Callable[[str], bool] | None = field(default=None, compare=False)
    format_msg: str | None = None


class ParamHelp(ZapiError):
    """The 400 help answer: no `error` key, no `documentation` (§1.3)."""

    def __init__(self, description: str, params: list[dict[str, Any]]) -> None:
        super().__init__(HELP_MESSAGE, description=description)
        self.params = params

    def body(self) -> dict[str, Any]:
        return {"description": self.description, "message": self.message, "params": self.params}


class InvalidJson(ZapiError):
    """Malformed JSON: written directly, without description or documentation."""

    def __init__(self) -> None:
        super().__init__("The body does not look a valid JSON")

    def body(self) -> dict[str, Any]:
        return {"error": "true", "message": self.message}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


PORT = r"(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])"
MULTIPORT = rf"(?:\*|{PORT}(?::{PORT})?(?:,{PORT}(?::{PORT})?)*)"
FARM_NAME = r"[a-zA-Z0-9-]+"
FG_NAME = r"[\w-]+"
NATURAL = r"[1-9]\d*"
BOOLEAN = ("true", "false")
IP = Param(valid_format="ip_addr", format_check=_is_ip)

# -- the models ---------------------------------------------------------------------------


class Model40(BaseModel):
    """A 4.0 body: unknown keys are refused; the checker has already coerced nothing."""

    model_config = ConfigDict(extra="forbid")


def _p(**checks: Any) -> Param:
    return Param(**checks)


class FarmCreate40(Model40):
    farmname: Annotated[str, _p(required=True, regex=FARM_NAME, exceptions=("0",))] = Field(
        examples=["web"]
    )
    # Zevenet's model also lists http, gslb and datalink; kernlb creates l4xnat farms through
    # 4.0 (its http farms are a 3.1 feature), so the list is what is accepted.
    profile: Annotated[Literal["l4xnat"], _p(required=True, values=("l4xnat",))] = Field(
        examples=["l4xnat"]
    )
    vip: Annotated[str, _p(required=True, valid_format="ip_addr")] = Field(
        examples=["198.18.0.10"],
        description="one of the host's addresses (the values are set at run time)",
    )
    vport: Annotated[Value, _p(required=True, regex=MULTIPORT)] = Field(
        examples=["80", "80,443", "1000:2000", "*"]
    )
    copy_from: Annotated[str | None, _p(non_blank=True, regex=FARM_NAME)] = Field(
        default=None, description="copy the settings, backends and farmguardian of this farm"
    )


ALGORITHMS40 = ("weight", "roundrobin", "hash_srcip_srcport", "hash_srcip", "symhash", "leastconn")
PERSISTENCE40 = ("ip", "srcip", "srcport", "srcmac", "srcip_srcport", "srcip_dstport", "none")
# Zevenet's model also lists amanda, irc, netbios-ns and sane (answered 410 before the checker,
# app/api/v40/farms.py) and h323 (no l4xnat helper for it here): the list is what is accepted.
PROTOCOLS40 = ("all", "tcp", "udp", "sctp", "sip", "ftp", "tftp", "pptp", "snmp")
NATTYPES40 = ("nat", "dnat", "dsr", "stateless_dnat")


class FarmModify40(Model40):
    newfarmname: Annotated[str | None, _p(non_blank=True, regex=FARM_NAME, exceptions=("0",))] = (
        None
    )
    algorithm: Annotated[str | None, _p(values=ALGORITHMS40)] = Field(
        default=None, json_schema_extra={"enum": list(ALGORITHMS40)}
    )
    persistence: Annotated[str | None, _p(values=PERSISTENCE40)] = Field(
        default=None, json_schema_extra={"enum": ["", *PERSISTENCE40]}
    )
    protocol: Annotated[str | None, _p(values=PROTOCOLS40)] = Field(
        default=None, json_schema_extra={"enum": list(PROTOCOLS40)}
    )
    nattype: Annotated[str | None, _p(values=NATTYPES40)] = Field(
        default=None, json_schema_extra={"enum": list(NATTYPES40)}
    )
    ttl: Annotated[Value | None, _p(regex=NATURAL)] = None
    vip: Annotated[str | None, _p(non_blank=True, valid_format="ip_addr")] = None
    vport: Annotated[Value | None, _p(non_blank=True, regex=MULTIPORT)] = None
    source_addr: Annotated[str | None, _p()] = Field(
        default=None, description='kernlb extension: SNAT address for nat mode; "" clears it'
    )


class FarmAction40(Model40):
    action: Annotated[
        Literal["stop", "start", "restart"],
        _p(required=True, non_blank=True, values=("stop", "start", "restart")),
    ]


class BackendCreate40(Model40):
    ip: Annotated[str, _p(required=True, non_blank=True, regex=r"\S+", format_check=_is_ip)] = (
        Field(examples=["198.18.2.1"], description="IPv4 or IPv6")
    )
    port: Annotated[Value | None, _p(regex=PORT)] = Field(
        default=None, description='"" or null: no port translation'
    )
    weight: Annotated[Value | None, _p(interval=(1, 9))] = None
    priority: Annotated[Value | None, _p(interval=(1, 9))] = None
    max_conns: Annotated[Value | None, _p(interval=(0, None))] = None
    source_addr: Annotated[str | None, _p()] = Field(
        default=None, description="kernlb extension: SNAT address for this backend (nat mode)"
    )


class BackendModify40(Model40):
    ip: Annotated[str | None, _p(non_blank=True, regex=r"\S+", format_check=_is_ip)] = None
    port: Annotated[Value | None, _p(regex=PORT)] = Field(
        default=None, description='"" clears the port'
    )
    weight: Annotated[Value | None, _p(interval=(1, 9))] = None
    priority: Annotated[Value | None, _p(interval=(1, 9))] = None
    max_conns: Annotated[Value | None, _p(interval=(0, None))] = None
    interface: Annotated[str | None, _p(non_blank=True)] = Field(
        default=None, description="accepted and echoed; no effect on l4xnat farms"
    )
    source_addr: Annotated[str | None, _p()] = None


class MaintenanceUp40(Model40):
    action: Annotated[
        Literal["up", "maintenance"],
        _p(required=True, non_blank=True, values=("up", "maintenance")),
    ]


class Maintenance40(MaintenanceUp40):
    mode: Annotated[Literal["drain", "cut"] | None, _p(values=("drain", "cut"))] = Field(
        default=None, description='only with action "maintenance"'
    )


class FgCreate40(Model40):
    name: Annotated[str, _p(required=True, non_blank=True, regex=FG_NAME, exceptions=("0",))]
    copy_from: Annotated[str | None, _p(regex=FG_NAME)] = Field(
        default=None, description="a template or another farmguardian"
    )


class FgModify40(Model40):
    description: Annotated[str | None, _p()] = None
    command: Annotated[str | None, _p(non_blank=True)] = Field(
        default=None, examples=["check_tcp -p PORT -H HOST"]
    )
    interval: Annotated[Value | None, _p(regex=NATURAL)] = None
    timeout: Annotated[Value | None, _p(regex=NATURAL)] = None
    log: Annotated[Literal["true", "false"] | None, _p(values=BOOLEAN)] = None
    cut_conns: Annotated[Literal["true", "false"] | None, _p(values=BOOLEAN)] = None
    backend_alias: Annotated[Literal["true", "false"] | None, _p(values=BOOLEAN)] = None
    force: Annotated[Literal["true", "false"] | None, _p(values=BOOLEAN)] = None


class FgAttach40(Model40):
    name: Annotated[str, _p(required=True, non_blank=True)]


class VirtualCreate40(Model40):
    name: Annotated[str, _p(required=True, non_blank=True)] = Field(examples=["eth0:vip1"])
    ip: Annotated[
        str, _p(required=True, non_blank=True, valid_format="ip_addr", format_check=_is_ip)
    ] = Field(examples=["198.18.4.20"])


class VirtualModify40(Model40):
    ip: Annotated[str | None, _p(non_blank=True, valid_format="ip_addr", format_check=_is_ip)] = (
        None
    )
    force: Annotated[Literal["true"] | None, _p(values=("true",))] = None


class VirtualAction40(Model40):
    action: Annotated[
        Literal["up", "down"], _p(required=True, non_blank=True, values=("up", "down"))
    ]


REQUEST_MODELS40: tuple[type[BaseModel], ...] = (
    FarmCreate40,
    FarmModify40,
    FarmAction40,
    BackendCreate40,
    BackendModify40,
    Maintenance40,
    FgCreate40,
    FgModify40,
    FgAttach40,
    VirtualCreate40,
    VirtualModify40,
    VirtualAction40,
)

# -- the checker --------------------------------------------------------------------------


def params_of(model: type[BaseModel]) -> dict[str, Param]:
    result: dict[str, Param] = {}
    for name, info in model.model_fields.items():
        found = next((m for m in info.metadata if isinstance(m, Param)), None)
        result[name] = found if found is not None else Param()
    return result


def _quoted(items: Iterable[str]) -> str:
    return ", ".join(f"'{item}'" for item in items)


def _and_list(items: list[str]) -> str:
    quoted = [f"'{item}'" for item in items]
    if len(quoted) == 1:
        return quoted[0]
    return f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def help_items(params: dict[str, Param]) -> list[dict[str, Any]]:
    items = []
    for name, param in params.items():
        item: dict[str, Any] = {"name": name}
        if param.valid_format:
            item["format"] = param.valid_format
        if param.values is not None:
            item["possible_values"] = list(param.values)
        if param.interval is not None:
            low, high = param.interval
            item["interval"] = (
                f"Expects a value between '{'-' if low is None else low}' and "
                f"'{'-' if high is None else high}'."
            )
        options = [
            o for o, on in (("non_blank", param.non_blank), ("required", param.required)) if on
        ]
        if options:
            item["options"] = options
        if param.format_msg:
            item["description"] = param.format_msg
        items.append(item)
    return items


def _as_text(value: Any) -> str:
    # What Perl's string comparison sees: JSON true/false are 1/0.
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


M = TypeVar("M", bound=BaseModel)


def check_params(
    model: type[M],
    body: dict[str, Any],
    *,
    description: str,
    values: dict[str, list[str]] | None = None,
    accepts: dict[str, Callable[[str], bool]] | None = None,
) -> M:
    """Zevenet's `checkZAPIParams`: the first failure is a 400 with the original's message.

    `values` replaces a parameter's value list at run time (the vip: the host's addresses);
    `accepts`, when given for such a parameter, decides membership instead of the list.
    """
    params = params_of(model)
    values = values or {}
    accepts = accepts or {}

    def bad(message: str) -> BadRequest:
        return BadRequest(message, description=description)

    if not body:
        raise ParamHelp(description, help_items(params))
    missing = [n for n, p in params.items() if p.required and n not in body]
    if len(missing) == 1:
        raise bad(f"The required parameter '{missing[0]}' is missing.")
    if missing:
        raise bad(f"The required parameters {_and_list(missing)} are missing.")
    unknown = [k for k in body if k not in params]
    if unknown:
        plural = "parameter" if len(unknown) == 1 else "parameters"
        verb = "is" if len(unknown) == 1 else "are"
        raise bad(
            f"The {plural} {_and_list(unknown)} {verb} not correct for this call. "
            f"Please, try with: {_quoted(params)}"
        )
    for key, value in body.items():
        param = params[key]
        if value is None or value == "" or value == []:
            if param.non_blank:
                raise bad(f"The parameter '{key}' can't be in blank.")
            continue
        if isinstance(value, list):
            raise bad(f"The parameter '{key}' does not expect a ARRAY as input")
        if isinstance(value, dict):
            raise bad(f"The parameter '{key}' does not expect a HASH as input")
        text = _as_text(value)
        allowed = values.get(key, list(param.values) if param.values is not None else None)
        if key in accepts:
            if not accepts[key](text):
                raise bad(
                    f"The parameter '{key}' expects one of the following values: "
                    f"{_quoted(allowed or [])}"
                )
        elif allowed is not None and text not in allowed:
            raise bad(
                f"The parameter '{key}' expects one of the following values: {_quoted(allowed)}"
            )
        if param.format_check is not None and not param.format_check(text):
            if param.regex is not None:
                raise bad(f"The value '{text}' is not valid for the parameter '{key}'.")
            raise bad(
                f"{key} {param.format_msg}"
                if param.format_msg
                else f"The parameter '{key}' has not a valid value."
            )
        if param.interval is not None:
            low, high = param.interval
            number = int(text) if re.fullmatch(r"\d+", text) else None
            too_low = number is None or (low is not None and number < low)
            if too_low or (high is not None and number is not None and number > high):
                if high is None:
                    raise bad(
                        f"'{key}' has to be an integer number greater than or equal to '{low}'"
                    )
                raise bad(f"'{key}' has to be an integer number between '{low}' and '{high}'")
        if text in param.exceptions:
            raise bad(f"The value '{text}' is a reserved word of the parameter '{key}'.")
        if param.regex is not None and not re.fullmatch(param.regex, text):
            raise bad(f"The value '{text}' is not valid for the parameter '{key}'.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:  # a type the checks let through (a number for a name)
        where = str(exc.errors()[0]["loc"][0]) if exc.errors() else "body"
        raise bad(f"The parameter '{where}' has not a valid value.") from None
