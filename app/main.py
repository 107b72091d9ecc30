"""Application factory: wiring only (the parts are built elsewhere and put together here)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from sqlalchemy import Engine

from app import __version__
from app.api import audit as audit_api
from app.api import (
    backends,
    discovery,
    farms,
    fg,
    http_farms,
    interfaces,
    ipds,
    stats,
    system,
    users,
    v40,
)
from app.api import cluster as cluster_api
from app.api.audit import AuditMiddleware
from app.api.concurrency import FarmConcurrency
from app.api.docs import install_openapi
from app.api.errors import install_error_handlers
from app.api.faults import install_fault_handlers
from app.api.gui import GuiMiddleware
from app.api.http import BASE_PATHS
from app.api.limits import BodyGuard
from app.api.metrics import install_metrics
from app.api.middleware import install_gate
from app.api.throttle import AuthThrottle
from app.cluster.metrics import ClusterCollector
from app.cluster.runtime import ClusterAddressBook, ClusterRuntime, node_name, prepare_database
from app.cluster.schema import StartupError
from app.db.session import ensure_sqlite_dir, make_engine, make_session_factory, migrate
from app.haproxy.engine import HaproxyEngine
from app.health import Prober, create_checker
from app.health.checker import POLL_SECONDS, SINGLE_NODE_POLL_SECONDS
from app.health.probes import run_check
from app.metrics import METRICS_PATH, IpdsCollector, Metrics, StateCollector
from app.net.addresses import AddressBook, NetlinkAddressBook, PermissiveAddressBook
from app.net.conntrack import (
    ConnectionCounter,
    Conntrack,
    NetlinkConnectionCounter,
    NetlinkConntrack,
)
from app.net.links import LinkManager, NetlinkLinks
from app.net.neighbours import NeighbourBook, NetlinkNeighbours
from app.nft.adapter import LibNftAdapter, NftAdapter
from app.nft.netlink_elements import ElementWriter
from app.reconcile.observe import Observers
from app.reconcile.reconciler import Reconciler
from app.reconcile.uow import UnitOfWork
from app.services.audit import AuditLog
from app.services.backends import BackendService
from app.services.farmguardian import FarmGuardianService
from app.services.farms import FarmService
from app.services.fg_objects import FgObjectService
from app.services.http_farms import HttpFarmService
from app.services.interfaces import InterfaceService
from app.services.ipds import IpdsService
from app.services.keys import KeyStore, generate_key
from app.services.users import ZapiUserService
from app.settings import Settings
from app.stats.farms import FarmStatsService
from app.stats.system import ProcSystemProbe, SystemProbe

log = logging.getLogger(__name__)

UNAUTHENTICATED_PATHS = ("/openapi.json",)
ROUTERS = (system, cluster_api, farms, backends, http_farms, fg, stats, interfaces, users, ipds)


def create_app(
    settings: Settings,
    *,
    nft: NftAdapter | None = None,
    addresses: AddressBook | None = None,
    conntrack: Conntrack | None = None,
    counter: ConnectionCounter | None = None,
    neighbours: NeighbourBook | None = None,
    prober: Prober | None = None,
    links: LinkManager | None = None,
    system_probe: SystemProbe | None = None,
    haproxy: HaproxyEngine | None = None,
    engine_factory: Callable[[str], Engine] = make_engine,
) -> FastAPI:
    """The app on the real kernel, or on the fakes a test passes (a fake `nft` means no
    kernel: no neighbour table, and no conntrack reads unless a `counter` is given).
    `engine_factory` makes the engine for the database URL (the app disposes of it at
    shutdown); tests pass one whose SQLite engines share a compiled-statement cache."""
    url = settings.database_url
    if settings.cluster and not settings.is_postgres:
        raise StartupError(
            "cluster mode needs a PostgreSQL database shared by the nodes: "
            "KERNLB_DB=postgresql+psycopg://USER:PASSWORD@HOST/DB"
        )
    ensure_sqlite_dir(url)
    engine = engine_factory(url)
    session_factory = make_session_factory(engine)
    adapter = nft if nft is not None else LibNftAdapter()
    if addresses is None:
        addresses = NetlinkAddressBook()
    if not settings.vip_check:
        addresses = PermissiveAddressBook(addresses)
    if settings.cluster:
        addresses = ClusterAddressBook(addresses, interface=settings.cluster_interface)
    if neighbours is None and nft is None:
        neighbours = NetlinkNeighbours()
    # Load is sampled from the real kernel's conntrack, or from a counter a test injects.
    sample_load = counter is not None or nft is None
    counter = counter if counter is not None else NetlinkConnectionCounter()
    reconciler = Reconciler(
        adapter=adapter,
        session_factory=session_factory,
        neighbours=neighbours,
        # Large IPDS list loads go straight through nfnetlink (not for an injected fake).
        elements=ElementWriter() if nft is None else None,
        # conntrackd's commit window (docs/cluster.md): invalid packets dropped, not reset.
        drop_invalid=settings.cluster and bool(settings.cluster_sync_interface),
    )
    uow = UnitOfWork(
        session_factory=session_factory,
        reconciler=reconciler,
        conntrack=conntrack if conntrack is not None else NetlinkConntrack(),
        node_name=node_name(settings),
    )
    cluster = (
        ClusterRuntime(settings, uow=uow, session_factory=session_factory, reconciler=reconciler)
        if settings.is_postgres
        else None
    )
    keys = KeyStore(session_factory, fallback=settings.zapi_key)
    metrics = Metrics()
    checker = create_checker(
        uow,
        plugin_dir=settings.fg_plugin_dir,
        prober=metrics.timed_prober(prober if prober is not None else run_check),
        poll=POLL_SECONDS if settings.is_postgres else SINGLE_NODE_POLL_SECONDS,
    )
    # Farm and backend changes reach the checker at once (only farms it checks, or will).
    uow.farms_committed.append(lambda farms, guarded: checker.wake(farms, guarded=guarded))
    farm_service = FarmService(uow, addresses)
    interface_service = InterfaceService(uow, links if links is not None else NetlinkLinks())
    farm_stats = FarmStatsService(uow, counter)
    observers = Observers(
        reconciler,
        resync_interval=settings.resync_interval,
        load_interval=settings.load_interval,
        counter=counter if sample_load else None,
    )
    metrics.register(StateCollector(farms=farm_stats.farms, reconcile=lambda: reconciler.stats))
    if cluster is not None:
        metrics.register(ClusterCollector(cluster))

    def preflight() -> bool:
        """Cluster start-up checks (`kernlb serve` runs them first, to exit with a clear
        message); False: start without the database."""
        if cluster is None:
            return True
        return prepare_database(
            settings, kernel_has_rules=lambda: adapter.summary() is not None, cluster=cluster
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if cluster is None:
            await asyncio.to_thread(functools.partial(migrate, url, engine=engine))
            db_ready = True
        else:
            db_ready = await asyncio.to_thread(preflight)
        if db_ready:
            await asyncio.to_thread(interface_service.restore)  # VIPs on virtual interfaces
            if settings.zapi_key:
                keys.set(settings.zapi_key)
            elif not keys.configured():
                key = generate_key()
                keys.set(key)
                # Shown once: only its hash is stored.
                print(f"kernlb: generated ZAPI key (shown only once): {key}", flush=True)
        farm_service.helpers = await asyncio.to_thread(adapter.supported_helpers)
        if db_ready:
            await asyncio.to_thread(uow.follower.full_sync)
            await asyncio.to_thread(http_farm_service.sync)  # HAProxy serves the http farms
            if cluster is not None:
                cluster.update_vips()
        observers.start()
        if cluster is not None:
            cluster.start(checker)  # checks run on the node that leads them
        else:
            checker.start()  # after the initial sync: checks begin at once, from the last health
        try:
            yield
        finally:
            if cluster is not None:
                await cluster.stop()
            await checker.stop()
            await observers.stop()
            await asyncio.to_thread(haproxy_engine.close)
            await asyncio.to_thread(audit.close)  # what is queued is stored
            engine.dispose()

    app = FastAPI(
        title="kernlb ZAPI v3.1 and v4.0",
        version=__version__,
        description=(
            "ZAPI v3.1 (/zapi/v3.1/zapi.cgi) and v4.0 (/zapi/v4.0/zapi.cgi) management API of "
            "kernlb, a Linux-kernel (nftables) load balancer."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # ZAPI paths are exact: "/farms/" is an unknown route (a JSON 404), never a redirect.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.reconciler = reconciler
    app.state.cluster = cluster
    app.state.preflight = preflight
    app.state.keys = keys
    app.state.farms = farm_service
    # With a fake kernel (tests) HAProxy checks configurations but never runs.
    haproxy_engine = haproxy or HaproxyEngine(
        state_dir=settings.state_dir, run_dir=settings.haproxy_run_dir, dry_run=nft is not None
    )
    http_farm_service = HttpFarmService(
        uow, haproxy_engine, addresses, plugin_dir=settings.fg_plugin_dir
    )
    app.state.http_farms = http_farm_service
    if cluster is not None:
        # HAProxy follows the database like the kernel: after this node applied other nodes'
        # revisions, and after its own writes (which first caught up with the database).
        # Under the writers' lock, so a write's newer state is never overtaken by an older read.
        def follow_http_farms() -> None:
            try:
                with reconciler.lock:
                    http_farm_service.sync()
            except Exception:
                log.exception("cluster: could not apply the http farms to HAProxy")

        uow.follower.after_sync.append(follow_http_farms)
        uow.after_commit.append(follow_http_farms)
    app.state.backends = BackendService(uow, farm_service)
    app.state.checker = checker
    app.state.interfaces = interface_service
    app.state.farm_stats = farm_stats
    app.state.system = system_probe if system_probe is not None else ProcSystemProbe()
    app.state.users = ZapiUserService(keys)
    app.state.metrics = metrics
    metrics.register(StateCollector(farms=farm_stats.farms, reconcile=lambda: reconciler.stats))
    ipds_service = IpdsService(uow, adapter.counters)
    app.state.ipds = ipds_service
    metrics.register(IpdsCollector(ipds_service.all_drop_counters))
    app.state.farmguardian = FarmGuardianService(
        uow, plugin_dir=settings.fg_plugin_dir, on_change=checker.wake
    )
    app.state.fg_objects = FgObjectService(
        uow,
        plugin_dir=settings.fg_plugin_dir,
        unreachable=farm_service.unreachable,
        on_change=checker.wake,
    )

    for index, base in enumerate(BASE_PATHS):
        for module in (*ROUTERS, audit_api):
            # The v3 alias answers the same routes but is left out of the OpenAPI document.
            app.include_router(module.router, prefix=base, include_in_schema=index == 0)
        app.include_router(discovery.router31, prefix=base, include_in_schema=index == 0)
    v40.install(app)  # /zapi/v4.0/zapi.cgi, over the same services
    install_openapi(app)
    # Inside authentication (added first): unauthenticated bodies are never read.
    app.add_middleware(BodyGuard, limit=settings.body_limit, timeout=settings.client_timeout)
    app.add_middleware(FarmConcurrency, session_factory=session_factory)  # ETag / If-Match
    audit = AuditLog(
        session_factory,
        max_entries=settings.audit_max_entries,
        max_age_days=settings.audit_max_age_days,
    )
    app.state.audit = audit
    app.add_middleware(AuditMiddleware, audit=audit)  # sees 412/413/400 answers too
    throttle = AuthThrottle(failures=settings.auth_failures, window=settings.auth_window)
    app.state.throttle = throttle
    public_paths = UNAUTHENTICATED_PATHS + ((METRICS_PATH,) if settings.metrics_public else ())
    install_gate(app, keys=keys, public_paths=public_paths, throttle=throttle, metrics=metrics)
    install_metrics(app, metrics)  # after the gate: outermost, so refused requests count too
    install_error_handlers(app)
    install_fault_handlers(app)
    # Added last, so outermost: the GUI's public files are answered before the ZAPI key gate.
    app.add_middleware(GuiMiddleware)
    return app
