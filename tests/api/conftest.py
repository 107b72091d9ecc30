"""The app in-process: a fresh SQLite file (a copy of one migrated by Alembic once per session),
a fake kernel, no conntrack.

Every client checks, on every response, what zapi31.md §1 asks of all answers (JSON object,
`Content-Type: application/json` exactly, never a FastAPI `detail` or a 422).  Server
exceptions are not re-raised: a crash must show up as the JSON 500 the client would get.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest

from app.db.session import migrate
from app.net.addresses import AddressBook
from app.net.conntrack import NullConntrack
from app.net.links import StaticLinks
from app.net.neighbours import NeighbourBook
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from ..postgres import ThrowawayPostgres
from .builders import KEY, Serve, TestClient, check_zapi_response
from .deferred_operations import build_deferred_operation_test
from .fakes import FakeCounter, fake_app, host_links


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A schemathesis operation test deferred at collection is built now (deferred_operations)."""
    build_deferred_operation_test(item)


def reuse_route_contexts() -> None:
    """Each test builds a fresh app, but the routers it includes are the same module-level
    objects: FastAPI (0.16x) still builds, per app and lazily on the first request, every
    included route's dependency tree, pydantic TypeAdapters and request handler (~1/4 of an
    app's start plus first request).  Those depend only on the route and how it is included,
    so they are built once per worker and reused.  Not for an app with `dependency_overrides`
    (its handlers must ask that app): those are built as FastAPI does.  Without the private
    hook (another FastAPI), nothing changes but the time."""
    context_class: Any = getattr(fastapi.routing, "_EffectiveRouteContext", None)
    build = getattr(context_class, "from_api_route", None)
    if build is None or getattr(build, "reused_per_worker", False):
        return
    built: dict[tuple[object, ...], tuple[object, object, object]] = {}
    lock = threading.Lock()

    def from_api_route(cls: type, *, original_route: Any, include_context: Any) -> Any:
        provider = include_context.dependency_overrides_provider
        if getattr(provider, "dependency_overrides", None):
            return build(original_route=original_route, include_context=include_context)
        key = (
            id(original_route),
            id(include_context.included_router),
            *(
                repr(getattr(include_context, field.name))
                for field in dataclasses.fields(include_context)
                if field.name not in ("included_router", "dependency_overrides_provider")
            ),
        )
        with lock:
            entry = built.get(key)
            if entry is None:
                context = build(original_route=original_route, include_context=include_context)
                # The route and router are kept alive: their ids in the key are never reused.
                entry = built[key] = (original_route, include_context.included_router, context)
        return entry[2]

    from_api_route.reused_per_worker = True  # type: ignore[attr-defined]
    context_class.from_api_route = classmethod(from_api_route)


reuse_route_contexts()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at Alembic's head, made once per session: each test starts from a copy,
    so the app's start-up upgrade finds it current (a fresh upgrade per test cost ~0.4 s)."""
    path = tmp_path_factory.mktemp("template") / "k.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite (a copy of the session's migrated file) by default; modules that set
    `pytestmark = pytest.mark.parametrize("database", BOTH_DATABASES, indirect=True)`
    also run on a fresh database in the session's throw-away PostgreSQL."""
    if getattr(request, "param", "sqlite") == "postgresql":
        server: ThrowawayPostgres = request.getfixturevalue("postgres")
        return server.create_database()
    migrated_db: Path = request.getfixturevalue("migrated_db")
    shutil.copyfile(migrated_db, tmp_path / "k.db")
    return f"sqlite:///{tmp_path}/k.db"


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The tests' settings but for the database and state directory: reading the KERNLB_*
    environment and validating every field is done once per session, not once per test."""
    # No timers: no periodic resync, no load sampling (which would read the host's conntrack).
    return Settings(zapi_key=KEY, resync_interval=0, load_interval=0)


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path, database: str) -> Settings:
    # A copy: a test that changes its settings changes no other test's.
    return base_settings.model_copy(update={"db": database, "state_dir": tmp_path})


@pytest.fixture
def nft() -> FakeNftAdapter:
    return FakeNftAdapter()


@pytest.fixture
def ct() -> NullConntrack:
    return NullConntrack()


@pytest.fixture
def counter() -> FakeCounter:
    return FakeCounter()


@pytest.fixture
def links() -> StaticLinks:
    return host_links()


@pytest.fixture
def serve(settings: Settings, ct: NullConntrack, counter: FakeCounter, links: StaticLinks) -> Serve:
    """Start an app (lifespan: migrations + initial sync) and yield a client for it."""

    @contextmanager
    def serve(
        *,
        nft: FakeNftAdapter,
        settings: Settings = settings,
        addresses: AddressBook | None = None,
        key: str | None = KEY,
        neighbours: NeighbourBook | None = None,
    ) -> Iterator[TestClient]:
        # Never the host's: no conntrack dump, no address change, fixed /proc figures.
        given = {"addresses": addresses} if addresses is not None else {}
        app = fake_app(
            settings,
            nft=nft,
            conntrack=ct,
            counter=counter,
            links=links,
            neighbours=neighbours,
            **given,
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            client.event_hooks["response"] = [check_zapi_response]
            if key is not None:
                client.headers.update({"ZAPI_KEY": key})
            yield client

    return serve


@pytest.fixture
def client(serve: Serve, nft: FakeNftAdapter) -> Iterator[TestClient]:
    with serve(nft=nft) as client:
        yield client


@pytest.fixture
def anonymous(serve: Serve, nft: FakeNftAdapter) -> Iterator[TestClient]:
    """A client that sends no key unless a test adds one."""
    with serve(nft=nft, key=None) as client:
        yield client
