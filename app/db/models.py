"""SQLAlchemy models.  Configuration and health live in separate tables: health checks
write `backend_health` only, so configuration endpoints can never lose health state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Farm(Base):
    __tablename__ = "farm"
    # AUTOINCREMENT: ids name kernel objects (chains, slot offsets); never reuse one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    profile: Mapped[str] = mapped_column(String(16), default="l4xnat")
    vip: Mapped[str] = mapped_column(String(64), index=True)  # canonical text
    vport: Mapped[str] = mapped_column(String(1024))  # canonical multiport text, "*" = all
    protocol: Mapped[str] = mapped_column(String(16), default="tcp")
    algorithm: Mapped[str] = mapped_column(String(32), default="weight")
    nattype: Mapped[str] = mapped_column(String(32), default="nat")
    persistence: Mapped[str] = mapped_column(String(32), default="")
    ttl: Mapped[int] = mapped_column(Integer, default=60)
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    source_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    interface: Mapped[str | None] = mapped_column(String(64), nullable=True)  # holds the VIP
    fg_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    fg_timecheck: Mapped[int] = mapped_column(Integer, default=5)
    fg_script: Mapped[str] = mapped_column(String(1024), default="")
    fg_log: Mapped[bool] = mapped_column(Boolean, default=False)
    # Extensions beyond v3.1 (PUT /farms/NAME/fg): 0 = the probe timeout is fg_timecheck;
    # rise/fall = consecutive passing/failing rounds that flip a backend (Zevenet: 1/1);
    # cut_conns = cut a backend's connections when health checks take it out of rotation.
    fg_timeout: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fg_rise: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    fg_fall: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    fg_cut_conns: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The named farmguardian (ZAPI 4.0 `/monitoring/fg`) linked to this farm, if any.  Linking
    # copies its settings into the fg_* columns above, which is what the health checker reads.
    fg_name: Mapped[str | None] = mapped_column(String(255), nullable=True)

    backends: Mapped[list[Backend]] = relationship(
        back_populates="farm",
        cascade="all, delete-orphan",
        order_by="Backend.zapi_id",
        lazy="selectin",
    )


class Backend(Base):
    __tablename__ = "backend"
    __table_args__ = (
        UniqueConstraint("farm_id", "zapi_id"),
        {"sqlite_autoincrement": True},
    )

    # The id is the backend's conntrack mark: stable for its lifetime, never reused.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    farm_id: Mapped[int] = mapped_column(ForeignKey("farm.id", ondelete="CASCADE"), index=True)
    zapi_id: Mapped[int] = mapped_column(Integer)
    ip: Mapped[str] = mapped_column(String(64))
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    max_conns: Mapped[int] = mapped_column(Integer, default=0)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_mode: Mapped[str] = mapped_column(String(8), default="")
    source_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)

    farm: Mapped[Farm] = relationship(back_populates="backends")
    health: Mapped[BackendHealth | None] = relationship(
        cascade="all, delete-orphan", lazy="selectin", uselist=False
    )


class BackendHealth(Base):
    __tablename__ = "backend_health"

    backend_id: Mapped[int] = mapped_column(
        ForeignKey("backend.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(8), default="up")  # "up" | "down"
    changed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reason: Mapped[str] = mapped_column(String(255), default="")


class Setting(Base):
    """Small key/value store (the API key hash lives here)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1024))


class VirtualInterface(Base):
    """A virtual interface (`eth0:vip1`): an address carrying that label on its parent link.

    The database is the source of truth; start-up puts missing addresses back on their links."""

    __tablename__ = "virtual_interface"

    name: Mapped[str] = mapped_column(String(15), primary_key=True)  # IFNAMSIZ - 1
    parent: Mapped[str] = mapped_column(String(15))
    ip: Mapped[str] = mapped_column(String(64), unique=True)  # canonical text
    prefixlen: Mapped[int] = mapped_column(Integer)
    # False after `POST .../actions {"action":"down"}`: the address is off the link and start-up
    # leaves it off.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class FarmGuardian(Base):
    """A named farmguardian (ZAPI 4.0 `/monitoring/fg`): a template copied on first write, a
    user-made check, or the `_default_FARM` object v3.1's PUT /farms/NAME/fg maintains."""

    __tablename__ = "farmguardian"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    command: Mapped[str] = mapped_column(String(1024), default="")
    interval: Mapped[int] = mapped_column(Integer, default=10)
    timeout: Mapped[int] = mapped_column(Integer, default=10)
    log: Mapped[bool] = mapped_column(Boolean, default=False)
    cut_conns: Mapped[bool] = mapped_column(Boolean, default=False)
    backend_alias: Mapped[bool] = mapped_column(Boolean, default=False)
    template: Mapped[bool] = mapped_column(Boolean, default=False)


class IpdsList(Base):
    """An IPDS list (Zevenet's blacklists): `deny` drops its sources, `allow` admits only them."""

    __tablename__ = "ipds_list"
    # AUTOINCREMENT: ids name kernel sets and counters; never reuse one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(16), default="local")
    policy: Mapped[str] = mapped_column(String(8), default="deny")  # "deny" | "allow"


class IpdsSource(Base):
    """One address or CIDR of a list (canonical text; overlapping sources are allowed)."""

    __tablename__ = "ipds_source"
    __table_args__ = (
        UniqueConstraint("list_id", "zapi_id"),
        UniqueConstraint("list_id", "source", name="uq_ipds_source_list_id_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("ipds_list.id", ondelete="CASCADE"))
    zapi_id: Mapped[int] = mapped_column(Integer)  # the id clients see, stable per list
    source: Mapped[str] = mapped_column(String(64))  # canonical text
    family: Mapped[int] = mapped_column(Integer)


class IpdsDos(Base):
    """A DoS rule (Zevenet's `/ipds/dos`): one of the farm rules with its parameters."""

    __tablename__ = "ipds_dos"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    rule: Mapped[str] = mapped_column(String(32))
    limit: Mapped[int] = mapped_column(Integer, default=0)
    limit_burst: Mapped[int] = mapped_column(Integer, default=0)
    limit_conns: Mapped[int] = mapped_column(Integer, default=0)
    # Extensions: per-source meter size, and the aggregate limit of sources a full meter
    # cannot track (0 = ten times the per-source limit).
    meter_size: Mapped[int] = mapped_column(Integer, default=65536)
    overflow_limit: Mapped[int] = mapped_column(Integer, default=0)
    overflow_burst: Mapped[int] = mapped_column(Integer, default=0)


class IpdsFarmList(Base):
    __tablename__ = "ipds_farm_list"

    farm_id: Mapped[int] = mapped_column(
        ForeignKey("farm.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("ipds_list.id", ondelete="CASCADE"), primary_key=True
    )


class IpdsFarmDos(Base):
    __tablename__ = "ipds_farm_dos"

    farm_id: Mapped[int] = mapped_column(
        ForeignKey("farm.id", ondelete="CASCADE"), primary_key=True
    )
    dos_id: Mapped[int] = mapped_column(
        ForeignKey("ipds_dos.id", ondelete="CASCADE"), primary_key=True
    )


class AuditEntry(Base):
    """One write request: who (source address), what (method, path, redacted body), when,
    with which result; bounded by age and count (app/services/audit.py)."""

    __tablename__ = "audit"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)  # UTC
    source: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1024))
    body: Mapped[str] = mapped_column(String(4200), default="")  # redacted, truncated
    status: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    farms: Mapped[str] = mapped_column(String(1024), default="")  # comma-separated names


# -- http/https farms (issue 16): served by HAProxy, rendered from these tables ----------------


class HttpFarm(Base):
    """An http or https farm (`profile: http`); HAProxy serves it (app/haproxy)."""

    __tablename__ = "http_farm"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vip: Mapped[str] = mapped_column(String(64), index=True)
    vport: Mapped[int] = mapped_column(Integer)
    listener: Mapped[str] = mapped_column(String(8), default="http")  # "http" | "https"
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    interface: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contimeout: Mapped[int] = mapped_column(Integer, default=20)
    restimeout: Mapped[int] = mapped_column(Integer, default=45)
    resurrectime: Mapped[int] = mapped_column(Integer, default=10)
    reqtimeout: Mapped[int] = mapped_column(Integer, default=30)
    rewritelocation: Mapped[str] = mapped_column(String(32), default="disabled")
    httpverb: Mapped[str] = mapped_column(String(32), default="standardHTTP")
    error414: Mapped[str] = mapped_column(String(4096), default="")
    error500: Mapped[str] = mapped_column(String(4096), default="")
    error501: Mapped[str] = mapped_column(String(4096), default="")
    error503: Mapped[str] = mapped_column(String(4096), default="")
    ciphers: Mapped[str] = mapped_column(String(32), default="all")
    cipherc: Mapped[str] = mapped_column(String(1024), default="")
    disable_sslv2: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_sslv3: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_tlsv1: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_tlsv1_1: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_tlsv1_2: Mapped[bool] = mapped_column(Boolean, default=False)

    services: Mapped[list[HttpService]] = relationship(
        back_populates="farm",
        cascade="all, delete-orphan",
        order_by="HttpService.position",
        lazy="selectin",
    )
    certificates: Mapped[list[HttpFarmCertificate]] = relationship(
        cascade="all, delete-orphan", order_by="HttpFarmCertificate.position", lazy="selectin"
    )


class HttpService(Base):
    """A service of an http farm: requests matching vhost and urlp go to its backends."""

    __tablename__ = "http_service"
    __table_args__ = (UniqueConstraint("farm_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # names the HAProxy backend
    farm_id: Mapped[int] = mapped_column(ForeignKey("http_farm.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)  # first matching service wins
    vhost: Mapped[str] = mapped_column(String(1024), default="")
    urlp: Mapped[str] = mapped_column(String(1024), default="")
    redirect: Mapped[str] = mapped_column(String(2048), default="")
    redirecttype: Mapped[str] = mapped_column(String(16), default="default")
    persistence: Mapped[str] = mapped_column(String(16), default="")
    ttl: Mapped[int] = mapped_column(Integer, default=120)
    sessionid: Mapped[str] = mapped_column(String(255), default="")
    leastresp: Mapped[bool] = mapped_column(Boolean, default=False)
    httpsb: Mapped[bool] = mapped_column(Boolean, default=False)
    # Per-service farmguardian (PUT /farms/NAME/fg with `service`), rendered as HAProxy health
    # checks. The values stay when it is disabled (Zevenet's `_default_NAME_SVC` object).
    fg_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fg_timecheck: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    fg_script: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    fg_log: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fg_timeout: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fg_rise: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    fg_fall: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Zevenet's http farmguardians cut the connections of a backend they take down.
    fg_cut_conns: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    farm: Mapped[HttpFarm] = relationship(back_populates="services")
    backends: Mapped[list[HttpBackend]] = relationship(
        back_populates="service",
        cascade="all, delete-orphan",
        order_by="HttpBackend.position",
        lazy="selectin",
    )


class HttpBackend(Base):
    """A backend of a service.  ZAPI ids are positional (they shift on delete, as in the
    original); `id` is stable and names the HAProxy server, so edits never rename it."""

    __tablename__ = "http_backend"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("http_service.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    ip: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    timeout: Mapped[int | None] = mapped_column(Integer, nullable=True)
    maintenance: Mapped[str] = mapped_column(String(8), default="")  # "" | "drain" | "cut"

    service: Mapped[HttpService] = relationship(back_populates="backends")


class Certificate(Base):
    """An uploaded PEM (certificate chain and private key) for https farms."""

    __tablename__ = "certificate"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # "web.pem"
    pem: Mapped[str] = mapped_column(String(65536))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class HttpFarmCertificate(Base):
    """An https farm's certificate list (SNI); the first one is the default."""

    __tablename__ = "http_farm_certificate"

    farm_id: Mapped[int] = mapped_column(
        ForeignKey("http_farm.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    cert_name: Mapped[str] = mapped_column(ForeignKey("certificate.name"), index=True)


class ConfigRevision(Base):
    """One row: the revision of the configuration, bumped by every write that changes farms.

    Each node records the revision its kernel reflects (`ClusterNode.revision`); the
    difference is the node's lag."""

    __tablename__ = "config_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    changed_by: Mapped[str] = mapped_column(String(255), default="")


class ClusterNode(Base):
    """A kernlb node sharing this database: what it applied and what it reports."""

    __tablename__ = "cluster_node"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    revision: Mapped[int] = mapped_column(BigInteger, default=0)  # applied to its kernel
    applied_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # heartbeat
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    vrrp_state: Mapped[str] = mapped_column(String(16), default="")
    health_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    schema_revision: Mapped[str] = mapped_column(String(32), default="")
    version: Mapped[str] = mapped_column(String(32), default="")
