"""Hostile request bodies: each answered with a ZAPI envelope (413/400/408), never a 500,
and database and kernel stay as they were."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from app.api.limits import MAX_JSON_DEPTH, BodyGuard
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import Serve, TestClient, create_farm, error, expect, farm_body, url

LIMIT = 256 * 1024
FARMS = url("/farms")
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def small(serve: Serve, nft: FakeNftAdapter, settings: Settings) -> Iterator[TestClient]:
    with serve(nft=nft, settings=settings.model_copy(update={"body_limit": LIMIT})) as client:
        create_farm(client)
        yield client


def unchanged(client: TestClient, nft: FakeNftAdapter, batches: int) -> None:
    farms = client.get(FARMS).json()["params"]
    assert [f["farmname"] for f in farms] == ["web"]
    assert len(nft.batches) == batches


def test_the_default_limit_is_one_mebibyte() -> None:
    assert Settings().body_limit == 1024 * 1024


def test_a_declared_length_over_the_limit_is_413(small: TestClient, nft: FakeNftAdapter) -> None:
    batches = len(nft.batches)
    body = b'{"farmname": "' + b"a" * (LIMIT + 10) + b'"}'
    response = small.post(FARMS, content=body, headers=JSON_HEADERS)
    expect(
        response,
        413,
        error("POST /farms", f"The request body exceeds the limit of {LIMIT} bytes."),
    )
    assert response.headers["connection"] == "close"
    unchanged(small, nft, batches)


def test_a_chunked_body_over_the_limit_is_413_and_not_read_to_the_end(
    small: TestClient, nft: FakeNftAdapter
) -> None:
    batches = len(nft.batches)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 16 MiB if it were all read
            sent += 16 * 1024
            yield b" " * (16 * 1024)

    response = small.post(FARMS, content=chunks(), headers=JSON_HEADERS)
    expect(
        response,
        413,
        error("POST /farms", f"The request body exceeds the limit of {LIMIT} bytes."),
    )
    unchanged(small, nft, batches)


HOSTILE = {
    "deep nesting": (
        b"[" * 100_000 + b"]" * 100_000,
        f"The body nests deeper than {MAX_JSON_DEPTH} levels.",
    ),
    "nesting just over the depth": (
        b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
        f"The body nests deeper than {MAX_JSON_DEPTH} levels.",
    ),
    "invalid utf-8": (b'{"farmname": "w\xffeb"}', "The request body is not valid JSON."),
    "NaN": (b'{"farmname": "web2", "vport": NaN}', "NaN is not a JSON number."),
    "Infinity": (b'{"vport": -Infinity}', "-Infinity is not a JSON number."),
    "duplicate keys": (
        b'{"farmname": "a", "farmname": "b"}',
        "The key 'farmname' appears twice in one object.",
    ),
    "10,000-digit integer": (
        b'{"vport": ' + b"9" * 10_000 + b"}",
        "A number has 10000 characters (at most 40).",
    ),
    "10,000-digit float": (
        b'{"vport": 1.' + b"5" * 10_000 + b"}",
        "A number has 10002 characters (at most 40).",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_json_is_a_400(small: TestClient, nft: FakeNftAdapter, name: str) -> None:
    body, message = HOSTILE[name]
    batches = len(nft.batches)
    for path in (FARMS, url("/farms/web"), url("/farms/web/backends")):
        method = "PUT" if path.endswith("/web") else "POST"
        response = small.request(method, path, content=body, headers=JSON_HEADERS)
        description = f"{method} {path.removeprefix(url(''))}"
        expect(response, 400, error(description, message))
    unchanged(small, nft, batches)


def test_ordinary_bodies_still_work(small: TestClient) -> None:
    response = small.post(FARMS, json=farm_body(name="web2", vport=81))
    assert response.status_code == 201, response.text
    nested = {"farmname": "web3", "profile": "l4xnat", "vip": "198.18.0.10", "vport": "82"}
    response = small.post(FARMS, json=nested)
    assert response.status_code == 201, response.text


def test_an_unauthenticated_body_is_not_read(anonymous: TestClient) -> None:
    response = anonymous.post(FARMS, content=b"[" * 100_000, headers=JSON_HEADERS)
    assert response.status_code == 401


def test_a_body_that_never_arrives_is_cut_after_the_timeout() -> None:
    reached: list[str] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append("app")

    async def receive() -> dict[str, Any]:
        if not sent and not reached:
            await asyncio.sleep(3600)  # a client dribbling nothing more
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = BodyGuard(app, limit=LIMIT, timeout=0.2)
    scope = {"type": "http", "method": "POST", "path": "/zapi/v3.1/zapi.cgi/farms", "headers": []}
    asyncio.run(asyncio.wait_for(guard(scope, receive, send), timeout=5))
    assert reached == []
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["body"] == (
        b'{"description":"POST /farms","error":"true",'
        b'"message":"The request body was not received in time."}'
    )


def test_zapi_40_keeps_its_own_invalid_json_answer(small: TestClient) -> None:
    response = small.post(
        "/zapi/v4.0/zapi.cgi/farms", content=b'{"a": 1, "a": 2}', headers=JSON_HEADERS
    )
    expect(response, 400, {"error": "true", "message": "The body does not look a valid JSON"})
