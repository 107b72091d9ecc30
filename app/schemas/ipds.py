"""IPDS request bodies (pydantic, ZAPI spellings) and how their failures read in ZAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from app.domain.ipds import MAX_CONNS, MAX_LIMIT, MAX_METER_SIZE, MIN_METER_SIZE
from app.errors import BadRequest

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _integer(value: Any) -> Any:
    """Real clients send numbers as strings ("20"); booleans are not numbers."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, str) and value.strip().isdigit() and value == value.strip():
        return int(value)
    return value


Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Rate = Annotated[int, BeforeValidator(_integer), Field(ge=1, le=MAX_LIMIT, strict=True)]
Conns = Annotated[int, BeforeValidator(_integer), Field(ge=1, le=MAX_CONNS, strict=True)]
Overflow = Annotated[int, BeforeValidator(_integer), Field(ge=0, le=MAX_LIMIT, strict=True)]
MeterSize = Annotated[
    int, BeforeValidator(_integer), Field(ge=MIN_METER_SIZE, le=MAX_METER_SIZE, strict=True)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListCreate(_Body):
    """POST /ipds/blacklists."""

    name: Name
    type: Literal["local"] = "local"
    policy: Literal["deny", "allow"] = "deny"


class ListUpdate(_Body):
    """PUT /ipds/blacklists/NAME: the policy, and/or every source at once (replaces them)."""

    policy: Literal["deny", "allow"] | None = None
    sources: list[str] | None = Field(default=None, max_length=4_000_000)


class SourceAdd(_Body):
    """POST /ipds/blacklists/NAME/sources."""

    source: str = Field(max_length=64)


class FarmRuleAttach(_Body):
    """POST /farms/NAME/ipds/blacklists and /farms/NAME/ipds/dos."""

    name: str = Field(max_length=255)


class DosCreate(_Body):
    """POST /ipds/dos: a rule created with Zevenet's default parameters."""

    name: Name
    rule: str = Field(max_length=64)


class DosUpdate(_Body):
    """PUT /ipds/dos/NAME (`meter_size`, `overflow_limit`, `overflow_burst`: extensions)."""

    limit: Rate | None = None
    limit_burst: Rate | None = None
    limit_conns: Conns | None = None
    meter_size: MeterSize | None = None
    overflow_limit: Overflow | None = None
    overflow_burst: Overflow | None = None


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: dict[str, Any], *, description: str) -> M:
    """Validate a body; the first problem becomes a ZAPI 400 that names the field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "missing":
            message = f"The required parameter {field} is missing."
        elif error["type"] == "extra_forbidden":
            message = f"The parameter {field} is not valid."
        else:
            message = f"The parameter {field} has not a valid value."
        raise BadRequest(message, description=description) from exc


# -- responses (OpenAPI) -------------------------------------------------------------------


class IpdsObjectResponse(BaseModel):
    description: str
    params: dict[str, object]


class IpdsListResponse(BaseModel):
    description: str
    params: list[dict[str, object]]


class IpdsMessageResponse(BaseModel):
    description: str
    message: str
    params: dict[str, object] | None = None


class IpdsDeletedResponse(BaseModel):
    description: str
    message: str
    success: Literal["true"]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    ListCreate,
    ListUpdate,
    SourceAdd,
    FarmRuleAttach,
    DosCreate,
    DosUpdate,
)
