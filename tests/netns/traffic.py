"""Client-side traffic helpers: they live in app (`kernlb demo --cluster` uses them too); this
module keeps the names the tests import."""

from __future__ import annotations

from app.net.traffic import (
    Client,
    HeldConnection,
    Hello,
    LoadGenerator,
    LoadReport,
    Outcome,
    describe_error,
    parse_hello,
    tcp_attempt,
    tcp_hello,
    udp_hello,
    udp_probe,
)

__all__ = [
    "Client",
    "HeldConnection",
    "Hello",
    "LoadGenerator",
    "LoadReport",
    "Outcome",
    "describe_error",
    "parse_hello",
    "tcp_attempt",
    "tcp_hello",
    "udp_hello",
    "udp_probe",
]
