"""GET /stats/farms, /stats/farms/NAME[/backends], /stats, /stats/system/network
(reference §8, zapi31.md §1 "JSON types", checklist "Stats")."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.db.models import BackendHealth

from .builders import (
    BASE_V3,
    VIP,
    TestClient,
    add_backend,
    create_farm,
    error,
    expect,
    farm_action,
    set_maintenance,
    url,
)
from .fakes import DATE, HOSTNAME, FakeCounter

JSON = dict[str, object]
BACKEND_2 = "192.0.2.2"
BACKEND_3 = "192.0.2.3"


def farm_item(
    name: str = "web",
    *,
    established: int = 0,
    pending: int = 0,
    status: str = "critical",
    vport: str = "80",
) -> JSON:
    return {
        "established": established,
        "farmname": name,
        "pending": pending,
        "profile": "l4xnat",
        "status": status,
        "vip": VIP,
        "vport": vport,
    }


def backend_item(
    backend_id: int,
    *,
    ip: str = "192.0.2.1",
    port: int | None = 8080,
    established: int = 0,
    pending: int = 0,
    status: str = "up",
    weight: int = 1,
    priority: int = 1,
    max_conns: int = 0,
) -> JSON:
    return {
        "established": established,
        "id": backend_id,
        "ip": ip,
        "max_conns": max_conns,
        "pending": pending,
        "port": port,
        "priority": priority,
        "status": status,
        "weight": weight,
    }


def farm_stats(*backends: JSON) -> JSON:
    return {"backends": list(backends), "description": "Get farm stats"}


def farms_list(*farms: JSON) -> JSON:
    return {"description": "List all farms stats", "farms": list(farms)}


def mark_of(client: TestClient, farm: str, backend_id: int) -> int:
    """The conntrack mark of a backend: its row id (what the renderer stamps on connections)."""
    from app.db import repositories as repo

    uow = client.app.state.farms.uow  # type: ignore[attr-defined]
    with uow.read() as session:
        found = repo.get_farm(session, farm)
        assert found is not None
        backend = repo.get_backend(found, backend_id)
        assert backend is not None
        return int(backend.id)


def set_health_down(client: TestClient, farm: str, backend_id: int) -> None:
    """What the health checker records when a backend fails its checks."""
    uow = client.app.state.farms.uow  # type: ignore[attr-defined]
    mark = mark_of(client, farm, backend_id)
    with uow.session_factory() as session:
        session.merge(
            BackendHealth(
                backend_id=mark, state="down", changed_at=datetime(2026, 1, 1), reason="x"
            )
        )
        session.commit()


# -- /stats/farms --------------------------------------------------------------------------


def test_no_farms(client: TestClient) -> None:
    expect(client.get(url("/stats/farms")), 200, farms_list())


def test_counts_per_farm_and_backend(client: TestClient, counter: FakeCounter) -> None:
    create_farm(client)
    create_farm(client, name="multi", vport="443,8443")
    first = add_backend(client)
    second = add_backend(client, ip=BACKEND_2, port=None, weight=3, priority=2, max_conns=10)
    other = add_backend(client, "multi", port=None)
    counter.set(mark_of(client, "web", first), established=5, pending=2)
    counter.set(mark_of(client, "web", second), established=7)
    counter.set(mark_of(client, "multi", other), established=1, pending=1)
    counter.set(9999, established=100)  # a mark that no backend has

    expect(
        client.get(url("/stats/farms")),
        200,
        farms_list(
            farm_item("multi", established=1, pending=1, status="up", vport="443,8443"),
            farm_item("web", established=12, pending=2, status="up"),
        ),
    )
    expected = farm_stats(
        backend_item(first, established=5, pending=2),
        backend_item(
            second, ip=BACKEND_2, port=None, established=7, weight=3, priority=2, max_conns=10
        ),
    )
    expect(client.get(url("/stats/farms/web")), 200, expected)
    expect(client.get(url("/stats/farms/web/backends")), 200, expected)


def test_a_farm_without_connections_reports_zeros(client: TestClient) -> None:
    create_farm(client)
    backend_id = add_backend(client)
    expect(client.get(url("/stats/farms")), 200, farms_list(farm_item(status="up")))
    expect(client.get(url("/stats/farms/web")), 200, farm_stats(backend_item(backend_id)))


def test_a_stopped_farm_counts_nothing(client: TestClient, counter: FakeCounter) -> None:
    create_farm(client)
    backend_id = add_backend(client)
    farm_action(client, "web", "stop")
    counter.set(mark_of(client, "web", backend_id), established=4, pending=1)
    expect(client.get(url("/stats/farms")), 200, farms_list(farm_item(status="down")))
    expect(client.get(url("/stats/farms/web")), 200, farm_stats(backend_item(backend_id)))
    assert counter.calls == 0  # a stopped farm needs no conntrack dump


def test_a_backend_in_maintenance_keeps_its_counts_out_of_the_farm_total(
    client: TestClient, counter: FakeCounter
) -> None:
    create_farm(client)
    first = add_backend(client)
    draining = add_backend(client, ip=BACKEND_2)
    assert set_maintenance(client, "web", draining).status_code == 200
    counter.set(mark_of(client, "web", first), established=2)
    counter.set(mark_of(client, "web", draining), established=3, pending=1)
    # Reference §8.1: a farm counts only the connections of its backends that are up.
    expect(
        client.get(url("/stats/farms")),
        200,
        farms_list(farm_item(established=2, status="maintenance")),
    )
    expect(
        client.get(url("/stats/farms/web")),
        200,
        farm_stats(
            backend_item(first, established=2),
            backend_item(draining, ip=BACKEND_2, established=3, pending=1, status="maintenance"),
        ),
    )


def test_a_down_backend_is_reported_down_and_left_out_of_the_farm_total(
    client: TestClient, counter: FakeCounter
) -> None:
    create_farm(client)
    healthy = add_backend(client)
    failed = add_backend(client, ip=BACKEND_2)
    set_health_down(client, "web", failed)
    counter.set(mark_of(client, "web", healthy), established=1)
    counter.set(mark_of(client, "web", failed), established=6)
    expect(
        client.get(url("/stats/farms")), 200, farms_list(farm_item(established=1, status="problem"))
    )
    expect(
        client.get(url("/stats/farms/web")),
        200,
        farm_stats(
            backend_item(healthy, established=1),
            backend_item(failed, ip=BACKEND_2, established=6, status="down"),
        ),
    )


def test_only_down_backends_make_a_critical_farm_with_no_connections(
    client: TestClient, counter: FakeCounter
) -> None:
    create_farm(client)
    failed = add_backend(client)
    set_health_down(client, "web", failed)
    counter.set(mark_of(client, "web", failed), established=2, pending=2)
    expect(client.get(url("/stats/farms")), 200, farms_list(farm_item(status="critical")))


def test_counts_follow_the_counter_between_requests(
    client: TestClient, counter: FakeCounter
) -> None:
    create_farm(client)
    backend_id = add_backend(client)
    mark = mark_of(client, "web", backend_id)
    for established in (1, 4, 0):
        counter.set(mark, established=established)
        body = client.get(url("/stats/farms/web")).json()
        assert body["backends"][0]["established"] == established


@pytest.mark.parametrize(
    "path",
    [
        "/stats/farms/nope",
        "/stats/farms/nope/backends",
        "/stats/farms/nope/service/svc/backends",
        "/stats/farms/nope/services/svc/backends",
    ],
)
def test_stats_of_a_missing_farm_are_400(client: TestClient, path: str) -> None:
    # Reference §3.3: the stats endpoints answer 400, not 404, for an unknown farm.
    expect(
        client.get(url(path)),
        400,
        error("Get farm stats", "The farmname nope does not exist."),
    )


@pytest.mark.parametrize("spelling", ["service", "services"])
def test_l4xnat_farms_have_no_service_stats(client: TestClient, spelling: str) -> None:
    create_farm(client)
    expect(
        client.get(url(f"/stats/farms/web/{spelling}/default/backends")),
        400,
        error("Get farm stats", "The l4xnat farm profile does not support services."),
    )


@pytest.mark.parametrize("path", ["/stats/farms/modules", "/stats/farms/total"])
def test_enterprise_only_stats_paths_are_not_found(client: TestClient, path: str) -> None:
    create_farm(client)
    expect(
        client.get(url(path)),
        404,
        error("Request not found", f"Request not found: {path}"),
    )


def test_stats_answer_under_the_v3_alias(client: TestClient) -> None:
    create_farm(client)
    body = farms_list(farm_item())
    expect(client.get(url("/stats/farms", base=BASE_V3)), 200, body)


# -- /stats and /stats/system/network -------------------------------------------------------


def test_system_stats(client: TestClient) -> None:
    expect(
        client.get(url("/stats")),
        200,
        {
            "description": "System stats",
            "params": {
                "cpu": {
                    "cores": 2,
                    "idle": 84.0,
                    "iowait": 1.0,
                    "irq": 0.0,
                    "nice": 0.0,
                    "softirq": 0.0,
                    "sys": 2.5,
                    "usage": 16.0,
                    "user": 12.5,
                },
                "date": DATE,
                "hostname": HOSTNAME,
                "load": {"Last_1": 0.5, "Last_15": 0.1, "Last_5": 0.25},
                "memory": {
                    "Buffers": 10.0,
                    "Cached": 500.0,
                    "MemFree": 1000.0,
                    "MemTotal": 2000.0,
                    "MemUsed": 1000.0,
                    "SwapCached": 0.0,
                    "SwapFree": 999.5,
                    "SwapTotal": 1000.0,
                    "SwapUsed": 0.5,
                },
                # The original's keys carry the direction twice; plugins look them up so.
                "network": {
                    "eth0 in in": 46.06,
                    "eth0 out out": 62.98,
                    "eth1 in in": 0.0,
                    "eth1 out out": 1.0,
                },
            },
        },
    )


def test_system_stats_numbers_are_json_numbers(client: TestClient) -> None:
    params = client.get(url("/stats")).json()["params"]
    for section in ("memory", "load", "cpu", "network"):
        for key, value in params[section].items():
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    assert isinstance(params["cpu"]["cores"], int)


def test_network_stats(client: TestClient) -> None:
    expect(
        client.get(url("/stats/system/network")),
        200,
        {
            "description": "Network interefaces usage",
            "params": {
                "date": DATE,
                "hostname": HOSTNAME,
                "interfaces": [
                    {"in": "46.06", "interface": "eth0", "out": "62.98"},
                    {"in": "0.00", "interface": "eth1", "out": "1.00"},
                ],
            },
        },
    )
