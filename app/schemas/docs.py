"""Response bodies, as the OpenAPI document shows them (request bodies: app/schemas/requests.py).

The presenters (app/schemas/zapi.py, stats.py, fg.py, interfaces.py) build these bodies as
plain dicts in ZAPI's JSON types; the API tests assert the real bodies against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class ZapiErrorBody(BaseModel):
    description: str = Field(examples=["Modify L4xNAT farm 'web'"])
    error: Literal["true"]
    message: str = Field(examples=["Invalid algorithm."])


class UnauthorizedBody(BaseModel):
    message: Literal["Authorization required"]


class UnsupportedMediaBody(BaseModel):
    error: Literal["true"]
    message: Literal["Content-Type not supported"]


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


# -- farmguardian ---------------------------------------------------------------------------

TrueFalse = Literal["true", "false"]


class FarmGuardianModifiedParams(BaseModel):
    fgenabled: TrueFalse
    fglog: TrueFalse
    fgscript: str
    fgtimecheck: int
    fgtimeout: int | None = None
    fgrise: int | None = None
    fgfall: int | None = None
    fgcutconns: TrueFalse | None = None


class FarmGuardianModifiedResponse(BaseModel):
    description: str
    message: str
    params: FarmGuardianModifiedParams


class FarmGuardianParams(BaseModel):
    fgenabled: TrueFalse
    fglog: TrueFalse
    fgscript: str
    fgtimecheck: int
    fgtimeout: int
    fgrise: int
    fgfall: int
    fgcutconns: TrueFalse


class BackendHealthItem(BaseModel):
    id: int
    ip: str
    port: int | None
    status: BackendStatus
    health: Literal["up", "down"]
    changed: str | None = Field(description="UTC time of the last transition (ISO 8601)")
    reason: str = Field(description="what the probe said at the last transition")


class FarmGuardianResponse(BaseModel):
    description: str
    params: FarmGuardianParams
    backends: list[BackendHealthItem]


class ServiceFarmGuardianResponse(BaseModel):
    """GET /farms/NAME/services/SVC/fg (kernlb extension): an http service's check and its
    backends' statuses as HAProxy's checks see them."""

    description: str
    params: FarmGuardianParams
    backends: list[HttpBackendItem]


# -- stats (reference §8) ------------------------------------------------------------------


class FarmStatsItem(BaseModel):
    established: int = Field(examples=[12])
    farmname: str = Field(examples=["web"])
    pending: int = Field(examples=[1])
    profile: str = Field(examples=["l4xnat"])
    status: FarmStatus
    vip: str = Field(examples=["198.18.0.10"])
    vport: str = Field(description="always a string: 80, 80,443, 1000:2000 or *", examples=["80"])


class FarmStatsListResponse(BaseModel):
    description: Literal["List all farms stats"]
    farms: list[FarmStatsItem]


class BackendStatsItem(BaseModel):
    established: int = Field(examples=[7])
    id: int = Field(examples=[0])
    ip: str = Field(examples=["198.18.2.1"])
    max_conns: int = Field(examples=[0])
    pending: int = Field(examples=[0])
    port: int | None = Field(examples=[8080])
    priority: int = Field(examples=[1])
    status: BackendStatus
    weight: int = Field(examples=[1])


class FarmStatsResponse(BaseModel):
    backends: list[BackendStatsItem]
    description: Literal["Get farm stats"]


class MemoryStats(BaseModel):
    """Megabytes."""

    Buffers: float
    Cached: float
    MemFree: float
    MemTotal: float
    MemUsed: float
    SwapCached: float
    SwapFree: float
    SwapTotal: float
    SwapUsed: float


class LoadStats(BaseModel):
    Last_1: float
    Last_5: float
    Last_15: float


class CpuStats(BaseModel):
    """Percentages over the last sampling interval, and the number of cores."""

    cores: int
    idle: float
    iowait: float
    irq: float
    nice: float
    softirq: float
    sys: float
    usage: float
    user: float


class SystemStatsParams(BaseModel):
    cpu: CpuStats
    date: str = Field(examples=["Thu Nov 27 10:00:00 2026"])
    hostname: str
    load: LoadStats
    memory: MemoryStats
    network: dict[str, float] = Field(
        description='Megabytes received and sent since boot, keyed "IFACE in in" and '
        '"IFACE out out" (the original doubled the direction; monitoring plugins rely on it).',
        examples=[{"eth0 in in": 46.11, "eth0 out out": 63.02}],
    )


class SystemStatsResponse(BaseModel):
    description: Literal["System stats"]
    params: SystemStatsParams


class InterfaceUsage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    in_: str = Field(alias="in", description="MB received, two decimals", examples=["46.11"])
    interface: str = Field(examples=["eth0"])
    out: str = Field(description="MB sent, two decimals", examples=["63.02"])


class NetworkUsageParams(BaseModel):
    date: str
    hostname: str
    interfaces: list[InterfaceUsage]


class NetworkUsageResponse(BaseModel):
    description: Literal["Network interefaces usage"]
    params: NetworkUsageParams


# -- interfaces (reference §2.3) -----------------------------------------------------------


class NicItem(BaseModel):
    gateway: str = Field(examples=["198.18.1.1", ""])
    has_vlan: Literal["true", "false"]
    ip: str = Field(examples=["198.18.1.254"])
    mac: str = Field(examples=["02:00:00:00:00:01"])
    name: str = Field(examples=["eth0"])
    netmask: str = Field(examples=["255.255.255.0"])
    status: Literal["up", "down"]


class NicListResponse(BaseModel):
    description: Literal["List NIC interfaces"]
    interfaces: list[NicItem]


class VirtualInterfaceDetail(BaseModel):
    gateway: str = Field(examples=[""])
    ip: str = Field(examples=["198.18.1.200"])
    mac: str = Field(examples=["02:00:00:00:00:01"])
    name: str = Field(examples=["eth0:vip1"])
    netmask: str = Field(examples=["255.255.255.0"])
    status: Literal["up", "down"]


class VirtualInterfaceItem(VirtualInterfaceDetail):
    parent: str = Field(examples=["eth0"])


class VirtualInterfaceListResponse(BaseModel):
    description: Literal["List virtual interfaces"]
    interfaces: list[VirtualInterfaceItem]


class VirtualInterfaceResponse(BaseModel):
    description: str = Field(examples=["Show virtual interface eth0:vip1"])
    interface: VirtualInterfaceDetail


class VirtualInterfaceCreatedParams(BaseModel):
    gateway: str
    ip: str
    mac: str
    name: str
    netmask: str


class VirtualInterfaceCreatedResponse(BaseModel):
    description: Literal["Add a virtual interface"]
    params: VirtualInterfaceCreatedParams


# -- users (reference §1.3) ----------------------------------------------------------------


class UserItem(BaseModel):
    status: Literal["true", "false"]
    user: Literal["root", "zapi"]


class UserListResponse(BaseModel):
    description: Literal["Get users"]
    params: list[UserItem]


class ZapiUserParams(BaseModel):
    key: str = Field(
        description='never the stored key: "********" when a key is set, "" when disabled',
        examples=["********"],
    )
    status: Literal["true", "false"]


class ZapiUserResponse(BaseModel):
    description: Literal["Zapi user configuration."]
    params: ZapiUserParams


class ZapiUserChangedParams(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str | None = Field(
        default=None,
        description="a generated key in clear (shown only here); a key sent by the client "
        'is echoed as "********"',
    )
    status: Literal["enable", "disable"] | None = None
    randomkey: Literal["true", "false"] | None = None


class ZapiUserChangedResponse(BaseModel):
    description: Literal["Setting Zapi user configuration"]
    message: Literal["Settings was changed successfully."]
    params: ZapiUserChangedParams


# -- http/https farms (issue 16; app/schemas/http.py holds the validating models) -------------


class _HttpBody(BaseModel):
    model_config = ConfigDict(extra="allow")


_IntOrDigits = int | str


class ServiceCreateBody(_HttpBody):
    id: str = Field(examples=["api"])


class ServiceUpdateBody(_HttpBody):
    vhost: str | None = Field(default=None, examples=["^www\\.example\\.com$"])
    urlp: str | None = Field(default=None, examples=["^/api/"])
    redirect: str | None = Field(default=None, examples=["https://www.example.com"])
    redirecttype: str | None = Field(default=None, examples=["default", "append"])
    persistence: str | None = Field(default=None, examples=["COOKIE"])
    ttl: _IntOrDigits | None = None
    sessionid: str | None = Field(default=None, examples=["JSESSIONID"])
    leastresp: str | None = Field(default=None, examples=["false"])
    httpsb: str | None = Field(default=None, examples=["false"])


class ServiceBackendBody(_HttpBody):
    ip: str | None = Field(default=None, examples=["198.18.2.1"])
    port: _IntOrDigits | None = Field(default=None, examples=[8080])
    weight: _IntOrDigits | None = None
    timeout: _IntOrDigits | None = None


class FarmCertificateBody(_HttpBody):
    file: str = Field(examples=["web.pem"])


class HttpBackendItem(BaseModel):
    id: int
    ip: str
    port: int
    timeout: int | None
    weight: int
    status: str


class HttpServiceItem(BaseModel):
    id: str
    vhost: str
    urlp: str
    redirect: str
    redirecttype: Literal["default", "append"]
    persistence: str
    ttl: int
    sessionid: str
    leastresp: Literal["true", "false"]
    httpsb: Literal["true", "false"]
    fgenabled: Literal["true", "false"]
    fgtimecheck: int
    fgscript: str
    fglog: Literal["true", "false"]
    backends: list[HttpBackendItem]


class CertificateRef(BaseModel):
    file: str
    id: int = Field(description="1-based; the first certificate is the default one")


class HttpFarmParams(BaseModel):
    """`params` of an http/https farm (zapi31.md §9.1)."""

    status: FarmStatus
    vip: str
    vport: int
    listener: Literal["http", "https"]
    contimeout: int
    restimeout: int
    resurrectime: int
    reqtimeout: int
    rewritelocation: Literal["disabled", "enabled", "enabled-backends"]
    httpverb: str
    error414: str
    error500: str
    error501: str
    error503: str
    certlist: list[CertificateRef] | None = Field(default=None, description="https only")
    ciphers: str | None = Field(default=None, description="https only")
    cipherc: str | None = Field(default=None, description="https only")
    disable_sslv2: Literal["true", "false"] | None = Field(default=None, description="https only")
    disable_sslv3: Literal["true", "false"] | None = Field(default=None, description="https only")
    disable_tlsv1: Literal["true", "false"] | None = Field(default=None, description="https only")
    disable_tlsv1_1: Literal["true", "false"] | None = Field(default=None, description="https only")
    disable_tlsv1_2: Literal["true", "false"] | None = Field(default=None, description="https only")


class HttpFarmResponse(BaseModel):
    """GET /farms/NAME of an http/https farm: its services, each with its backends."""

    description: str
    params: HttpFarmParams
    services: list[HttpServiceItem]


class ServiceName(BaseModel):
    id: str


class HttpFarmSummaryResponse(BaseModel):
    """GET /farms/NAME/summary of an http/https farm: the service names only."""

    description: str
    params: HttpFarmParams
    services: list[ServiceName]


class AnyFarmResponse(RootModel[FarmResponse | HttpFarmResponse]):
    """An l4xnat farm (`backends`) or an http/https farm (`services`)."""


class AnyFarmSummaryResponse(RootModel[FarmResponse | HttpFarmSummaryResponse]):
    """An l4xnat farm (`backends`) or an http/https farm (`services`, names only)."""


class ServiceCreatedResponse(BaseModel):
    description: str
    params: ServiceCreateBody


class ServiceResponse(BaseModel):
    description: str
    params: HttpServiceItem


class ServiceBackendListResponse(BaseModel):
    description: str
    params: list[HttpBackendItem]


class ServiceBackendChangedResponse(BaseModel):
    description: str
    params: dict[str, object]
    message: str
    status: str


class CertificateItem(BaseModel):
    file: str
    type: str
    CN: str
    issuer: str
    creation: str
    expiration: str


class CertificateListResponse(BaseModel):
    description: str
    params: list[CertificateItem]
