"""Connection counts by backend mark from a real conntrack table (app/net/ctnetlink.py and
NetlinkConnectionCounter): full dumps and kernel-filtered dumps, both families."""

from __future__ import annotations

import pytest

from tests.conftest import require_netns
from tests.kernel.netns import run_in, scenario_output, scratch_namespace

pytestmark = pytest.mark.netns

ENTRIES = [
    # (conntrack -I arguments, mark)
    ("-p tcp -s 198.18.1.1 -d 198.18.0.1 --sport 1001 --dport 80 --state ESTABLISHED", "0x5"),
    ("-p tcp -s 198.18.1.1 -d 198.18.0.1 --sport 1002 --dport 80 --state SYN_SENT", "0x5"),
    ("-p tcp -s 198.18.1.1 -d 198.18.0.1 --sport 1003 --dport 80 --state TIME_WAIT", "0x5"),
    ("-p tcp -s 2001:2::1 -d 2001:2::2 --sport 1004 --dport 80 --state ESTABLISHED", "0x5"),
    ("-p udp -s 198.18.1.1 -d 198.18.0.1 --sport 1005 --dport 53", "0x80000006"),
    ("-p tcp -s 198.18.1.1 -d 198.18.0.1 --sport 1006 --dport 80 --state ESTABLISHED", "0x7"),
    ("-p tcp -s 198.18.1.1 -d 198.18.0.1 --sport 1007 --dport 80 --state ESTABLISHED", "0x0"),
]

SCENARIO = r"""
from app.net.conntrack import MarkCounts, NetlinkConnectionCounter
counter = NetlinkConnectionCounter()
five = MarkCounts(established=2, pending=1, active=3)  # v4 + v6 established, a SYN; TIME_WAIT idle
six = MarkCounts(established=1, pending=0, active=1)  # UDP, flag bits above the backend mark
seven = MarkCounts(established=1, pending=0, active=1)
assert counter.count_by_mark() == {5: five, 6: six, 7: seven}, counter.count_by_mark()
assert counter.count_by_mark({5}) == {5: five}
assert counter.count_by_mark({6, 0x80000009}) == {6: six}   # flag bits ignored; 9 has none
assert counter.count_by_mark(set()) == {}
assert counter.count_by_mark(set(range(1, 100))) == {5: five, 6: six, 7: seven}  # full dump
print("OK")
"""


def test_counts_by_mark_full_and_filtered() -> None:
    require_netns()
    with scratch_namespace() as ns:
        for args, mark in ENTRIES:
            result = run_in(
                ns, "conntrack", "-I", *args.split(), "--timeout", "300", "--mark", mark
            )
            assert result.returncode == 0, result.stderr
        scenario_output(ns, SCENARIO)
