"""Stand-ins for the host in API tests: connection counts, /proc figures, links."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from app.main import create_app
from app.net.addresses import StaticAddressBook
from app.net.conntrack import MarkCounts, NullConntrack
from app.net.links import Address, Link, StaticLinks
from app.nft.fake import FakeNftAdapter
from app.schemas.views import InterfaceTraffic, NetworkSnapshot, SystemSnapshot
from app.settings import Settings

from .builders import INTERFACES
from .engines import worker_engines

HOSTNAME = "lb1"
DATE = "Thu Nov 26 10:00:00 2026"
ETH0_MAC = "02:00:00:00:00:01"
ETH1_MAC = "02:00:00:00:00:02"
ETH0_IP = "198.18.4.1"  # eth0 198.18.4.1/24: virtual interfaces go in 198.18.4.0/24
GATEWAY = "198.18.4.254"


@dataclass
class FakeCounter:
    """Conntrack counts by backend mark, as a test sets them."""

    counts: dict[int, MarkCounts] = field(default_factory=dict)
    calls: int = 0
    fail: bool = False

    def count_by_mark(self, marks: Collection[int] | None = None) -> dict[int, MarkCounts]:
        self.calls += 1
        if self.fail:
            raise OSError("conntrack: operation not permitted")
        return {
            mark: MarkCounts(c.established, c.pending, c.active)
            for mark, c in self.counts.items()
            if marks is None or mark in marks
        }

    def table_size(self) -> int | None:
        return None  # unknown: the load loop samples every interval

    def set(self, mark: int, *, established: int = 0, pending: int = 0) -> None:
        self.counts[mark] = MarkCounts(established, pending, established + pending)


TRAFFIC = (InterfaceTraffic("eth0", 48_296_309, 66_038_087), InterfaceTraffic("eth1", 0, 1_048_576))


@dataclass
class FixedSystemProbe:
    meminfo_kb: dict[str, int] = field(
        default_factory=lambda: {
            "MemTotal": 2_048_000,
            "MemFree": 1_024_000,
            "Buffers": 10_240,
            "Cached": 512_000,
            "SwapTotal": 1_024_000,
            "SwapFree": 1_023_488,
            "SwapCached": 0,
        }
    )
    load: tuple[float, float, float] = (0.5, 0.25, 0.1)
    cpu_percent: dict[str, float] = field(
        default_factory=lambda: {
            "user": 12.5,
            "nice": 0.0,
            "sys": 2.5,
            "idle": 84.0,
            "iowait": 1.0,
            "irq": 0.0,
            "softirq": 0.0,
            "usage": 16.0,
        }
    )
    cores: int = 2
    interfaces: tuple[InterfaceTraffic, ...] = TRAFFIC

    def snapshot(self) -> SystemSnapshot:
        return SystemSnapshot(
            hostname=HOSTNAME,
            date=DATE,
            meminfo_kb=dict(self.meminfo_kb),
            load=self.load,
            cpu_percent=dict(self.cpu_percent),
            cores=self.cores,
            interfaces=self.interfaces,
        )

    def network(self) -> NetworkSnapshot:
        return NetworkSnapshot(hostname=HOSTNAME, date=DATE, interfaces=self.interfaces)


def host_links() -> StaticLinks:
    """lo, eth0 (up, 198.18.4.1/24, default gateway) and eth1 (down, no address)."""
    return StaticLinks(
        link_list=[
            Link(name="lo", mac="00:00:00:00:00:00", up=True, loopback=True),
            Link(name="eth0", mac=ETH0_MAC, up=True),
            Link(name="eth1", mac=ETH1_MAC, up=False),
        ],
        address_list=[
            Address(link="lo", label="lo", ip="127.0.0.1", prefixlen=8),
            Address(link="eth0", label="eth0", ip=ETH0_IP, prefixlen=24),
            Address(link="eth0", label="eth0", ip="2001:2::1", prefixlen=64),
        ],
        gateway_map={"eth0": GATEWAY},
    )


def fake_app(settings: Settings, **overrides: Any) -> FastAPI:
    """The app on fakes only: no kernel, no host conntrack, addresses, links or /proc figures.
    `overrides` replace single fakes (e.g. `nft=` to inspect batches, `counter=` to set loads).
    SQLite engines share the worker's compiled statements (`engines.py`)."""
    fakes: dict[str, Any] = {
        "engine_factory": worker_engines,
        "nft": FakeNftAdapter(),
        "addresses": StaticAddressBook(INTERFACES),
        "conntrack": NullConntrack(),
        "counter": FakeCounter(),
        "links": host_links(),
        "system_probe": FixedSystemProbe(),
    }
    return create_app(settings, **(fakes | overrides))
