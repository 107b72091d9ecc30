from __future__ import annotations

import pytest

from app.domain.values import as_int, as_ip, is_farm_name, vport_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8080, 8080),
        ("8080", 8080),
        (0, 0),
        ("0", 0),
        (True, None),
        (-1, None),
        ("-1", None),
        ("8e3", None),
        (8.0, None),
        ("", None),
        (None, None),
        ("12345678901", None),
        ([1], None),
    ],
)
def test_as_int(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("198.18.0.1", "198.18.0.1"),
        ("2001:0002::1", "2001:2::1"),
        ("198.018.0.1", None),
        ("198.18.0", None),
        ("", None),
        (None, None),
        (3321, None),
        ("198.18.0.1/32", None),
    ],
)
def test_as_ip(value: object, expected: str | None) -> None:
    assert as_ip(value) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("web", True),
        ("Web-01", True),
        ("web_01", False),
        ("web 01", False),
        ("", False),
        ("wéb", False),
        (12, False),
        (None, False),
    ],
)
def test_is_farm_name(value: object, ok: bool) -> None:
    assert is_farm_name(value) is ok


def test_vport_text() -> None:
    assert vport_text(80) == "80"
    assert vport_text("80,443") == "80,443"
    assert vport_text(True) is None
    assert vport_text(None) is None
