"""The checker and the database: what is checked, and how transitions are recorded (one batch,
health rows only, cut_conns), on a real SQLite migrated by Alembic and the fake kernel."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Backend, BackendHealth, Farm
from app.db.session import make_engine, make_session_factory, migrate
from app.health.checks import TcpCheck
from app.health.monitor import BackendTarget, FarmCheck, Transition
from app.health.recorder import CheckLoader, HealthRecorder
from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter
from app.reconcile.reconciler import Reconciler
from app.reconcile.uow import UnitOfWork

NOW = datetime.datetime(2026, 11, 27, 9, 30, 0)


@dataclass
class World:
    factory: sessionmaker[Session]
    nft: FakeNftAdapter
    ct: NullConntrack
    reconciler: Reconciler
    uow: UnitOfWork

    def add_farm(self, name: str, *, vport: str = "80", **fields: object) -> Farm:
        with self.factory() as session:
            farm = Farm(name=name, vip="198.18.0.10", vport=vport, **fields)
            session.add(farm)
            session.commit()
            return farm

    def add_backend(self, farm: Farm, zapi_id: int, **fields: object) -> int:
        with self.factory() as session:
            backend = Backend(farm_id=farm.id, zapi_id=zapi_id, ip=f"198.18.2.{zapi_id + 1}")
            for key, value in fields.items():
                setattr(backend, key, value)
            session.add(backend)
            session.commit()
            return backend.id

    def health(self) -> dict[int, tuple[str, datetime.datetime | None, str]]:
        with self.factory() as session:
            rows = session.scalars(select(BackendHealth))
            return {r.backend_id: (r.state, r.changed_at, r.reason) for r in rows}

    def configuration(self) -> list[tuple[object, ...]]:
        """Every configuration row, column by column."""
        with self.factory() as session:
            return [
                tuple(getattr(row, column.key) for column in model.__table__.c)
                for model in (Farm, Backend)
                for row in session.scalars(select(model).order_by(model.id))
            ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    nft, ct = FakeNftAdapter(), NullConntrack()
    reconciler = Reconciler(adapter=nft, session_factory=factory)
    uow = UnitOfWork(session_factory=factory, reconciler=reconciler, conntrack=ct)
    yield World(factory, nft, ct, reconciler, uow)
    engine.dispose()


def flip(farm: Farm, mark: int, state: str, *, zapi_id: int = 0) -> Transition:
    return Transition(
        farm_id=farm.id,
        farm=farm.name,
        mark=mark,
        zapi_id=zapi_id,
        ip="198.18.2.1",
        port=80,
        state=state,
        reason=f"probe says {state}",
    )


def config_of(farm: Farm) -> FarmCheck:
    return FarmCheck(farm.id, farm.name, TcpCheck(port="PORT"), 2.0, 2.0)


def record(world: World, *rounds: tuple[Farm, list[Transition]]) -> HealthRecorder:
    recorder = HealthRecorder(world.uow, wallclock=lambda: NOW)

    async def scenario() -> None:
        await asyncio.gather(*(recorder.record(config_of(f), t) for f, t in rounds))

    asyncio.run(scenario())
    return recorder


# -- what is checked -----------------------------------------------------------------------


def test_loader_reads_running_farms_with_farmguardian(world: World, tmp_path: Path) -> None:
    web = world.add_farm(
        "web",
        vport="80,443",
        fg_enabled=True,
        fg_script="check_tcp -H HOST -p PORT -t 3",
        fg_timecheck=5,
        fg_rise=2,
        fg_cut_conns=True,
    )
    b0 = world.add_backend(web, 0, port=8080)
    b1 = world.add_backend(web, 1)  # no port: the farm's first port
    world.add_backend(web, 2, maintenance=True, maintenance_mode="drain")  # not checked
    b3 = world.add_backend(web, 3)
    with world.factory() as session:
        session.add(BackendHealth(backend_id=b3, state="down", reason="old"))
        session.commit()
    world.add_farm("off", fg_enabled=False, fg_script="check_tcp -H HOST -p PORT")
    world.add_farm("stopped", running=False, fg_enabled=True, fg_script="check_tcp -H HOST -p PORT")

    (config,) = CheckLoader(world.factory, plugin_dir=tmp_path)()
    assert config == FarmCheck(
        farm_id=web.id,
        name="web",
        check=TcpCheck(port="PORT", timeout=3.0),
        interval=5.0,
        timeout=3.0,  # the script's own -t is shorter than fgtimecheck
        rise=2,
        fall=1,
        cut_conns=True,
        log=False,
        backends=(
            BackendTarget(b0, 0, "198.18.2.1", 8080, "up"),
            BackendTarget(b1, 1, "198.18.2.2", 80, "up"),
            BackendTarget(b3, 3, "198.18.2.4", 80, "down"),
        ),
    )


def test_loader_reads_some_farms(world: World, tmp_path: Path) -> None:
    script = "check_tcp -H HOST -p PORT"
    web = world.add_farm("web", fg_enabled=True, fg_script=script)
    api = world.add_farm("api", fg_enabled=True, fg_script=script)
    off = world.add_farm("off", fg_enabled=False, fg_script=script)
    loader = CheckLoader(world.factory, plugin_dir=tmp_path)
    assert [c.name for c in loader.farms(frozenset({api.id, off.id, 999}))] == ["api"]
    assert [c.name for c in loader.farms(frozenset({web.id}))] == ["web"]
    assert loader.farms(frozenset()) == []


def test_loader_timeout_and_unprobeable_backends(world: World, tmp_path: Path) -> None:
    farm = world.add_farm(
        "any", vport="*", fg_enabled=True, fg_script="check_tcp -H HOST -p PORT", fg_timeout=1
    )
    b0 = world.add_backend(farm, 0, port=22)
    world.add_backend(farm, 1)  # no port anywhere: PORT cannot be filled, not checked
    (config,) = CheckLoader(world.factory, plugin_dir=tmp_path)()
    assert (config.interval, config.timeout) == (5.0, 1.0)
    assert config.backends == (BackendTarget(b0, 0, "198.18.2.1", 22, "up"),)


def test_loader_skips_a_script_it_cannot_run(world: World, tmp_path: Path) -> None:
    world.add_farm("web", fg_enabled=True, fg_script="check_x 'unbalanced")
    assert CheckLoader(world.factory, plugin_dir=tmp_path)() == []


# -- recording -----------------------------------------------------------------------------


def test_transitions_of_several_farms_cost_one_batch_and_touch_health_only(world: World) -> None:
    web = world.add_farm("web", fg_enabled=True)
    api = world.add_farm("api", vport="81", fg_enabled=True)
    w0, w1 = world.add_backend(web, 0), world.add_backend(web, 1)
    a0 = world.add_backend(api, 0)
    world.reconciler.full_sync()
    batches = len(world.nft.batches)
    configuration = world.configuration()

    recorder = record(
        world,
        (web, [flip(web, w0, "down"), flip(web, w1, "down", zapi_id=1)]),
        (api, [flip(api, a0, "down")]),
    )

    assert recorder.batches == 1
    assert len(world.nft.batches) == batches + 1, "one nftables batch for every flip"
    assert world.health() == {
        w0: ("down", NOW, "probe says down"),
        w1: ("down", NOW, "probe says down"),
        a0: ("down", NOW, "probe says down"),
    }
    assert world.configuration() == configuration, "health checks edited configuration"
    assert world.ct.flushed == []  # cut_conns is off
    specs = world.reconciler.specs()
    assert [b.status for b in specs[web.id].backends] == ["down", "down"]

    record(world, (web, [flip(web, w0, "up")]))
    assert world.health()[w0] == ("up", NOW, "probe says up")
    assert [b.status for b in world.reconciler.specs()[web.id].backends] == ["up", "down"]


def test_cut_conns_cuts_whoever_leaves_rotation(world: World) -> None:
    web = world.add_farm("web", fg_enabled=True, fg_cut_conns=True)
    b1 = world.add_backend(web, 0, priority=1)
    b2 = world.add_backend(web, 1, priority=2)
    world.reconciler.full_sync()

    record(world, (web, [flip(web, b1, "down")]))
    assert world.ct.flushed == [b1], "the backend that went down is cut"

    # b1 comes back: b2 (priority 2) served only because b1 was down; it leaves rotation.
    record(world, (web, [flip(web, b1, "up")]))
    assert world.ct.flushed == [b1, b2]


def test_nothing_is_recorded_once_farmguardian_is_off(world: World) -> None:
    web = world.add_farm("web", fg_enabled=False)
    b0 = world.add_backend(web, 0)
    world.reconciler.full_sync()
    batches = len(world.nft.batches)
    record(world, (web, [flip(web, b0, "down")]))
    assert world.health() == {}
    assert len(world.nft.batches) == batches


def test_a_backend_deleted_while_probed_is_skipped(world: World) -> None:
    web = world.add_farm("web", fg_enabled=True)
    b0, b1 = world.add_backend(web, 0), world.add_backend(web, 1)
    world.reconciler.full_sync()
    with world.factory() as session:
        session.delete(session.get(Backend, b1))
        session.commit()
    record(world, (web, [flip(web, b0, "down"), flip(web, b1, "down", zapi_id=1)]))
    assert world.health() == {b0: ("down", NOW, "probe says down")}


def test_a_refused_batch_records_nothing_and_tells_the_monitor(world: World) -> None:
    web = world.add_farm("web", fg_enabled=True)
    b0 = world.add_backend(web, 0)
    world.reconciler.full_sync()
    world.nft.fail_next()
    with pytest.raises(Exception, match="rejected"):
        record(world, (web, [flip(web, b0, "down")]))
    assert world.health() == {}
    assert [b.status for b in world.reconciler.specs()[web.id].backends] == ["up"]
