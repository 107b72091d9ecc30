"""Request bodies: one pydantic model per ZAPI body; they parse, and the OpenAPI document is
generated from them, so the document lists exactly the values the API accepts.

How they speak ZAPI:
- every field is checked by one of the field types below, which carry ZAPI's exact messages
  (`"Invalid algorithm."`, `"Invalid ttl, can't be blank."`, ...); a failure becomes the
  ZAPI error of the first field that failed, in the order the reference checks them;
- numbers arrive as JSON integers or digit strings (`"8080"`), both accepted;
- keys ZAPI ignores are kept in `model_extra` (and echoed where the reference echoes them);
  the models that refuse unknown keys say so (`Illegal params: ...`);
- messages may name the farm (`{farm}`), taken from the validation context.

The services call `Model.parse(body, description=..., farm=...)` where the reference
validated, after the lookups that come first (a missing farm is a 404 before any field is
looked at), so they stay callable with the plain JSON object of a request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import PydanticCustomError, core_schema

from app.domain.model import ALGORITHMS, HELPERS, NATTYPES, TRANSPORTS
from app.domain.rules import PortSpecError, parse_vport
from app.domain.values import MAX_INT, as_int, as_ip, is_farm_name, vport_text
from app.errors import BadRequest, Gone, ZapiError

ZAPI_ERROR = "zapi"

# -- ZAPI errors from validation -----------------------------------------------------------


def refuse(message: str, *, status: int = 400) -> PydanticCustomError:
    """A validation failure that is answered with exactly this ZAPI message."""
    return PydanticCustomError(ZAPI_ERROR, "{message}", {"message": message, "status": status})


def _context(info: ValidationInfo | None) -> Mapping[str, str]:
    context = info.context if info is not None else None
    return context if isinstance(context, Mapping) else {}


def _say(template: str, info: ValidationInfo | None) -> str:
    """Fill the `{farm}`-style names of one of our templates (never a client's text)."""
    return template.format_map(_Defaults(_context(info)))


class _Defaults(dict[str, str]):
    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)

    def __missing__(self, key: str) -> str:
        return ""


def zapi_error(exc: ValidationError, *, description: str) -> ZapiError:
    """The first failure (fields fail in the reference's order) as a ZAPI error."""
    first = exc.errors()[0]
    ctx = first.get("ctx") or {}
    if first["type"] == ZAPI_ERROR:
        message, status = str(ctx["message"]), int(ctx["status"])
    elif first["type"] == "extra_forbidden":  # the models that refuse unknown keys
        illegal = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden")
        message, status = f"Illegal params: {', '.join(illegal)}", 400
    else:  # pydantic's own checks (a body that is no object): name the parameter
        where = ".".join(str(part) for part in first["loc"]) or "request"
        message, status = f"Invalid {where}.", 400
    error = Gone if status == 410 else BadRequest
    return error(message, description=description)


# -- field types ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Field:
    """A field checked by `check(value, info)`, documented by `schema` (compared by
    identity: they are annotation metadata, which must hash)."""

    def check(self, value: Any, info: ValidationInfo) -> Any:
        raise NotImplementedError

    def schema(self) -> JsonSchemaValue:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.schema()


def _refuse_blank(value: Any, blank: str | None, info: ValidationInfo) -> None:
    """ "" has a message of its own where the field gives one."""
    if value == "" and blank is not None:
        raise refuse(_say(blank, info))


def _described(schema: JsonSchemaValue, description: str | None) -> JsonSchemaValue:
    if description:
        schema["description"] = description
    return schema


class _FixedSchema:
    """A field documented by the JSON schema it was given."""

    schema_: JsonSchemaValue

    def schema(self) -> JsonSchemaValue:
        return dict(self.schema_)


@dataclass(frozen=True, eq=False)
class OneOf(_Field):
    """A string out of `values`; `blank` is the message for "" (else `invalid`), `gone`
    maps values that are no longer supported to a 410 message."""

    values: tuple[str, ...]
    invalid: str
    blank: str | None = None
    gone: tuple[tuple[str, str], ...] = ()
    description: str | None = None

    def check(self, value: Any, info: ValidationInfo) -> str:
        if "" not in self.values:
            _refuse_blank(value, self.blank, info)
        for old, message in self.gone:
            if value == old:
                raise refuse(_say(message, info), status=410)
        if not isinstance(value, str) or value not in self.values:
            raise refuse(_say(self.invalid, info))
        return value

    def schema(self) -> JsonSchemaValue:
        return _described({"type": "string", "enum": list(self.values)}, self.description)


@dataclass(frozen=True, eq=False)
class Number(_Field):
    """An integer in [low, high], as a JSON number or a digit string."""

    low: int
    high: int
    invalid: str
    blank: str | None = None
    description: str | None = None

    def check(self, value: Any, info: ValidationInfo) -> int:
        _refuse_blank(value, self.blank, info)
        number = as_int(value)
        if number is None or not self.low <= number <= self.high:
            raise refuse(_say(self.invalid, info))
        return number

    def schema(self) -> JsonSchemaValue:
        number = {"type": "integer", "minimum": self.low, "maximum": self.high}
        digits = {"type": "string", "pattern": "^[0-9]+$", "maxLength": 10}
        return _described({"anyOf": [number, digits]}, self.description)


@dataclass(frozen=True, eq=False)
class Text(_FixedSchema, _Field):
    """A string that `convert` turns into its stored form, or None to refuse it (`invalid`)."""

    convert: Callable[[Any], Any]
    invalid: str
    blank: str | None = None
    schema_: JsonSchemaValue = field(default_factory=lambda: {"type": "string"})

    def check(self, value: Any, info: ValidationInfo) -> Any:
        _refuse_blank(value, self.blank, info)
        converted = self.convert(value)
        if converted is None:
            raise refuse(_say(self.invalid, info))
        return converted


@dataclass(frozen=True, eq=False)
class Passed(_FixedSchema, _Field):
    """Any value, checked by the service (it needs state: the farm's family, interfaces)."""

    schema_: JsonSchemaValue

    def check(self, value: Any, info: ValidationInfo) -> Any:
        return value


def _snat_address(description: str) -> Passed:
    """`source_addr`, a kernlb extension: the service checks it against the host's addresses."""
    return Passed({"type": "string", "description": description})


@dataclass(frozen=True, eq=False)
class Refused(_Field):
    """A key that is always refused, with this message."""

    message: str

    def check(self, value: Any, info: ValidationInfo) -> Any:
        raise refuse(_say(self.message, info))

    def schema(self) -> JsonSchemaValue:
        return {}


@dataclass(frozen=True, eq=False)
class PortOrBlank(_Field):
    """A port (1-65535, number or digit string), or "" to remove the port."""

    invalid: str

    def check(self, value: Any, info: ValidationInfo) -> int | str:
        if value == "":
            return ""
        number = as_int(value)
        if number is None or not 1 <= number <= 65535:
            raise refuse(_say(self.invalid, info))
        return number

    def schema(self) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": "^[0-9]*$", "maxLength": 10},
            ],
            "description": '"" removes the port',
        }


def _vport(value: Any) -> str | None:
    """Canonical multiport text (`80`, `80,443`, `1000:2000`, `*`), or None if invalid."""
    text = vport_text(value)
    if text is None or text == "":
        return None
    try:
        parse_vport(text)
    except PortSpecError:
        return None
    return text


VPORT_SCHEMA: JsonSchemaValue = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 65535},
        {
            "type": "string",
            "pattern": r"^(\*|[0-9]+(:[0-9]+)?(,[0-9]+(:[0-9]+)?)*)$",
            "description": "80, 80,443, 1000:2000 or * (every port)",
        },
    ],
    "examples": ["80", 80, "80,443", "1000:2000", "*"],
}
IP_SCHEMA: JsonSchemaValue = {"type": "string", "examples": ["198.18.0.10"]}


# -- the base model ------------------------------------------------------------------------


def _required_in_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    required = getattr(cls, "required_fields", ())
    if required:
        schema["required"] = list(required)


class ZapiBody(BaseModel):
    """A ZAPI request body: keys that do not apply are kept aside (ZAPI ignores them)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_required_in_schema)
    # Documented as required; checked (with ZAPI's message) by the field's own type.
    required_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def parse(cls, body: Mapping[str, Any] | Self, *, description: str, **context: str) -> Self:
        if isinstance(body, cls):
            return body
        try:
            return cls.model_validate(dict(body), context=context)
        except ValidationError as exc:
            raise zapi_error(exc, description=description) from None

    def echo(self) -> dict[str, Any]:
        """What the client sent, as parsed (ZAPI answers some requests with their body)."""
        return self.model_dump(exclude_unset=True)


def _required(**kwargs: Any) -> Any:
    """A field the client must send: its type's check runs on a missing one too."""
    return Field(default=None, validate_default=True, **kwargs)


# -- farms ---------------------------------------------------------------------------------

FARM_NAME_MESSAGE = (
    "The farm name is required to have alphabet letters, numbers or hypens (-) only."
)
UNSUPPORTED_PROFILES = ("https", "gslb", "datalink")  # http: app/services/http_farms.py
PERSISTENCE_INPUT = {
    "": "",
    "none": "",
    "ip": "ip",
    "srcip": "ip",
    "srcport": "srcport",
    "srcmac": "srcmac",
    "srcip_srcport": "srcip_srcport",
    "srcip_dstport": "srcip_dstport",
}
PROTOCOLS: tuple[str, ...] = (*TRANSPORTS, "all", *HELPERS)


def _farm_name(value: Any) -> str | None:
    return value if is_farm_name(value) else None


class FarmCreate(ZapiBody):
    """`POST /farms`: an l4xnat farm; it starts at once."""

    required_fields = ("farmname", "profile", "vip", "vport")

    farmname: Annotated[
        str,
        Text(
            _farm_name,
            FARM_NAME_MESSAGE,
            schema_={"type": "string", "pattern": "^[a-zA-Z0-9-]+$", "examples": ["web"]},
        ),
    ] = _required()
    profile: Annotated[str, Passed({"type": "string", "examples": ["l4xnat"]})] = _required(
        description="l4xnat or http (any letter case); https, gslb and datalink are refused"
    )
    vip: Annotated[str, Text(as_ip, "Invalid vip.", schema_=IP_SCHEMA)] = _required()
    vport: Annotated[
        str,
        Text(
            _vport,
            "The virtual port must be an acceptable value and must be available.",
            schema_=VPORT_SCHEMA,
        ),
    ] = _required()

    @field_validator("profile", mode="after")
    @classmethod
    def _known_profile(cls, value: Any) -> str:
        profile = value.lower() if isinstance(value, str) else ""
        if profile in UNSUPPORTED_PROFILES:
            raise refuse(
                f"The farm profile '{value}' is not supported by kernlb yet; "
                "only l4xnat and http farms can be created (https: an http farm with "
                "listener https)."
            )
        if profile != "l4xnat":
            raise refuse("The farm's profile is not supported.")
        return str(value)


class FarmUpdate(ZapiBody):
    """`PUT /farms/NAME`: any subset; every field applies, or none.  Keys that do not
    apply to l4xnat farms (`status`, `listener`, `backends`...) are ignored and echoed."""

    newfarmname: (
        Annotated[
            str,
            Text(
                _farm_name,
                "Invalid newfarmname.",
                blank="Invalid newfarmname, can't be blank.",
                schema_={"type": "string", "pattern": "^[a-zA-Z0-9-]+$"},
            ),
        ]
        | None
    ) = None
    algorithm: (
        Annotated[
            str,
            OneOf(
                ALGORITHMS,
                "Invalid algorithm.",
                blank="Invalid algorithm, can't be blank.",
                gone=(("prio", "Not supported anymore."),),
            ),
        ]
        | None
    ) = None
    persistence: (
        Annotated[
            str,
            OneOf(
                tuple(PERSISTENCE_INPUT),
                "Invalid persistence.",
                description='"" and none: no persistence; srcip is ip',
            ),
        ]
        | None
    ) = None
    protocol: (
        Annotated[
            str,
            OneOf(
                PROTOCOLS,
                "Invalid protocol.",
                blank="Invalid protocol, can't be blank.",
                description="a conntrack helper (ftp, sip...) must be provided by the kernel",
            ),
        ]
        | None
    ) = None
    nattype: (
        Annotated[
            str,
            OneOf(NATTYPES, "Invalid nattype.", blank="Invalid nattype, can't be blank."),
        ]
        | None
    ) = None
    ttl: (
        Annotated[
            int,
            Number(
                1,
                MAX_INT,
                "Invalid ttl.",
                blank="Invalid ttl, can't be blank.",
                description="seconds a persistence entry lives",
            ),
        ]
        | None
    ) = None
    vip: (
        Annotated[str, Text(as_ip, "Invalid vip.", blank="Invalid vip, can't be blank.")] | None
    ) = None
    vport: (
        Annotated[
            str,
            Text(
                _vport,
                "Invalid vport.",
                blank="Invalid vport, can't be blank.",
                schema_=VPORT_SCHEMA,
            ),
        ]
        | None
    ) = None
    source_addr: (
        Annotated[str, _snat_address('kernlb extension: SNAT address for nat mode; "" clears it')]
        | None
    ) = None

    @field_validator("persistence", mode="after")
    @classmethod
    def _canonical_persistence(cls, value: str | None) -> str | None:
        return None if value is None else PERSISTENCE_INPUT[value]


class FarmActionBody(ZapiBody):
    """`PUT /farms/NAME/actions`."""

    required_fields = ("action",)

    action: Annotated[
        str,
        OneOf(
            ("start", "stop", "restart"),
            "Invalid action; the actions available are stop, start and restart",
        ),
    ] = _required()

    @model_validator(mode="before")
    @classmethod
    def _requested(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("action") is None:
            raise refuse("No action has been requested.")
        return data


# -- backends ------------------------------------------------------------------------------

WEIGHT_MESSAGE = "Invalid backend weight value, please insert a value form 1 to 9."


class BackendCreate(ZapiBody):
    """`POST /farms/NAME/backends`: without `port` the client's destination port is kept."""

    required_fields = ("ip",)

    ip: Annotated[
        str,
        Text(
            as_ip,
            "Invalid backend IP value.",
            blank="Invalid backend IP value. It cannot be in blank.",
            schema_={"type": "string", "examples": ["198.18.2.1"]},
        ),
    ] = _required()
    port: (
        Annotated[
            int,
            Number(1, 65535, "Invalid IP address and port for a backend, it can't be blank."),
        ]
        | None
    ) = None
    weight: Annotated[int, Number(1, 9, WEIGHT_MESSAGE)] | None = None
    priority: (
        Annotated[
            int,
            Number(
                0,
                9,
                "Invalid backend priority value, please insert a value within the range 0-9.",
                description="0 is stored as 1",
            ),
        ]
        | None
    ) = None
    max_conns: (
        Annotated[
            int,
            Number(
                0,
                MAX_INT,
                "Invalid backend connection limit value, accepted values are 0 or higher.",
                description="0: unlimited",
            ),
        ]
        | None
    ) = None
    source_addr: (
        Annotated[str, _snat_address("kernlb extension: SNAT address for this backend (nat mode)")]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _blank_values(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("ip") is None:
                data = {**data, "ip": ""}  # missing: the "blank" message
            if data.get("port") == "":
                data = {**data, "port": None}  # "": no port, as when it is left out
        return data


class BackendUpdate(ZapiBody):
    """`PUT /farms/NAME/backends/ID`: any subset; `"port": ""` removes the port."""

    ip: Annotated[str, Text(as_ip, "Invalid IP.")] | None = None
    port: Annotated[int | str, PortOrBlank("Invalid port number.")] | None = None
    weight: Annotated[int, Number(1, 9, WEIGHT_MESSAGE)] | None = None
    priority: (
        Annotated[
            int,
            Number(
                0,
                9,
                "Error, trying to modify the backends in the farm {farm}, "
                "invalid priority. The higher value is 9.",
            ),
        ]
        | None
    ) = None
    max_conns: (
        Annotated[
            int,
            Number(
                0,
                MAX_INT,
                "Error, trying to modify the connection limit in the farm {farm}, invalid value.",
            ),
        ]
        | None
    ) = None
    source_addr: Annotated[str, Passed({"type": "string"})] | None = None


class MaintenanceBody(ZapiBody):
    """`PUT /farms/NAME/backends/ID/maintenance`: drain (connections continue) or cut."""

    required_fields = ("action",)

    action: Annotated[
        str,
        OneOf(
            ("maintenance", "up"),
            "Invalid action; the possible actions are up and maintenance",
        ),
    ] = _required()
    mode: (
        Annotated[
            str,
            OneOf(
                ("drain", "cut"),
                "Error, the maintenance mode is not a valid value.",
                description="with action maintenance (default drain)",
            ),
        ]
        | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _requested(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("action") is None:
                raise refuse("No maintenance action was requested.")
            if data.get("action") != "maintenance":
                data = {**data, "mode": None}  # only maintenance has a mode
        return data


# -- farmguardian --------------------------------------------------------------------------

FG_MAX_SECONDS = 86400
FG_MAX_COUNT = 100
TRUE_FALSE = ("true", "false")


@dataclass(frozen=True, eq=False)
class _FarmGuardianService(OneOf):
    """Parsed here for l4xnat farms only ("" passes: they have no services); http farms'
    bodies have their `service` taken out first (app/services/http_farms.py)."""

    def schema(self) -> JsonSchemaValue:
        return {
            "type": "string",
            "maxLength": 255,
            "description": "http/https farms: the service whose check this is (required); "
            'l4xnat farms have none ("", as the Go client sends it)',
        }


def _fg_invalid(name: str) -> str:
    return f"Invalid format, please insert a valid {name}."


def _fg_script(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 1024 else None


class FarmGuardianUpdate(ZapiBody):
    """`PUT /farms/NAME/fg`: any subset; unknown keys are refused (`Illegal params: ...`)."""

    model_config = ConfigDict(extra="forbid")

    service: (
        Annotated[
            str,
            _FarmGuardianService(("",), "L4xNAT profile farms do not have services."),
        ]
        | None
    ) = None
    fgtimecheck: Annotated[
        int | None,
        Number(
            1,
            FG_MAX_SECONDS,
            _fg_invalid("fgtimecheck"),
            description="seconds between rounds",
        ),
    ] = None
    fgscript: Annotated[
        str | None,
        Text(
            _fg_script,
            "Invalid fgscript.",
            blank="Invalid fgscript, can't be blank.",
            schema_={
                "type": "string",
                "maxLength": 1024,
                "examples": ["check_tcp -H HOST -p PORT"],
            },
        ),
    ] = None
    fgenabled: Annotated[str | None, OneOf(TRUE_FALSE, _fg_invalid("fgenabled"))] = None
    fglog: Annotated[
        str | None,
        OneOf(
            ("", *TRUE_FALSE),
            _fg_invalid("fglog"),
            description='"" (sent by the Go client when unset) leaves the flag as it is',
        ),
    ] = None
    fgtimeout: Annotated[
        int | None,
        Number(
            0,
            FG_MAX_SECONDS,
            _fg_invalid("fgtimeout"),
            description="kernlb extension: seconds per probe; 0 = fgtimecheck",
        ),
    ] = None
    fgrise: Annotated[
        int | None,
        Number(
            1,
            FG_MAX_COUNT,
            _fg_invalid("fgrise"),
            description="kernlb extension: passing rounds that bring a backend up",
        ),
    ] = None
    fgfall: Annotated[
        int | None,
        Number(
            1,
            FG_MAX_COUNT,
            _fg_invalid("fgfall"),
            description="kernlb extension: failing rounds that take a backend down",
        ),
    ] = None
    fgcutconns: Annotated[
        str | None,
        OneOf(
            TRUE_FALSE,
            _fg_invalid("fgcutconns"),
            description="kernlb extension: cut the connections of a backend taken down",
        ),
    ] = None

    @model_validator(mode="after")
    def _something_known(self) -> Self:
        if not self.changes():
            raise refuse("Not found any param.")
        return self

    def changes(self) -> dict[str, Any]:
        """Column -> value of every field sent ("" for fglog leaves the flag as it is)."""
        columns = {
            "fgtimecheck": "fg_timecheck",
            "fgscript": "fg_script",
            "fgenabled": "fg_enabled",
            "fglog": "fg_log",
            "fgtimeout": "fg_timeout",
            "fgrise": "fg_rise",
            "fgfall": "fg_fall",
            "fgcutconns": "fg_cut_conns",
        }
        changes: dict[str, Any] = {}
        for name, column in columns.items():
            value = getattr(self, name)
            if value is None or (name == "fglog" and value == ""):
                continue
            if name in ("fgenabled", "fglog", "fgcutconns"):
                value = value == "true"
            changes[column] = value
        return changes


# -- interfaces ----------------------------------------------------------------------------

VIRTUAL_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*(\.[0-9]{1,4})?:[a-zA-Z0-9]+$"
MAX_INTERFACE_NAME = 15  # IFNAMSIZ - 1: the kernel's limit for a label


def _ipv4(value: Any) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value)) if isinstance(value, str) else None
    except ValueError:
        return None


class VirtualInterfaceCreate(ZapiBody):
    """`POST /interfaces/virtual`: an IPv4 address on a link of the host, labelled PARENT:TAG."""

    required_fields = ("name", "ip")

    name: Annotated[
        str,
        Text(
            lambda v: v if isinstance(v, str) and v else None,
            "Interface name is not valid",
            schema_={
                "type": "string",
                "maxLength": MAX_INTERFACE_NAME,
                "pattern": VIRTUAL_NAME_PATTERN,
                "description": "PARENT:TAG, at most 15 characters; PARENT is a link of the host",
                "examples": ["eth0:vip1"],
            },
        ),
    ] = _required()
    ip: Annotated[
        str,
        Text(
            _ipv4,
            "IP Address is not valid.",
            schema_={
                "type": "string",
                "description": "an IPv4 address in a network of the parent",
                "examples": ["198.18.1.200"],
            },
        ),
    ] = _required()

    @field_validator("name", mode="after")
    @classmethod
    def _fits(cls, value: str) -> str:
        if len(value) > MAX_INTERFACE_NAME:
            raise refuse("Virtual interface name has a maximum length of 15 characters")
        if re.fullmatch(VIRTUAL_NAME_PATTERN[1:-1], value) is None:
            raise refuse("Interface name is not valid")
        return value


class VirtualInterfaceCreateNamed(ZapiBody):
    """`POST /interfaces/virtual/NAME`: the same, named by the path."""

    required_fields = ("ip",)

    ip: Annotated[
        str,
        Passed(
            {
                "type": "string",
                "description": "an IPv4 address in a network of the parent",
                "examples": ["198.18.1.200"],
            }
        ),
    ] = _required()
    name: Annotated[
        str | None, Passed({"type": "string", "description": "if given, the name in the path"})
    ] = None


class VirtualInterfaceModify(ZapiBody):
    """`PUT /interfaces/virtual/NAME` (v3.1): only `ip` (anything else is "Illegal params")."""

    model_config = ConfigDict(extra="forbid")
    required_fields = ("ip",)

    ip: Annotated[
        str,
        Passed(
            {"type": "string", "description": "the new IPv4 address", "examples": ["198.18.4.21"]}
        ),
    ] = _required()

    @model_validator(mode="before")
    @classmethod
    def _something_known(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise refuse("Not found any param.")
            illegal = sorted(k for k in data if k != "ip")
            if illegal:
                raise refuse(f"Illegal params: {', '.join(illegal)}")
        return data


class VirtualInterfaceAction(ZapiBody):
    """`POST /interfaces/virtual/NAME/actions`: up (the address back on the link) or down."""

    model_config = ConfigDict(extra="forbid")
    required_fields = ("action",)

    action: Annotated[str, OneOf(("up", "down"), "Action accepted values are: up or down")] = (
        _required()
    )

    @model_validator(mode="before")
    @classmethod
    def _only_action(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) != {"action"}:
            raise refuse("Only the parameter 'action' is accepted")
        return data


# -- users ---------------------------------------------------------------------------------

ZAPI_USER_PARAMS = ("key", "newpassword", "randomkey", "status")


def _zapi_key(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(r"[a-zA-Z0-9]+", value) else None


class ZapiUserUpdate(ZapiBody):
    """`POST /system/users/zapi`: set a key, generate one, or disable the zapi user."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[
        str | None,
        Text(
            _zapi_key,
            "Error, character incorrect in key zapi.",
            schema_={
                "type": "string",
                "pattern": "^[a-zA-Z0-9]+$",
                "description": "set this key",
                "examples": ["s3cr3tKey"],
            },
        ),
    ] = None
    status: Annotated[
        str | None,
        OneOf(
            ("enable", "disable"),
            "Error, character incorrect in status zapi.",
            description="disable: no key is accepted any more (until a key is set again); "
            "enable with no key set generates one",
        ),
    ] = None
    # The original's zapi user was a system account; kernlb has none.
    newpassword: SkipJsonSchema[
        Annotated[
            Any,
            Refused("The zapi user has no password in kernlb: only its key authenticates."),
        ]
    ] = None
    randomkey: Annotated[
        str | None,
        OneOf(
            TRUE_FALSE,
            'Invalid randomkey: it must be "true" or "false".',
            description="kernlb extension: generate a key and return it once in params.key",
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _known_params(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise refuse("Not found any param.")
            illegal = sorted(k for k in data if k not in ZAPI_USER_PARAMS)
            if illegal:
                raise refuse(f"Illegal params: {', '.join(illegal)}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.randomkey == "true" and "key" in self.model_fields_set:
            raise refuse("Send either a key or randomkey, not both.")
        if self.status == "disable" and (
            "key" in self.model_fields_set or self.randomkey == "true"
        ):
            raise refuse("A key cannot be set while disabling the zapi user.")
        return self


REQUEST_MODELS: tuple[type[ZapiBody], ...] = (
    FarmCreate,
    FarmUpdate,
    FarmActionBody,
    BackendCreate,
    BackendUpdate,
    MaintenanceBody,
    FarmGuardianUpdate,
    VirtualInterfaceCreate,
    VirtualInterfaceCreateNamed,
    VirtualInterfaceModify,
    VirtualInterfaceAction,
    ZapiUserUpdate,
)
