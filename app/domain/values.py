"""Coercion of ZAPI input values: integers may arrive as JSON numbers or digit strings."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_DIGITS = re.compile(r"[0-9]+")  # used with fullmatch: "80\n" is not digits
MAX_INT = 2**31 - 1  # what every integer column and nftables field here can hold
FARM_NAME = re.compile(r"[a-zA-Z0-9-]+")  # used with fullmatch


def as_int(value: Any) -> int | None:
    """A non-negative integer from an int or a digit string; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_INT else None
    if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) <= 10:
        number = int(value)
        return number if number <= MAX_INT else None
    return None


def as_ip(value: Any) -> str | None:
    """A canonical IP address string, or None (leading zeros and garbage are refused)."""
    if not isinstance(value, str) or "%" in value:  # no IPv6 zone index in nftables
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def ip_family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def is_farm_name(value: Any) -> bool:
    return isinstance(value, str) and bool(FARM_NAME.fullmatch(value))


def vport_text(value: Any) -> str | None:
    """The vport as text (accepts an int); None when it is neither text nor a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return None
