"""/proc parsing for GET /stats (app/stats/system.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.schemas.views import InterfaceTraffic
from app.stats.system import (
    ProcSystemProbe,
    cpu_percent,
    parse_cpu_times,
    parse_loadavg,
    parse_meminfo,
    parse_net_dev,
)

HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets ...\n"
)
# name: rx bytes, 7 more receive fields, tx bytes, 7 more transmit fields
NET_DEV = HEADER + "".join(
    f"{name:>6}:{rx} 1 0 0 0 0 0 0 {tx} 1 0 0 0 0 0 0\n"
    for name, rx, tx in (
        ("lo", 3193, 3193),
        ("eth1", 1048576, 2097152),
        ("eth0", 216259081, 441871),
        ("sit0", 0, 0),
    )
)
STAT = "cpu  100 0 50 800 10 5 5 0 0 0\ncpu0 50 0 25 400 5 2 3 0 0 0\nintr 1 2 3\n"


def test_net_dev_skips_loopback_and_fallback_devices_and_sorts() -> None:
    assert parse_net_dev(NET_DEV) == (
        InterfaceTraffic("eth0", 216259081, 441871),
        InterfaceTraffic("eth1", 1048576, 2097152),
    )


def test_meminfo_and_loadavg() -> None:
    text = "MemTotal:       24684084 kB\nMemFree:        22338448 kB\nHugePages_Total:       0\n"
    assert parse_meminfo(text) == {"MemTotal": 24684084, "MemFree": 22338448, "HugePages_Total": 0}
    assert parse_loadavg("5.32 5.08 3.06 4/117 22214\n") == (5.32, 5.08, 3.06)


def test_cpu_shares_between_two_samples() -> None:
    before = parse_cpu_times(STAT)
    assert before == (100, 0, 50, 800, 10, 5, 5)
    after = (130, 0, 60, 850, 10, 0 + 5, 5)
    shares = cpu_percent(before, after)
    assert shares == pytest.approx(
        {
            "user": 33.333,
            "nice": 0,
            "sys": 11.111,
            "idle": 55.556,
            "iowait": 0,
            "irq": 0,
            "softirq": 0,
            "usage": 44.444,
        },
        abs=1e-3,
    )
    idle = cpu_percent(before, before)  # no time passed: all idle, nothing used
    assert (idle["idle"], idle["usage"]) == (100.0, 0.0)


def test_probe_reads_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "dev").write_text(NET_DEV)
    (tmp_path / "meminfo").write_text("MemTotal: 2048 kB\nMemFree: 1024 kB\n")
    (tmp_path / "loadavg").write_text("0.50 0.25 0.10 1/100 42\n")
    (tmp_path / "stat").write_text(STAT)
    probe = ProcSystemProbe(proc=tmp_path, interval=0.0)
    snapshot = probe.snapshot()
    assert snapshot.meminfo_kb == {"MemTotal": 2048, "MemFree": 1024}
    assert snapshot.load == (0.5, 0.25, 0.1)
    assert snapshot.cpu_percent["idle"] == 100.0  # the same sample twice
    assert [i.name for i in snapshot.interfaces] == ["eth0", "eth1"]
    assert [i.name for i in probe.network().interfaces] == ["eth0", "eth1"]
