"""OPTIONS on every path, without a key, and the CORS headers of reference §1.5."""

from __future__ import annotations

import re

import pytest

from app.openapi_export import spec_paths

from .builders import BASE_V3, KEY, TestClient, url

PATHS = sorted(spec_paths())  # the document's paths; building it cost every worker ~0.4 s
EVERY_ANSWER = {
    "access-control-allow-credentials": "true",
    "cache-control": "no-cache",
    "pragma": "no-cache",
    "expires": "Thu, 01 Jan 1970 00:00:00 GMT",
}
PREFLIGHT = {
    "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
    "access-control-allow-headers": (
        "ZAPI_KEY, Authorization, Set-cookie, Content-Type, X-Requested-With"
    ),
}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.parametrize("path", [*PATHS, "/zapi/v3.1/zapi.cgi/no/such/route", "/anything"])
def test_options_answers_every_path_without_a_key(anonymous: TestClient, path: str) -> None:
    response = anonymous.options(concrete(path))
    assert (response.status_code, response.json()) == (200, {})
    headers = {k: response.headers.get(k) for k in (*EVERY_ANSWER, *PREFLIGHT)}
    assert headers == {**EVERY_ANSWER, **PREFLIGHT}
    assert response.headers["access-control-allow-origin"] == "https://testserver/"


def test_options_under_the_v3_alias(anonymous: TestClient) -> None:
    response = anonymous.options(url("/stats/farms", base=BASE_V3))
    assert (response.status_code, response.json()) == (200, {})


@pytest.mark.parametrize(
    "path", ["/stats/farms", "/interfaces/virtual", "/system/users/zapi", "/interfaces/nic"]
)
def test_every_answer_carries_the_headers(anonymous: TestClient, path: str) -> None:
    for headers, origin in (({"ZAPI_KEY": KEY}, "*"), ({}, "https://testserver/")):
        response = anonymous.get(url(path), headers=headers)
        assert {k: response.headers.get(k) for k in EVERY_ANSWER} == EVERY_ANSWER
        assert response.headers["access-control-allow-origin"] == origin


def test_a_key_header_makes_the_origin_a_wildcard_even_when_empty(anonymous: TestClient) -> None:
    response = anonymous.get(url("/farms"), headers={"ZAPI_KEY": ""})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
