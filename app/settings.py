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

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{self.state_dir / 'kernlb.db'}"
