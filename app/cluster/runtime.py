"""Wiring of a node: following the database, keepalived's VIPs, conntrackd, the health leader."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from app.cluster import conntrackd, keepalived
from app.cluster.keepalived import ConfigError, FloatingAddress, VrrpNode
from app.cluster.node import ClusterNode
from app.cluster.schema import StartupError, code_head
from app.health.checker import HealthChecker
from app.net.addresses import AddressBook
from app.reconcile.reconciler import Reconciler
from app.reconcile.uow import UnitOfWork
from app.settings import Settings

log = logging.getLogger(__name__)


def find_program(name: str) -> str | None:
    """A daemon's path: PATH first, then the sbin directories Debian installs them in."""
    found = shutil.which(name)
    if found is None and "/" not in name:
        found = shutil.which(name, path="/usr/sbin:/sbin")
    return found


def node_name(settings: Settings) -> str:
    return settings.node_name or socket.gethostname()


class ClusterAddressBook:
    """A VIP need not be on this node yet: keepalived puts it on the master only."""

    def __init__(self, local: AddressBook, *, interface: str) -> None:
        self.local = local
        self.interface = interface

    def interface_of(self, ip: str) -> str | None:
        return self.local.interface_of(ip) or self.interface

    def on_link(self, ip: str, device: str) -> bool:
        return self.local.on_link(ip, device)


class ClusterRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        uow: UnitOfWork,
        session_factory: Callable[[], Session],
        reconciler: Reconciler,
    ) -> None:
        self.settings = settings
        self.name = node_name(settings)
        self.uow = uow
        self.reconciler = reconciler
        self.vrrp = settings.cluster
        state = settings.state_dir
        self.keepalived_conf = settings.keepalived_conf or state / "keepalived.conf"
        self.keepalived_pidfile = settings.keepalived_pidfile or state / "keepalived.pid"
        self.conntrackd_conf: Path | None = None
        self.notify_script = state / "kernlb-notify.sh"
        self.alive_script = state / "kernlb-alive.sh"
        self.pidfile = state / "kernlb.pid"
        self.state_file = state / "vrrp_state"
        self.sync_link: conntrackd.SyncLink | None = None
        if settings.cluster_sync_interface:
            self.conntrackd_conf = settings.conntrackd_conf or state / "conntrackd.conf"
            own = [a.strip() for a in settings.cluster_own_addresses.split(",") if a.strip()]
            if settings.cluster_address:
                own.append(settings.cluster_address)
            self.sync_link = conntrackd.SyncLink(
                interface=settings.cluster_sync_interface,
                address=settings.cluster_sync_address,
                peer=settings.cluster_sync_peer,
                own_addresses=tuple(own),
                state_dir=state,
            )
        peers = tuple(p.strip() for p in settings.cluster_unicast_peers.split(",") if p.strip())
        try:
            extra = tuple(
                FloatingAddress.parse(a)
                for a in settings.cluster_extra_vips.split(",")
                if a.strip()
            )
        except ConfigError as exc:
            raise StartupError(f"cluster: {exc}") from None
        self.vrrp_node = VrrpNode(
            name=self.name,
            priority=settings.cluster_priority,
            interface=settings.cluster_interface,
            router_id=settings.cluster_router_id,
            advert=settings.cluster_advert,
            auth=settings.cluster_auth,
            unicast_source=settings.cluster_address if peers else "",
            unicast_peers=peers,
            extra=extra,
            notify_script=str(self.notify_script),
            alive_script=str(self.alive_script),
        )
        self.node = ClusterNode(
            name=self.name,
            url=settings.database_url,
            follower=uow.follower,
            session_factory=session_factory,
            schema_revision=lambda: code_head(settings.database_url),
            address=settings.cluster_address,
            vrrp_state=self.vrrp_state,
            interval=settings.db_retry_interval,
        )
        self.keepalived_reloads = 0
        self.conntrackd_path = find_program(settings.conntrackd_bin)
        self._vips: frozenset[tuple[str, str]] | None = None
        self._leader_task: asyncio.Task[None] | None = None

    # -- start-up --------------------------------------------------------------------------

    def preflight(self) -> None:
        """Everything that would make a cluster node misbehave later, named now."""
        if not self.vrrp:
            return
        if find_program(self.settings.keepalived_bin) is None:
            raise StartupError(
                f"cluster mode needs keepalived (VRRP moves the VIPs), and "
                f"{self.settings.keepalived_bin!r} is not installed: apt-get install keepalived"
            )
        if self.sync_link is not None and self.conntrackd_path is None:
            raise StartupError(
                "cluster mode with a sync link needs conntrackd (connections survive failover), "
                f"and {self.settings.conntrackd_bin!r} is not installed: "
                "apt-get install conntrackd"
            )
        if self.sync_link is None:
            log.warning(
                "cluster: no sync link (KERNLB_CLUSTER_SYNC_INTERFACE): connections will not "
                "survive a failover"
            )
        try:
            keepalived.render(self.vrrp_node, [])
            if self.sync_link is not None:
                conntrackd.render(self.sync_link)
        except ConfigError as exc:
            raise StartupError(f"cluster: {exc}") from None
        if self.settings.cluster_address:
            try:
                ipaddress.ip_address(self.settings.cluster_address)
            except ValueError:
                raise StartupError(
                    f"cluster: KERNLB_CLUSTER_ADDRESS {self.settings.cluster_address!r} "
                    "is not an IP address"
                ) from None
        self.write_static_files()

    def write_static_files(self) -> None:
        if self.sync_link is not None and self.conntrackd_conf is not None:
            keepalived.write_if_changed(self.conntrackd_conf, conntrackd.render(self.sync_link))
        keepalived.write_if_changed(
            self.notify_script,
            conntrackd.render_notify_script(
                state_file=self.state_file,
                conntrackd_conf=self.conntrackd_conf,
                conntrackd=self.conntrackd_path or "/usr/sbin/conntrackd",
            ),
            mode=0o755,
        )
        keepalived.write_if_changed(
            self.alive_script, conntrackd.render_alive_script(pidfile=self.pidfile), mode=0o755
        )
        # What the alive check looks at: this process.
        keepalived.write_if_changed(self.pidfile, f"{os.getpid()}\n")

    # -- keepalived ------------------------------------------------------------------------

    def vips(self) -> frozenset[tuple[str, str]]:
        default = self.settings.cluster_interface
        return frozenset(
            (spec.vip, (spec.device or default).split(":", 1)[0] or default)
            for spec in self.reconciler.specs().values()
        )

    def update_vips(self) -> None:
        """Re-render keepalived.conf when the set of VIPs changed; reload keepalived then.

        Only ever called after a sync from the database: an empty set before the first sync
        would make keepalived drop every VIP."""
        if not self.vrrp:
            return
        vips = self.vips()
        if vips == self._vips:
            return
        changed = keepalived.write_if_changed(
            self.keepalived_conf, keepalived.render(self.vrrp_node, sorted(vips))
        )
        self._vips = vips
        if changed and keepalived.reload(self.keepalived_pidfile):
            self.keepalived_reloads += 1
            log.info("cluster: VIPs changed (%d); keepalived reloaded", len(vips))

    def vrrp_state(self) -> str:
        if not self.vrrp:
            return ""
        try:
            return self.state_file.read_text().strip()[:16]
        except FileNotFoundError:
            return "unknown"

    # -- running ---------------------------------------------------------------------------

    def start(self, checker: HealthChecker) -> None:
        self.uow.follower.after_sync.append(self.update_vips)
        self.uow.after_commit.append(self.update_vips)
        self.node.start()
        self._leader_task = asyncio.create_task(
            self.node.lead_health_checks(start=checker.start, stop=checker.stop),
            name="health-leader",
        )

    async def stop(self) -> None:
        task, self._leader_task = self._leader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.node.stop)


def prepare_database(
    settings: Settings, *, kernel_has_rules: Callable[[], bool], cluster: ClusterRuntime | None
) -> bool:
    """Check and migrate the shared database; False: start without it (the kernel keeps its
    rules, writes get 503, the node catches up when the database answers)."""
    from app.cluster.node import redacted
    from app.cluster.schema import check_reachable, migrate_checked

    url = settings.database_url
    if settings.cluster and not settings.is_postgres:
        raise StartupError(
            "cluster mode needs a PostgreSQL database shared by the nodes: "
            "KERNLB_DB=postgresql+psycopg://USER:PASSWORD@HOST/DB"
        )
    if cluster is not None:
        cluster.preflight()
    problem = check_reachable(url)
    if problem is None:
        migrate_checked(url)
        return True
    if kernel_has_rules():
        log.error(
            "cannot reach the database %s (%s): starting with the rules the kernel holds; "
            "writes get 503 until the database answers, then this node catches up",
            redacted(url),
            problem,
        )
        return False
    raise StartupError(f"cannot reach the database {redacted(url)}: {problem}")
