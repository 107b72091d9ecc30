"""Garbage in every field of every write: always a ZAPI answer, never a crash (zapi31.md §1:
no FastAPI `detail`, no 422; validation failures are 400 with the ZAPI envelope).

The client hook checks the envelope of every answer; these tests add that none is a 5xx.
One test per (endpoint, field) sends every garbage value in turn and reports all offenders.
"""

from __future__ import annotations

from typing import Any

import pytest

from .builders import TestClient, add_backend, create_farm, farm_body, url

GARBAGE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    10**20,
    -(10**20),
    10**400,
    "",
    " ",
    "abc",
    "ünïcödé ✓",
    "a b",
    "line\nbreak",
    "\x00",
    "0x10",
    "1e3",
    "080",
    "65536",
    "198.018.0.10",
    "*",
    "x" * 5000,
    [],
    [1, "a"],
    {},
    {"a": {"b": [None]}},
]

# (method, path, a valid body, the field to spoil)
CASES = [
    *[
        pytest.param(
            "POST", "/farms", farm_body(name="new", vport=81), field, id=f"POST farms {field}"
        )
        for field in ("farmname", "profile", "vip", "vport")
    ],
    *[
        pytest.param(
            "PUT",
            "/farms/web",
            {},
            field,
            id=f"PUT farm {field}",
        )
        for field in (
            "newfarmname",
            "algorithm",
            "persistence",
            "protocol",
            "nattype",
            "ttl",
            "vip",
            "vport",
            "status",
        )
    ],
    pytest.param("PUT", "/farms/web/actions", {"action": "start"}, "action", id="actions action"),
    *[
        pytest.param(
            "POST",
            "/farms/web/backends",
            {"ip": "192.0.2.9", "port": 80},
            field,
            id=f"POST backend {field}",
        )
        for field in ("ip", "port", "weight", "priority", "max_conns")
    ],
    *[
        pytest.param(
            "PUT",
            "/farms/web/backends/0",
            {},
            field,
            id=f"PUT backend {field}",
        )
        for field in ("ip", "port", "weight", "priority", "max_conns")
    ],
    *[
        pytest.param(
            "PUT",
            "/farms/web/backends/0/maintenance",
            {"action": "maintenance"},
            field,
            id=f"maintenance {field}",
        )
        for field in ("action", "mode")
    ],
]


@pytest.mark.parametrize(("method", "path", "valid", "field"), CASES)
def test_garbage_is_answered_never_crashes(
    client: TestClient, method: str, path: str, valid: dict[str, Any], field: str
) -> None:
    create_farm(client)
    add_backend(client)
    crashes = []
    for value in GARBAGE:
        response = client.request(method, url(path), json={**valid, field: value})
        if response.status_code >= 500:
            crashes.append((value if not isinstance(value, str) else value[:20], response.text))
    assert crashes == []
