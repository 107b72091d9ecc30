"""Host figures for `GET /stats` and `/stats/system/network`, read from /proc.

/proc/net/dev is per network namespace: kernlb reports the interfaces of the namespace it runs
in, which is the one its farms live in.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from app.schemas.views import CPU_FIELDS, InterfaceTraffic, NetworkSnapshot, SystemSnapshot

# Fallback devices that modules create on their own; the original hid them too.
HIDDEN_INTERFACES = frozenset(
    {"lo", "gre0", "gretap0", "erspan0", "ip6gre0", "ip6tnl0", "sit0", "cl_maintenance"}
)


class SystemProbe(Protocol):
    def snapshot(self) -> SystemSnapshot: ...

    def network(self) -> NetworkSnapshot: ...


def parse_meminfo(text: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            result[key.strip()] = int(fields[0])
    return result


def parse_loadavg(text: str) -> tuple[float, float, float]:
    fields = text.split()
    return float(fields[0]), float(fields[1]), float(fields[2])


def parse_cpu_times(text: str) -> tuple[int, ...]:
    """The aggregate `cpu` line: user nice system idle iowait irq softirq (in ticks)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            return tuple(int(v) for v in line.split()[1:8])
    raise ValueError("no aggregate cpu line in /proc/stat")


def cpu_percent(before: tuple[int, ...], after: tuple[int, ...]) -> dict[str, float]:
    deltas = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(deltas)
    if total <= 0:
        shares = dict.fromkeys(CPU_FIELDS, 0.0)
        shares["idle"] = 100.0
    else:
        shares = {name: 100.0 * d / total for name, d in zip(CPU_FIELDS, deltas, strict=True)}
    shares["usage"] = sum(v for k, v in shares.items() if k != "idle")
    return shares


def parse_net_dev(text: str) -> tuple[InterfaceTraffic, ...]:
    result = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or "|" in line:
            continue
        fields = rest.split()
        if len(fields) < 9 or not fields[0].isdigit():
            continue
        name = name.strip()
        if name in HIDDEN_INTERFACES:
            continue
        result.append(InterfaceTraffic(name, int(fields[0]), int(fields[8])))
    return tuple(sorted(result, key=lambda item: item.name))


class ProcSystemProbe:
    """Reads /proc.  CPU shares are measured between two samples of /proc/stat: the previous
    request's when it is recent enough, else two samples `interval` seconds apart."""

    def __init__(
        self,
        *,
        proc: Path = Path("/proc"),
        interval: float = 0.2,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self.interval = interval
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[float, tuple[int, ...]] | None = None

    def _read(self, name: str) -> str:
        return (self.proc / name).read_text()

    def _cpu(self) -> dict[str, float]:
        with self._lock:
            now = self.clock()
            current = parse_cpu_times(self._read("stat"))
            last = self._last
            if last is None or not self.interval <= now - last[0] <= self.max_age:
                time.sleep(self.interval)
                last = (now, current)
                current = parse_cpu_times(self._read("stat"))
                now = self.clock()
            self._last = (now, current)
            return cpu_percent(last[1], current)

    def network(self) -> NetworkSnapshot:
        return NetworkSnapshot(
            hostname=socket.gethostname(),
            date=time.ctime(),
            interfaces=parse_net_dev(self._read("net/dev")),
        )

    def snapshot(self) -> SystemSnapshot:
        return SystemSnapshot(
            hostname=socket.gethostname(),
            date=time.ctime(),
            meminfo_kb=parse_meminfo(self._read("meminfo")),
            load=parse_loadavg(self._read("loadavg")),
            cpu_percent=self._cpu(),
            cores=os.cpu_count() or 1,
            interfaces=parse_net_dev(self._read("net/dev")),
        )
