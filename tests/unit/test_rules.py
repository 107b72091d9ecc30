from __future__ import annotations

import pytest

from app.domain.model import BackendSpec, FarmSpec, PortRange
from app.domain.rules import (
    PortSpecError,
    farm_status,
    farms_overlap,
    format_vport,
    lowest_free_id,
    parse_vport,
    priority_level,
    schedulable,
)


def backend(
    zapi_id: int,
    *,
    priority: int = 1,
    maintenance: bool = False,
    health: str = "up",
    weight: int = 1,
) -> BackendSpec:
    return BackendSpec(
        mark=100 + zapi_id,
        zapi_id=zapi_id,
        ip=f"198.18.2.{zapi_id + 1}",
        port=None,
        weight=weight,
        priority=priority,
        maintenance=maintenance,
        health=health,
    )


def farm(
    *,
    vip: str = "198.18.0.10",
    vport: str = "80",
    protocol: str = "tcp",
    backends: tuple[BackendSpec, ...] = (),
    running: bool = True,
) -> FarmSpec:
    return FarmSpec(
        id=1,
        name="f",
        vip=vip,
        ports=parse_vport(vport),
        protocol=protocol,
        running=running,
        backends=backends,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", None),
        ("80", (PortRange(80, 80),)),
        ("80,443", (PortRange(80, 80), PortRange(443, 443))),
        ("1000:2000", (PortRange(1000, 2000),)),
        ("80,8080:8090", (PortRange(80, 80), PortRange(8080, 8090))),
        ("65535", (PortRange(65535, 65535),)),
    ],
)
def test_parse_vport_accepts_zapi_multiport(text: str, expected: object) -> None:
    assert parse_vport(text) == expected
    assert format_vport(parse_vport(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "65536",
        "080",
        "80,",
        ",80",
        "80 ,443",
        "a",
        "2000:1000",
        "80,80",
        "70:90,80",
        "1:2:3",
        "-1",
        "80-90",
    ],
)
def test_parse_vport_rejects(text: str) -> None:
    with pytest.raises(PortSpecError):
        parse_vport(text)


def test_priority_level_follows_zevenet_rule() -> None:
    b1, b2, b3 = backend(0), backend(1), backend(2, priority=2)
    assert priority_level([b1, b2, b3]) == 1
    assert schedulable((b1, b2, b3)) == (b1, b2)
    down = backend(0, maintenance=True)
    assert priority_level([down, b2, b3]) == 2
    assert schedulable((down, b2, b3)) == (b2, b3)
    both_down = (backend(0, health="down"), backend(1, maintenance=True), b3)
    assert priority_level(both_down) == 3
    assert schedulable(both_down) == (b3,)


def test_priority_level_cascades_through_empty_levels() -> None:
    # Level 2 has nobody; the level only rises for unavailable backends within it.
    items = (backend(0, maintenance=True), backend(1, priority=3))
    assert priority_level(items) == 2
    assert schedulable(items) == ()


@pytest.mark.parametrize(
    ("backends", "running", "expected"),
    [
        ((), True, "critical"),
        ((backend(0, maintenance=True),), True, "critical"),
        ((backend(0),), True, "up"),
        ((backend(0), backend(1, health="down")), True, "problem"),
        ((backend(0), backend(1, maintenance=True)), True, "maintenance"),
        ((backend(0), backend(1, health="down"), backend(2, maintenance=True)), True, "problem"),
        ((backend(0),), False, "down"),
    ],
)
def test_farm_status(backends: tuple[BackendSpec, ...], running: bool, expected: str) -> None:
    assert farm_status(farm(backends=backends, running=running)) == expected


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (farm(vport="80"), farm(vport="80"), True),
        (farm(vport="80"), farm(vport="81"), False),
        (farm(vport="1000:2000"), farm(vport="1500"), True),
        (farm(vport="80"), farm(vport="80", vip="198.18.0.11"), False),
        (farm(vport="80"), farm(vport="80", protocol="udp"), False),
        (farm(vport="80", protocol="all"), farm(vport="80", protocol="udp"), True),
        (farm(vport="*"), farm(vport="80"), False),  # wildcard never shadows specific
        (farm(vport="*"), farm(vport="*"), True),
        (farm(vport="*", protocol="all"), farm(vport="*"), False),
        (farm(vport="*", protocol="all"), farm(vport="*", protocol="all"), True),
        (farm(vip="2001:2::10"), farm(vip="2001:0002::10"), True),
    ],
)
def test_farms_overlap(a: FarmSpec, b: FarmSpec, overlap: bool) -> None:
    assert farms_overlap(a, b) is overlap
    assert farms_overlap(b, a) is overlap


def test_lowest_free_id_reuses_gaps() -> None:
    assert lowest_free_id([]) == 0
    assert lowest_free_id([0, 1]) == 2
    assert lowest_free_id([0, 2]) == 1
