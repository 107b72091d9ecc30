"""One Settings object, built once at start-up (CLI flags over KERNLB_* environment)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path("/var/lib/kernlb")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KERNLB_", extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(default=444, ge=1, le=65535)
    state_dir: Path = DEFAULT_STATE_DIR
    db: str = ""  # SQLAlchemy URL; default: sqlite under state_dir
    zapi_key: str = ""  # set (and store hashed) at start-up when given
    tls: bool = True
    cert: Path | None = None
    cert_key: Path | None = None
    resync_interval: float = Field(default=30.0, ge=0)  # seconds; 0 disables the timer
    load_interval: float = Field(default=2.0, ge=0)  # leastconn/max_conns load refresh; 0: off
    vip_check: bool = True  # the VIP must be an address of this host (namespace)
    ip_forward: bool = True  # enable net.ipv4.ip_forward / ipv6 forwarding at start-up
    log_level: str = "info"
    metrics_public: bool = False  # serve GET /metrics without the ZAPI key
    body_limit: int = Field(default=1024 * 1024, ge=1024)  # bytes of a request body (413 over)
    client_timeout: float = Field(default=10.0, gt=0)  # seconds to send headers, and a body
    auth_failures: int = Field(default=10, ge=0)  # wrong keys per source and window; 0: off
    auth_window: float = Field(default=60.0, gt=0)  # seconds
    audit_max_entries: int = Field(default=100_000, ge=1)  # audit log: newest kept
    audit_max_age_days: float = Field(default=90.0, gt=0)  # audit log: older entries dropped
    fg_plugin_dir: Path = Path("/usr/lib/nagios/plugins")  # farmguardian's Nagios plugins
    # HAProxy's Unix sockets (http farms); default STATE_DIR/haproxy/run, or /tmp if too long
    haproxy_run_dir: Path | None = None
    # Cluster (docs/cluster.md): several nodes share one PostgreSQL database.
    node_name: str = ""  # default: the host name
    cluster: bool = False  # VIPs by keepalived (VRRP), connections by conntrackd
    cluster_interface: str = ""  # default interface of the farms' VIPs (VRRP instance)
    cluster_address: str = ""  # this node's address on the VRRP segment (shown, unicast source)
    cluster_priority: int = Field(default=100, ge=1, le=254)  # VRRP priority of this node
    cluster_router_id: int = Field(default=51, ge=1, le=255)  # first virtual_router_id
    cluster_auth: str = ""  # VRRP authentication (PASS, <= 8 characters); "" = none
    cluster_unicast_peers: str = ""  # comma-separated peer addresses; "" = multicast
    cluster_advert: float = Field(default=1.0, ge=0.01, le=255)  # VRRP advert interval (s)
    cluster_extra_vips: str = ""  # "IP/LEN@DEV,...": also float these (e.g. backend gateway)
    cluster_sync_interface: str = ""  # conntrackd's dedicated link
    cluster_sync_address: str = ""  # this node's address on the sync link
    cluster_sync_peer: str = ""  # the peer's address on the sync link
    cluster_own_addresses: str = ""  # addresses conntrackd ignores (this node's, not VIPs)
    keepalived_conf: Path | None = None  # default: state_dir/keepalived.conf
    keepalived_pidfile: Path | None = None  # reload = SIGHUP to this PID; default state_dir
    conntrackd_conf: Path | None = None  # default: state_dir/conntrackd.conf
    keepalived_bin: str = "keepalived"  # looked up in PATH, then /usr/sbin
    conntrackd_bin: str = "conntrackd"
    db_retry_interval: float = Field(default=1.0, gt=0)  # catch-up check / reconnect (s)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{self.state_dir / 'kernlb.db'}"
