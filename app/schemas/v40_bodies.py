"""ZAPI v4.0 response bodies for l4xnat (zapi40-l4.md §3 to §5): the OpenAPI models.

Where 4.0 keeps a 3.1 shape, the 3.1 models (app/schemas/docs.py) are reused; the presenters
that fill these bodies are in app/api/v40/present.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.docs import BackendItem, FarmStatus

# -- OpenAPI models -----------------------------------------------------------------------

Flag = Literal["true", "false"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Farm40Params(BaseModel):
    algorithm: str
    farmguardian: str | None = Field(description="the linked farmguardian, or null")
    listener: Literal["l4xnat"]
    nattype: str
    persistence: str
    protocol: str
    sessions: list[dict[str, Any]]
    status: FarmStatus
    ttl: int
    vip: str
    vport: int | str
    source_addr: str | None = Field(default=None, description="kernlb extension, when set")


class Farm40Response(BaseModel):
    description: str
    params: Farm40Params
    backends: list[BackendItem]


class Message40Response(_Open):
    description: str
    message: str


class FarmCreated40Response(BaseModel):
    description: str
    message: str
    params: dict[str, Any]


class FarmModified40Response(BaseModel):
    description: str
    message: str
    params: dict[str, Any]


class FarmStatusParams(BaseModel):
    status: FarmStatus


class FarmStatus40Response(BaseModel):
    description: str
    params: FarmStatusParams


class ModuleItem(BaseModel):
    name: str
    profile: str


class ModulesSummaryParams(BaseModel):
    lslb: list[ModuleItem]
    gslb: list[ModuleItem]
    dslb: list[ModuleItem]


class ModulesSummaryResponse(BaseModel):
    description: str
    params: ModulesSummaryParams


class FarmAction40Params(BaseModel):
    action: str
    status: FarmStatus


class FarmAction40Response(BaseModel):
    description: str
    message: str
    params: FarmAction40Params


class BackendCreated40Response(BaseModel):
    description: str
    message: str
    params: BackendItem
    status: FarmStatus
    warning: str | None = None


class BackendModified40Response(BaseModel):
    description: str
    message: str
    params: dict[str, Any]
    status: FarmStatus
    warning: str | None = None


class BackendDeleted40Response(BaseModel):
    description: str
    message: str
    status: FarmStatus
    success: Literal["true"]
    warning: str | None = None


class Maintenance40Farm(BaseModel):
    status: FarmStatus


class Maintenance40Params(BaseModel):
    action: str
    farm: Maintenance40Farm
    message: str


class Maintenance40Response(BaseModel):
    description: str
    params: Maintenance40Params


class FgObject(BaseModel):
    backend_alias: Flag
    command: str
    cut_conns: Flag
    description: str
    farms: list[str]
    interval: int
    log: Flag
    name: str
    template: Flag
    timeout: int


class FgListResponse(BaseModel):
    description: str
    params: list[FgObject]


class FgResponse(BaseModel):
    description: str
    params: FgObject


class FgChangedResponse(BaseModel):
    description: str
    message: str
    params: FgObject


class FgDeletedResponse(BaseModel):
    description: str
    message: str
    success: Literal["true"]


class FgLinkResponse(BaseModel):
    description: str
    message: str
    status: FarmStatus


class BackendStats40(BaseModel):
    established: int
    id: int
    ip: str
    max_conns: int
    pending: int
    port: int | None
    priority: int
    status: str
    weight: int


class FarmStats40Response(BaseModel):
    backends: list[BackendStats40]
    description: str
    sessions: list[dict[str, Any]]
    total_sessions: int


class ParamHelpItem(BaseModel):
    name: str
    format: str | None = None
    possible_values: list[str] | None = None
    interval: str | None = None
    options: list[str] | None = None
    description: str | None = None


class ParamHelpBody(BaseModel):
    description: str
    message: Literal["No parameter has been sent. Please, try with:"]
    params: list[ParamHelpItem]


class Error40Body(BaseModel):
    description: str
    documentation: str
    error: Literal["true"]
    message: str


class InvalidJsonBody(BaseModel):
    error: Literal["true"]
    message: Literal["The body does not look a valid JSON"]
