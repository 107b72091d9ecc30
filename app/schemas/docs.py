"""Pydantic models that document the wire format in the OpenAPI document.

The routes parse bodies themselves (ZAPI accepts integers as digit strings and answers its own
error messages), so these models describe, they do not validate.  Keep them in step with
app/schemas/zapi.py; the API tests assert the real bodies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IntOrDigits = int | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ZapiErrorBody(BaseModel):
    description: str = Field(examples=["Modify L4xNAT farm 'web'"])
    error: Literal["true"]
    message: str = Field(examples=["Invalid algorithm."])


class UnauthorizedBody(BaseModel):
    message: Literal["Authorization required"]


class UnsupportedMediaBody(BaseModel):
    error: Literal["true"]
    message: Literal["Content-Type not supported"]


# -- requests ------------------------------------------------------------------------------


class FarmCreate(_Model):
    farmname: str = Field(pattern=r"^[a-zA-Z0-9-]+$", examples=["web"])
    profile: str = Field(examples=["l4xnat"])
    vip: str = Field(examples=["198.18.0.10"])
    vport: IntOrDigits = Field(examples=["80", 80, "80,443", "1000:2000", "*"])


class FarmUpdate(_Model):
    newfarmname: str | None = None
    algorithm: (
        Literal["weight", "roundrobin", "hash_srcip", "hash_srcip_srcport", "symhash", "leastconn"]
        | None
    ) = None
    persistence: (
        Literal["", "none", "ip", "srcip", "srcport", "srcmac", "srcip_srcport", "srcip_dstport"]
        | None
    ) = None
    protocol: (
        Literal[
            "tcp",
            "udp",
            "sctp",
            "all",
            "ftp",
            "tftp",
            "sip",
            "irc",
            "pptp",
            "sane",
            "amanda",
            "snmp",
            "netbios-ns",
        ]
        | None
    ) = None
    nattype: Literal["nat", "dnat"] | None = None
    ttl: IntOrDigits | None = None
    vip: str | None = None
    vport: IntOrDigits | None = None
    source_addr: str | None = Field(
        default=None, description='kernlb extension: SNAT address for nat mode; "" clears it'
    )


class FarmActionBody(BaseModel):
    action: Literal["start", "stop", "restart"]


class BackendCreate(_Model):
    ip: str = Field(examples=["198.18.2.1"])
    port: IntOrDigits | None = Field(default=None, examples=[8080])
    weight: IntOrDigits | None = Field(default=None, examples=[1])
    priority: IntOrDigits | None = Field(default=None, examples=[1])
    max_conns: IntOrDigits | None = Field(default=None, examples=[0])
    source_addr: str | None = Field(
        default=None, description="kernlb extension: SNAT address for this backend (nat mode)"
    )


class BackendUpdate(_Model):
    ip: str | None = None
    port: IntOrDigits | None = None
    weight: IntOrDigits | None = None
    priority: IntOrDigits | None = None
    max_conns: IntOrDigits | None = None
    source_addr: str | None = None


class MaintenanceBody(BaseModel):
    action: Literal["maintenance", "up"]
    mode: Literal["drain", "cut"] | None = None


# -- responses -----------------------------------------------------------------------------

FarmStatus = Literal["up", "down", "critical", "problem", "maintenance", "needed restart"]
BackendStatus = Literal["up", "down", "maintenance", "undefined"]


class VersionParams(BaseModel):
    appliance_version: str
    hostname: str
    kernel_version: str
    system_date: str
    zevenet_version: str


class VersionResponse(BaseModel):
    description: str
    params: VersionParams


class FarmListItem(BaseModel):
    farmname: str
    profile: str
    status: FarmStatus
    vip: str
    vport: str = Field(description="always a string: 80, 80,443, 1000:2000 or *")


class FarmListResponse(BaseModel):
    description: str
    params: list[FarmListItem]


class BackendItem(BaseModel):
    id: int
    ip: str
    port: int | None
    weight: int
    priority: int
    max_conns: int
    status: BackendStatus
    source_addr: str | None = Field(default=None, description="kernlb extension, when set")


class FarmParams(BaseModel):
    algorithm: str
    fgenabled: Literal["true", "false"]
    fglog: Literal["true", "false"]
    fgscript: str
    fgtimecheck: int
    listener: Literal["l4xnat"]
    nattype: str
    persistence: str
    protocol: str
    status: FarmStatus
    ttl: int
    vip: str
    vport: int | str = Field(description="an integer for a single port, a string otherwise")
    source_addr: str | None = Field(default=None, description="kernlb extension, when set")


class FarmResponse(BaseModel):
    description: str
    params: FarmParams
    backends: list[BackendItem]


class FarmCreatedParams(BaseModel):
    farmname: str
    interface: str
    profile: str
    vip: str
    vport: int | str


class FarmCreatedResponse(BaseModel):
    description: str
    params: FarmCreatedParams


class EchoResponse(BaseModel):
    description: str
    params: dict[str, object]


class DeletedResponse(BaseModel):
    description: str
    message: str
    success: Literal["true"]


class ActionParams(BaseModel):
    action: Literal["start", "stop", "restart"]
    status: FarmStatus


class ActionResponse(BaseModel):
    description: str
    params: ActionParams


class BackendListResponse(BaseModel):
    description: str
    params: list[BackendItem]


class BackendCreatedParams(BaseModel):
    id: int
    ip: str
    port: int | None
    weight: int | None
    priority: int | None
    max_conns: int


class BackendCreatedResponse(BaseModel):
    description: str
    message: str
    params: BackendCreatedParams
    status: FarmStatus


class BackendModifiedResponse(BaseModel):
    description: str
    message: str
    params: dict[str, object]
    status: FarmStatus


class BackendDeletedResponse(BaseModel):
    description: str
    message: str
    status: FarmStatus
    success: Literal["true"]


class MaintenanceFarm(BaseModel):
    status: FarmStatus


class MaintenanceParams(BaseModel):
    action: Literal["maintenance", "up"]
    farm: MaintenanceFarm


class MaintenanceResponse(BaseModel):
    description: str
    params: MaintenanceParams
