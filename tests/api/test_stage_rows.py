"""A write renders its farms from plain SELECTs of the rows it flushed (repositories.farm_rows),
not from the session's ORM objects: after every kind of write, the state the reconciler applied
equals the farm read back through the ORM (as start-up and `GET` read it)."""

from __future__ import annotations

from app.db import repositories as repo
from app.db.models import BackendHealth

from .builders import TestClient, add_backend, create_farm, url


def _applied_equals_the_database(client: TestClient) -> None:
    reconciler = client.app.state.reconciler  # type: ignore[attr-defined]
    with reconciler.session_factory() as session:
        farms = repo.list_farms(session)
        assert {farm.id for farm in farms} == set(reconciler.specs())
        for farm in farms:
            assert reconciler.specs()[farm.id] == repo.farm_spec(farm), farm.name


def test_every_write_renders_what_it_committed(client: TestClient) -> None:
    create_farm(client)
    create_farm(client, name="other", vport=81)
    add_backend(client)
    add_backend(client, ip="198.18.2.7", port=None, weight=3, priority=2, max_conns=10)
    reconciler = client.app.state.reconciler  # type: ignore[attr-defined]
    with reconciler.session_factory() as session:  # the health checker's row for backend 0
        farm = repo.get_farm(session, "web")
        assert farm is not None
        session.add(BackendHealth(backend_id=farm.backends[0].id, state="down"))
        session.commit()
    seen_down = False
    for method, path, body in (
        ("PUT", "/farms/web/backends/1", {"weight": 5, "port": 8081}),
        ("PUT", "/farms/web/backends/0/maintenance", {"action": "maintenance", "mode": "cut"}),
        ("PUT", "/farms/web/backends/0/maintenance", {"action": "up"}),
        ("PUT", "/farms/web", {"algorithm": "hash_srcip", "persistence": "ip", "ttl": 30}),
        ("PUT", "/farms/web", {"vport": "80,90:95", "protocol": "udp"}),
        ("DELETE", "/farms/web/backends/0", None),
        ("PUT", "/farms/web/actions", {"action": "stop"}),
        ("PUT", "/farms/web/actions", {"action": "start"}),
        ("DELETE", "/farms/other", None),
    ):
        response = client.request(method, url(path), json=body)
        assert response.status_code in (200, 201), (method, path, response.text)
        _applied_equals_the_database(client)
        specs = reconciler.specs().values()
        seen_down = seen_down or any(b.health == "down" for s in specs for b in s.backends)
    assert seen_down, "the health row was rendered"
