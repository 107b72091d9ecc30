"""Two kernlb nodes in one process, sharing a PostgreSQL database, each with its own (fake)
kernel: a change through either node reaches the other's kernel, writers take turns, a node
without its database refuses writes with 503 and catches up, /system/cluster tells the truth,
and bad set-ups fail at start-up naming what is wrong."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.cluster.schema import StartupError
from app.main import create_app
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from ..postgres import ThrowawayPostgres
from .builders import (
    INTERFACES,
    KEY,
    VIP,
    TestClient,
    check_zapi_response,
    create_farm,
    error,
    url,
)
from .fakes import fake_app

Node = Callable[..., TestClient]


def node_settings(tmp_path: Path, db: str, name: str, **extra: object) -> Settings:
    state = tmp_path / name
    state.mkdir(exist_ok=True)
    return Settings(
        db=db,
        state_dir=state,
        zapi_key=KEY,
        resync_interval=0,
        load_interval=0,
        node_name=name,
        db_retry_interval=0.5,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Start nodes (`nodes(db, "a")`); all are stopped at the end."""
    started: list[TestClient] = []

    def start(db: str, name: str, **extra: object) -> TestClient:
        app = fake_app(node_settings(tmp_path, db, name, **extra))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        started.append(client)
        client.event_hooks["response"] = [check_zapi_response]
        client.headers.update({"ZAPI_KEY": KEY})
        return client

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


def applied_farms(client: TestClient) -> set[str]:
    """The farms in this node's kernel (the applied state)."""
    return {spec.name for spec in client.app.state.reconciler.specs().values()}  # type: ignore[attr-defined]


def wait_until(check: Callable[[], bool], *, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


def test_a_change_through_either_node_reaches_the_other_within_a_second(
    postgres: ThrowawayPostgres, nodes: Node
) -> None:
    db = postgres.create_database()
    a, b = nodes(db, "a"), nodes(db, "b")
    create_farm(a, name="web")
    took = wait_until(lambda: "web" in applied_farms(b), timeout=1.0)
    create_farm(b, name="api", vport=81)
    took_back = wait_until(lambda: "api" in applied_farms(a), timeout=1.0)
    assert a.delete(url("/farms/web")).status_code == 200
    wait_until(lambda: applied_farms(b) == {"api"}, timeout=1.0)
    print(f"convergence: a->b {took * 1000:.0f} ms, b->a {took_back * 1000:.0f} ms")
    # The follower applied exactly the revisions the writers made, and says so.
    for client in (a, b):
        cluster = client.get(url("/system/cluster")).json()["params"]
        assert cluster["revision"] == 3
        assert cluster["database"] == "ok"


def haproxy_config(client: TestClient) -> str:
    """What this node's HAProxy would run (checked with `haproxy -c`; API tests never start
    it): the configuration the engine applied last, empty when it has no listener."""
    current = client.app.state.http_farms.engine.current  # type: ignore[attr-defined]
    if current is None or current.listeners == 0:
        return ""
    text: str = current.config
    return text


def test_http_farms_reach_the_other_nodes_haproxy(postgres: ThrowawayPostgres, nodes: Node) -> None:
    """HAProxy follows the database too: an http farm, its backend and their removal, made
    through one node, reach the other node's HAProxy configuration, and vice versa."""
    db = postgres.create_database()
    a, b = nodes(db, "a"), nodes(db, "b")
    created = a.post(
        url("/farms"), json={"farmname": "www", "profile": "http", "vip": VIP, "vport": 8080}
    )
    assert created.status_code == 201, created.text
    assert a.post(url("/farms/www/services"), json={"id": "app"}).status_code == 201
    backend = {"ip": "192.0.2.7", "port": 8080}
    assert a.post(url("/farms/www/services/app/backends"), json=backend).status_code == 201
    took = wait_until(lambda: "192.0.2.7:8080" in haproxy_config(b), timeout=2.0)
    assert f"{VIP}:8080" in haproxy_config(b)
    # A write through b starts from the database: a's farm stays, b's backend is added.
    backend = {"ip": "192.0.2.8", "port": 8080}
    assert b.post(url("/farms/www/services/app/backends"), json=backend).status_code == 201
    took_back = wait_until(lambda: "192.0.2.8:8080" in haproxy_config(a), timeout=2.0)
    assert "192.0.2.7:8080" in haproxy_config(a)
    assert b.delete(url("/farms/www")).status_code == 200
    wait_until(lambda: "192.0.2.7:8080" not in haproxy_config(a), timeout=2.0)
    print(f"http farms: a->b {took * 1000:.0f} ms, b->a {took_back * 1000:.0f} ms")


def test_clusters_sharing_a_postgresql_server_each_see_their_own_health_leader(
    postgres: ThrowawayPostgres, nodes: Node
) -> None:
    """Advisory locks are per database: two clusters (two databases of one server) each have
    a leader, and each names its own."""
    a = nodes(postgres.create_database(), "a")
    c = nodes(postgres.create_database(), "c")

    def leader(client: TestClient) -> str | None:
        name: str | None = client.get(url("/system/cluster")).json()["params"]["health_leader"]
        return name

    wait_until(lambda: leader(a) is not None and leader(c) is not None, timeout=10.0)
    assert (leader(a), leader(c)) == ("a", "c")


def test_writers_on_both_nodes_take_turns(postgres: ThrowawayPostgres, nodes: Node) -> None:
    db = postgres.create_database()
    a, b = nodes(db, "a"), nodes(db, "b")
    statuses: list[int] = []

    def writer(client: TestClient, prefix: str) -> None:
        for i in range(8):
            body = {"farmname": f"{prefix}{i}", "profile": "l4xnat", "vip": INTERFACES_VIP}
            body["vport"] = str(1000 + i + (0 if prefix == "a" else 100))
            statuses.append(client.post(url("/farms"), json=body).status_code)

    threads = [threading.Thread(target=writer, args=(c, p)) for c, p in ((a, "a"), (b, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 16
    everything = {f"{p}{i}" for p in "ab" for i in range(8)}
    wait_until(lambda: applied_farms(a) == applied_farms(b) == everything, timeout=2.0)
    # One revision per write, none lost or doubled by the two nodes racing.
    engine = create_engine(db)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT revision FROM config_revision")) == 16
    engine.dispose()
    wait_until(
        lambda: (
            {n["revision"] for n in b.get(url("/system/cluster")).json()["params"]["nodes"]} == {16}
        ),
        timeout=3.0,
    )


INTERFACES_VIP = next(iter(INTERFACES))


def test_system_cluster_shows_both_nodes_in_zevenet_shape(
    postgres: ThrowawayPostgres, nodes: Node
) -> None:
    db = postgres.create_database()
    a = nodes(db, "a", cluster_address="198.18.20.11")
    b = nodes(db, "b", cluster_address="198.18.20.12")
    create_farm(a, name="web")
    wait_until(lambda: "web" in applied_farms(b), timeout=1.0)

    def both_reported() -> bool:
        params = a.get(url("/system/cluster")).json()["params"]
        return [n["revision"] for n in params["nodes"]] == [1, 1] and bool(params["health_leader"])

    wait_until(both_reported, timeout=5.0)
    response = a.get(url("/system/cluster"))
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Show the cluster configuration"
    params = body["params"]
    assert params["database"] == "ok"
    assert params["node_name"] == "a"
    assert params["revision"] == 1
    assert params["health_leader"] in ("a", "b")
    by_name = {n["name"]: n for n in params["nodes"]}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"]["node"] == "local" and by_name["b"]["node"] == "remote"
    assert by_name["a"]["ip"] == "198.18.20.11" and by_name["b"]["ip"] == "198.18.20.12"
    for node in by_name.values():
        assert node["status"] == "ok", node
        assert node["lag"] == 0
        assert node["role"] == "none"  # no VRRP in this test
    leaders = [n for n in by_name.values() if n["health_leader"] == "true"]
    assert [n["name"] for n in leaders] == [params["health_leader"]]
    a.event_hooks["response"] = []  # /metrics is Prometheus text, not a ZAPI answer
    metrics = a.get("/metrics").text
    assert 'kernlb_cluster_revision_applied{node="a"} 1.0' in metrics
    assert 'kernlb_cluster_database_up{node="a"} 1.0' in metrics
    assert 'kernlb_cluster_lag_revisions{node="a"} 0.0' in metrics


def test_system_cluster_names_lagging_stale_and_mismatched_peers(
    postgres: ThrowawayPostgres, nodes: Node
) -> None:
    """A peer behind the database, one on another schema revision and one without heartbeat
    (rows as their nodes would have written them) are never shown as in sync."""
    db = postgres.create_database()
    a = nodes(db, "a")
    create_farm(a, name="web")
    create_farm(a, name="api", vport=81)  # revision 2
    engine = create_engine(db)
    with engine.begin() as connection:
        own_schema = connection.execute(
            text("SELECT schema_revision FROM cluster_node WHERE name = 'a'")
        ).scalar_one()
        peers = [
            ("behind", 1, "0 seconds", own_schema),
            ("older", 2, "0 seconds", "0001_initial"),
            ("gone", 2, "1 hour", own_schema),
        ]
        for name, revision, ago, schema in peers:
            connection.execute(
                text(
                    "INSERT INTO cluster_node (name, address, revision, seen_at, vrrp_state, "
                    "health_leader, schema_revision, version) VALUES (:name, '', :revision, "
                    "(now() AT TIME ZONE 'utc') - CAST(:ago AS interval), '', false, :schema, "
                    "'0.1.0')"
                ),
                {"name": name, "revision": revision, "ago": ago, "schema": schema},
            )
    engine.dispose()
    params = a.get(url("/system/cluster")).json()["params"]
    assert params["revision"] == 2
    by_name = {n["name"]: n for n in params["nodes"]}
    assert (by_name["behind"]["status"], by_name["behind"]["lag"]) == ("lagging", 1)
    assert "1 revision(s) behind" in by_name["behind"]["message"]
    assert by_name["older"]["status"] == "schema mismatch"
    assert "0001_initial" in by_name["older"]["message"]
    assert by_name["gone"]["status"] == "unreachable"
    assert by_name["gone"]["message"].startswith("No heartbeat for")
    assert by_name["a"]["status"] == "ok"


def test_the_health_leader_moves_when_its_node_stops(
    postgres: ThrowawayPostgres, tmp_path: Path, nodes: Node
) -> None:
    db = postgres.create_database()
    a = nodes(db, "a")
    wait_until(lambda: a.app.state.cluster.node.status.health_leader, timeout=5.0)  # type: ignore[attr-defined]
    b = nodes(db, "b")
    time.sleep(1.0)
    assert not b.app.state.cluster.node.status.health_leader  # type: ignore[attr-defined]
    stopped = time.monotonic()
    a.__exit__(None, None, None)  # the leader's connection closes: the lock is free
    wait_until(lambda: b.app.state.cluster.node.status.health_leader, timeout=5.0)  # type: ignore[attr-defined]
    print(f"health leadership moved {time.monotonic() - stopped:.2f} s after the leader stopped")


def test_without_its_database_a_node_refuses_writes_and_catches_up_later(
    tmp_path: Path, nodes: Node
) -> None:
    server = ThrowawayPostgres()  # its own server: this test stops it
    try:
        server.start()
        db = server.create_database()
        a, b = nodes(db, "a"), nodes(db, "b")
        create_farm(a, name="web")
        wait_until(lambda: "web" in applied_farms(b), timeout=1.0)
        server.halt()
        response = a.post(
            url("/farms"),
            json={"farmname": "late", "profile": "l4xnat", "vip": INTERFACES_VIP, "vport": "81"},
        )
        assert response.status_code == 503
        body = response.json()
        assert body["description"] == "Creating farm 'late'"
        assert body["error"] == "true"
        assert body["message"].startswith("The database is unavailable (")
        assert "nothing was changed" in body["message"]
        assert applied_farms(a) == applied_farms(b) == {"web"}  # the kernels keep their rules
        cluster = a.get(url("/system/cluster")).json()["params"]
        assert cluster["database"] == "unreachable"
        assert cluster["nodes"][0]["status"] == "unreachable database"
        assert cluster["nodes"][0]["revision"] == 1
        assert cluster["nodes"][0]["lag"] is None  # unknown, never "0, in sync"
        server.start()

        def written() -> bool:
            late = {"farmname": "late", "profile": "l4xnat", "vip": INTERFACES_VIP, "vport": "81"}
            return b.post(url("/farms"), json=late).status_code == 201

        wait_until(written, timeout=15.0)
        node = a.app.state.cluster.node  # type: ignore[attr-defined]
        try:
            wait_until(lambda: "late" in applied_farms(a), timeout=20.0)
        except AssertionError:
            follower = node.follower
            raise AssertionError(
                f"a did not catch up: {node.status}, applied {follower.applied}, "
                f"seen {follower.latest_seen}, thread alive {node._thread.is_alive()}"
            ) from None
    finally:
        server.stop()


def test_start_up_fails_clearly_without_its_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    db = f"postgresql+psycopg://kernlb@/k?host={missing}"
    app = create_app(node_settings(tmp_path, db, "a"), nft=FakeNftAdapter())
    with pytest.raises(StartupError) as raised, TestClient(app):
        pass
    assert str(raised.value).startswith("cannot reach the database postgresql+psycopg://")
    assert str(missing) in str(raised.value)


def test_start_up_refuses_a_database_migrated_by_a_newer_kernlb(
    postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    db = postgres.create_database()
    engine = create_engine(db)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    app = create_app(node_settings(tmp_path, db, "a"), nft=FakeNftAdapter())
    expected = r"schema revision '9999_future'.*Upgrade this node"
    with pytest.raises(StartupError, match=expected), TestClient(app):
        pass


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"keepalived_bin": "no-such-keepalived"}, "cluster mode needs keepalived"),
        (
            {"conntrackd_bin": "no-such-conntrackd", "cluster_sync_interface": "s0"},
            "needs conntrackd",
        ),
        ({"cluster_interface": "bad name!"}, "is not an interface name"),
        ({"cluster_auth": "way-too-long-secret"}, "VRRP authentication"),
    ],
)
def test_cluster_mode_start_up_names_what_is_missing(
    postgres: ThrowawayPostgres, tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    db = postgres.create_database()
    settings = node_settings(
        tmp_path,
        db,
        "a",
        cluster=True,
        cluster_interface="f0",
        cluster_sync_address="198.18.22.1",
        cluster_sync_peer="198.18.22.2",
        **{k: v for k, v in extra.items() if k != "cluster_interface"},
    )
    if "cluster_interface" in extra:
        settings.cluster_interface = str(extra["cluster_interface"])
    app = create_app(settings, nft=FakeNftAdapter())
    with pytest.raises(StartupError, match=message), TestClient(app):
        pass


def test_cluster_mode_needs_postgresql(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, f"sqlite:///{tmp_path}/k.db", "a", cluster=True)
    with pytest.raises(StartupError, match="cluster mode needs a PostgreSQL database"):
        create_app(settings, nft=FakeNftAdapter())


def test_a_single_node_on_sqlite_has_no_cluster(client: TestClient) -> None:
    response = client.get(url("/system/cluster"))
    assert response.status_code == 404
    assert response.json() == error(
        "Show the cluster configuration",
        "This node is not in a cluster: it keeps its state in SQLite (a cluster shares a "
        "PostgreSQL database, see docs/cluster.md).",
    )
