"""Application factory: routers, ZAPI error handling, authentication, start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.api import backends, discovery, farms, fg, interfaces, ipds, stats, system, users, v40
from app.api.docs import install_openapi
from app.api.gui import GuiMiddleware
from app.api.http import BASE_PATHS, ZapiResponse, zapi_path
from app.api.metrics import install_metrics
from app.db.session import ensure_sqlite_dir, make_engine, make_session_factory, migrate
from app.errors import Unauthorized, ZapiError
from app.health import Prober, create_checker
from app.health.probes import run_check
from app.metrics import METRICS_PATH, IpdsCollector, Metrics, StateCollector
from app.net.addresses import AddressBook, NetlinkAddressBook, StaticAddressBook
from app.net.conntrack import Conntrack, NetlinkConntrack
from app.net.links import LinkManager, NetlinkLinks
from app.net.neighbours import NeighbourBook, NetlinkNeighbours
from app.nft.adapter import LibNftAdapter, NftAdapter
from app.reconcile.reconciler import Reconciler
from app.services.backends import BackendService
from app.services.farmguardian import FarmGuardianService
from app.services.farms import FarmService
from app.services.fg_objects import FgObjectService
from app.services.interfaces import InterfaceService
from app.services.ipds import IpdsService
from app.services.keys import KeyStore, generate_key
from app.services.uow import UnitOfWork
from app.services.users import ZapiUserService
from app.settings import Settings
from app.stats.conntrack import ConnectionCounter, NetlinkConnectionCounter
from app.stats.farms import FarmStatsService
from app.stats.load import follow_load
from app.stats.system import ProcSystemProbe, SystemProbe

log = logging.getLogger(__name__)

UNAUTHENTICATED_PATHS = ("/openapi.json",)
NO_CACHE_HEADERS = {
    "Cache-Control": "no-cache",
    "Pragma": "no-cache",
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "Access-Control-Allow-Credentials": "true",
}
CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "ZAPI_KEY, Authorization, Set-cookie, Content-Type, X-Requested-With"
    ),
}


def _presented_key(request: Request) -> str | None:
    # Starlette keeps header names as sent (lower-cased), underscores included: Go sends
    # "Zapi_key", zcli "ZAPI-KEY".
    return request.headers.get("zapi_key") or request.headers.get("zapi-key")


def _not_found(path: str) -> ZapiResponse:
    return ZapiResponse(
        {
            "description": "Request not found",
            "error": "true",
            "message": f"Request not found: {zapi_path(path)}",
        },
        404,
    )


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
) -> FastAPI:
    url = settings.database_url
    ensure_sqlite_dir(url)
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    adapter = nft if nft is not None else LibNftAdapter()
    if addresses is None:
        addresses = (
            NetlinkAddressBook() if settings.vip_check else StaticAddressBook(any_address="")
        )
    if neighbours is None and nft is None:
        # Only with the real kernel: a fake adapter means no kernel, so no neighbour table.
        neighbours = NetlinkNeighbours()
    reconciler = Reconciler(adapter=adapter, session_factory=session_factory, neighbours=neighbours)
    uow = UnitOfWork(
        session_factory=session_factory,
        reconciler=reconciler,
        conntrack=conntrack if conntrack is not None else NetlinkConntrack(),
    )
    keys = KeyStore(session_factory)
    metrics = Metrics()
    checker = create_checker(
        uow,
        plugin_dir=settings.fg_plugin_dir,
        prober=metrics.timed_prober(prober if prober is not None else run_check),
    )
    interface_service = InterfaceService(uow, links if links is not None else NetlinkLinks())
    farm_stats = FarmStatsService(
        uow, counter if counter is not None else NetlinkConnectionCounter()
    )
    public_paths = UNAUTHENTICATED_PATHS + ((METRICS_PATH,) if settings.metrics_public else ())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate, url)
        await asyncio.to_thread(interface_service.restore)  # VIPs on virtual interfaces
        if settings.zapi_key:
            keys.set(settings.zapi_key)
        elif not keys.configured():
            key = generate_key()
            keys.set(key)
            # Shown once: only its hash is stored.
            print(f"kernlb: generated ZAPI key (shown only once): {key}", flush=True)
        farm_service.helpers = await asyncio.to_thread(adapter.supported_helpers)
        await asyncio.to_thread(reconciler.full_sync)
        tasks: list[asyncio.Task[None]] = []
        if settings.resync_interval > 0:
            tasks.append(asyncio.create_task(_resync_forever(reconciler, settings.resync_interval)))
        # Conntrack is read only with the real kernel (or an injected counter).
        if settings.load_interval > 0 and (counter is not None or nft is None):
            load_counter = counter if counter is not None else NetlinkConnectionCounter()
            tasks.append(
                asyncio.create_task(follow_load(reconciler, load_counter, settings.load_interval))
            )
        checker.start()  # after the initial sync: checks begin at once, from the last known health
        try:
            yield
        finally:
            await checker.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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
    app.state.keys = keys
    farm_service = FarmService(uow, addresses)
    app.state.farms = farm_service
    app.state.backends = BackendService(uow, farm_service)
    app.state.checker = checker
    uow.after_commit.append(checker.wake)  # farm/backend changes reach the checker at once
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
        for module in (system, farms, backends, fg, stats, interfaces, users, ipds):
            # The v3 alias answers the same routes but is left out of the OpenAPI document.
            app.include_router(module.router, prefix=base, include_in_schema=index == 0)
        app.include_router(discovery.router31, prefix=base, include_in_schema=index == 0)
    v40.install(app)  # /zapi/v4.0/zapi.cgi, over the same services

    install_openapi(app)

    @app.middleware("http")
    async def zapi_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        head = request.method == "HEAD"
        if head:  # answered like GET, without the body (reference §3.1)
            request.scope["method"] = "GET"
        if request.method == "OPTIONS":
            response: Response = ZapiResponse({}, 200, headers=CORS_PREFLIGHT_HEADERS)
        elif request.url.path in public_paths or keys_ok(request):
            response = await call_next(request)
            if head:
                body_iterator = getattr(response, "body_iterator", None)
                if body_iterator is not None:
                    async for _chunk in body_iterator:
                        pass
                response = Response(status_code=response.status_code, headers=response.headers)
        else:
            response = ZapiResponse(Unauthorized().body(), 401)
        response.headers.update(NO_CACHE_HEADERS)
        # Reference §1.5: "*" when a key header was sent at all (even an empty one).
        sent_key = "zapi_key" in request.headers or "zapi-key" in request.headers
        response.headers["Access-Control-Allow-Origin"] = (
            "*" if sent_key else f"https://{request.headers.get('host', '')}/"
        )
        return response

    def keys_ok(request: Request) -> bool:
        return keys.verify(_presented_key(request))

    install_metrics(app, metrics)

    @app.exception_handler(ZapiError)
    async def zapi_error(_request: Request, exc: ZapiError) -> ZapiResponse:
        return ZapiResponse(exc.body(), exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ZapiResponse:
        if exc.status_code in (404, 405):
            return _not_found(request.url.path)
        return ZapiResponse(
            {"description": "HTTP error", "error": "true", "message": str(exc.detail)},
            exc.status_code if 400 <= exc.status_code < 600 else 400,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> ZapiResponse:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else "request"
        return ZapiResponse(
            {
                "description": f"{request.method} {zapi_path(request.url.path)}",
                "error": "true",
                "message": f"Invalid {where}.",
            },
            400,
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> ZapiResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return ZapiResponse(
            {
                "description": f"{request.method} {zapi_path(request.url.path)}",
                "error": "true",
                "message": "Internal server error; the details are in the server log.",
            },
            500,
        )

    # Added last, so outermost: the GUI's public files are answered before the ZAPI key gate.
    app.add_middleware(GuiMiddleware)
    return app


async def _resync_forever(reconciler: Reconciler, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(reconciler.check_drift)
        except Exception:
            log.exception("periodic reconcile failed")


def state_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / name
