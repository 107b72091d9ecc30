"""Server-side faults (issue 11 item 8): a database that cannot be written answers 503 and
leaves the kernel as it was; conntrack unreachable makes only the statistics a clear 503."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Engine, event

from app.nft.fake import FakeNftAdapter

from .builders import TestClient, add_backend, create_farm, expect, url
from .fakes import FakeCounter

CANNOT_WRITE = "The database cannot be written (read-only or full): nothing was changed."


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.reconciler.session_factory.kw["bind"]  # type: ignore[attr-defined]
    return engine


def on_every_new_connection(client: TestClient, pragma: str) -> None:
    engine = engine_of(client)

    def apply(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(pragma)

    event.listen(engine, "connect", apply)
    engine.dispose()  # pooled connections predate the fault


def test_a_read_only_database_is_503_and_the_kernel_is_untouched(
    client: TestClient, nft: FakeNftAdapter
) -> None:
    create_farm(client)
    add_backend(client)
    state, batches = copy.deepcopy(nft.state), len(nft.batches)
    on_every_new_connection(client, "PRAGMA query_only=ON")  # as a read-only file would
    for method, path, body in (
        (
            "POST",
            "/farms",
            {"farmname": "other", "profile": "l4xnat", "vip": "198.18.0.10", "vport": 81},
        ),
        ("PUT", "/farms/web", {"ttl": 30}),
        ("POST", "/farms/web/backends", {"ip": "192.0.2.7"}),
        ("DELETE", "/farms/web", None),
    ):
        response = client.request(method, url(path), json=body)
        expect(
            response,
            503,
            {"description": f"{method} {path}", "error": "true", "message": CANNOT_WRITE},
        )
    assert nft.state == state and len(nft.batches) == batches
    farm = client.get(url("/farms/web"))  # reads keep working
    assert farm.status_code == 200 and farm.json()["params"]["ttl"] == 60


def test_a_full_disk_is_503_and_the_kernel_is_as_before(
    client: TestClient, nft: FakeNftAdapter
) -> None:
    create_farm(client)
    with engine_of(client).connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    on_every_new_connection(client, f"PRAGMA max_page_count={pages}")
    for port in range(81, 400):
        state = copy.deepcopy(nft.state)
        response = client.post(
            url("/farms/web/backends"), json={"ip": f"192.0.2.{port % 250 + 1}", "port": port}
        )
        if response.status_code != 201:
            break
    else:
        raise AssertionError("the database never filled up")
    expect(
        response,
        503,
        {"description": "POST /farms/web/backends", "error": "true", "message": CANNOT_WRITE},
    )
    assert nft.state == state, "the kernel kept the change the database could not store"


def test_conntrack_unavailable_fails_only_the_statistics(
    client: TestClient, counter: FakeCounter
) -> None:
    create_farm(client)
    add_backend(client)
    counter.fail = True
    message = (
        "Connection statistics are unavailable: conntrack cannot be read over netlink "
        "(OSError: conntrack: operation not permitted). Farms keep working."
    )
    for path in ("/stats/farms", "/stats/farms/web", "/stats/farms/web/backends"):
        expect(
            client.get(url(path)),
            503,
            {"description": "Get farm stats", "error": "true", "message": message},
        )
    assert client.get(url("/farms/web")).status_code == 200
    assert client.put(url("/farms/web"), json={"ttl": 30}).status_code == 200
    create_farm(client, name="web2", vport=81)
