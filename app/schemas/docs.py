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


# -- farmguardian ---------------------------------------------------------------------------

TrueFalse = Literal["true", "false"]


class FarmGuardianUpdate(BaseModel):
    """Any subset; unknown keys are refused (`Illegal params: ...`)."""

    model_config = ConfigDict(extra="forbid")

    fgenabled: TrueFalse | None = None
    fglog: Literal["true", "false", ""] | None = Field(
        default=None, description='"" (sent by the Go client when unset) leaves the flag as it is'
    )
    fgscript: str | None = Field(default=None, examples=["check_tcp -H HOST -p PORT"])
    fgtimecheck: IntOrDigits | None = Field(default=None, description="seconds between rounds")
    service: Literal[""] | None = Field(default=None, description="l4xnat farms have none")
    fgtimeout: IntOrDigits | None = Field(
        default=None, description="kernlb extension: seconds per probe; 0 = fgtimecheck"
    )
    fgrise: IntOrDigits | None = Field(
        default=None, description="kernlb extension: passing rounds that bring a backend up"
    )
    fgfall: IntOrDigits | None = Field(
        default=None, description="kernlb extension: failing rounds that take a backend down"
    )
    fgcutconns: TrueFalse | None = Field(
        default=None, description="kernlb extension: cut the connections of a backend taken down"
    )


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


class VirtualInterfaceCreate(_Model):
    name: str = Field(
        description="PARENT:TAG, at most 15 characters; PARENT is a link of the host",
        max_length=15,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*(\.[0-9]{1,4})?:[a-zA-Z0-9]+$",
        examples=["eth0:vip1"],
    )
    ip: str = Field(
        description="an IPv4 address in a network of the parent", examples=["198.18.1.200"]
    )


class VirtualInterfaceCreateNamed(_Model):
    ip: str = Field(
        description="an IPv4 address in a network of the parent", examples=["198.18.1.200"]
    )
    name: str | None = Field(default=None, description="if given, the name in the path")


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


class ZapiUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(
        default=None, pattern=r"^[a-zA-Z0-9]+$", description="set this key", examples=["s3cr3tKey"]
    )
    status: Literal["enable", "disable"] | None = Field(
        default=None,
        description="disable: no key is accepted any more (until a key is set again); "
        "enable with no key set generates one",
    )
    randomkey: Literal["true", "false"] | None = Field(
        default=None,
        description="kernlb extension: generate a key and return it once in params.key",
    )


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
