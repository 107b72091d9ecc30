"""ETag / If-Match on farms (opt-in): 412 when the farm changed meanwhile; clients without
If-Match keep today's behaviour; health changes never change the ETag."""

from __future__ import annotations

from app.nft.fake import FakeNftAdapter

from .builders import TestClient, add_backend, create_farm, url


def etag(client: TestClient, name: str = "web") -> str:
    response = client.get(url(f"/farms/{name}"))
    assert response.status_code == 200
    tag: str = response.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    return tag


def test_a_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, nft: FakeNftAdapter
) -> None:
    create_farm(client)
    add_backend(client)
    first = etag(client)
    assert etag(client) == first  # stable while nothing changes
    # Another client edits the farm without If-Match: today's behaviour.
    assert client.put(url("/farms/web"), json={"ttl": 30}).status_code == 200
    second = etag(client)
    assert second != first
    batches = len(nft.batches)
    for method, path, body in (
        ("PUT", "/farms/web", {"ttl": 40}),
        ("PUT", "/farms/web/backends/0", {"weight": 3}),
        ("DELETE", "/farms/web/backends/0", None),
        ("DELETE", "/farms/web", None),
        ("PUT", "/farms/web/actions", {"action": "stop"}),
    ):
        response = client.request(method, url(path), json=body, headers={"If-Match": first})
        assert response.status_code == 412, (method, path, response.text)
        assert response.json() == {
            "description": f"{method} {path}",
            "error": "true",
            "message": (
                f"The farm web changed since it was read (If-Match {first}, now {second}); "
                "read it again and retry."
            ),
        }
    assert len(nft.batches) == batches
    assert client.get(url("/farms/web")).json()["params"]["ttl"] == 30


def test_a_current_if_match_passes_and_answers_the_new_etag(client: TestClient) -> None:
    create_farm(client)
    current = etag(client)
    response = client.put(url("/farms/web"), json={"ttl": 45}, headers={"If-Match": current})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == etag(client) != current
    star = client.put(url("/farms/web"), json={"ttl": 46}, headers={"If-Match": "*"})
    assert star.status_code == 200
    gone = client.delete(url("/farms/web"), headers={"If-Match": etag(client)})
    assert gone.status_code == 200
    missing = client.put(url("/farms/web"), json={"ttl": 1}, headers={"If-Match": current})
    assert missing.status_code == 404  # the farm's own answer, not a 412


def test_health_changes_keep_the_etag(client: TestClient) -> None:
    create_farm(client)
    add_backend(client)
    before = etag(client)
    checker_state = client.app.state.checker  # type: ignore[attr-defined]
    assert checker_state is not None
    from app.db.models import BackendHealth

    with client.app.state.reconciler.session_factory() as session:  # type: ignore[attr-defined]
        from app.db import repositories as repo

        farm = repo.get_farm(session, "web")
        assert farm is not None
        session.add(BackendHealth(backend_id=farm.backends[0].id, state="down"))
        session.commit()
    assert etag(client) == before


def test_the_etag_a_write_answers_is_the_one_a_read_gives(client: TestClient) -> None:
    """Writes answer the ETag from the rows they committed: it must equal a fresh read's
    (same columns, same types), whatever the write changed."""
    create_farm(client)
    add_backend(client)
    for method, path, body in (
        ("POST", "/farms/web/backends", {"ip": "198.18.2.9", "port": 8080, "weight": 2}),
        ("PUT", "/farms/web/backends/1", {"weight": "3", "priority": 2}),
        ("PUT", "/farms/web/backends/0/maintenance", {"action": "maintenance", "mode": "drain"}),
        ("PUT", "/farms/web", {"ttl": "41", "vport": "81"}),
        ("PUT", "/farms/web", {"algorithm": "roundrobin", "persistence": "ip"}),
        ("DELETE", "/farms/web/backends/1", None),
        ("PUT", "/farms/web/actions", {"action": "stop"}),
    ):
        response = client.request(method, url(path), json=body)
        assert response.status_code in (200, 201), (method, path, response.text)
        assert response.headers["etag"] == etag(client), (method, path)
