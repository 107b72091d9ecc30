"""Self-test of the harness: traffic through a hand-written ruleset in the LB namespace (no
kernlb), and how kernlb servers are started (the worker's zygote, and the real command line).

If these fail, the traffic tests' failures say nothing about kernlb.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.net.lab import Lab, kernlb_serve_argv

from .kernlb import REPO_ROOT, KernlbServer
from .topology import CLIENT_IP, LB_BACKEND_SIDE_IP, VIP1, VIP2, Topology, nft, ns_exec, sh
from .traffic import Client
from .zygote import SETUP_FAILED, Zygote, ZygoteProcess

pytestmark = pytest.mark.netns

# VIP1 tcp/80 and udp/53 -> b1/b2 (numgen), masqueraded; VIP1 tcp/81 -> b1:8080, client kept.
RULESET = f"""
table inet harness {{
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {VIP1} meta l4proto {{ tcp, udp }} th dport {{ 53, 80 }} ct mark set 0x80000000 \
dnat ip to numgen inc mod 2 map {{ 0 : 198.18.2.1, 1 : 198.18.2.2 }}
        ip daddr {VIP1} tcp dport 81 dnat ip to 198.18.2.1:8080
    }}
    chain post {{
        type nat hook postrouting priority srcnat; policy accept;
        ct mark 0x80000000 masquerade
    }}
}}
"""


@pytest.fixture
def harness_rules(topo: Topology) -> Iterator[None]:
    nft(topo.lb, "-f", "-", stdin=RULESET)
    yield
    nft(topo.lb, "delete", "table", "inet", "harness")


def test_distribution_nat_and_ports(topo: Topology, client: Client, harness_rules: None) -> None:
    seq = client.sequence(VIP1, 80, 40)
    names = [h.backend for h in seq]
    assert all(a != b for a, b in itertools.pairwise(names)), names
    assert {h.peer_ip for h in seq} == {LB_BACKEND_SIDE_IP}
    assert {h.local_port for h in seq} == {80}

    hello = client.hello(VIP1, 81, source="198.18.1.7")
    assert (hello.backend, hello.peer_ip, hello.local_port) == ("b1", "198.18.1.7", 8080)

    counts = client.backends_of(VIP1, 80, 200, sources=[CLIENT_IP, "198.18.1.2"])
    assert counts == {"b1": 100, "b2": 100}

    refused = client.attempt(VIP1, 443)
    assert refused.error is not None and "ECONNREFUSED" in refused.error
    refused = client.attempt(VIP2, 80)
    assert refused.error is not None and "ECONNREFUSED" in refused.error


def test_udp_reply_comes_from_vip(client: Client, harness_rules: None) -> None:
    seen = set()
    for _ in range(20):
        hello, source = client.udp(VIP1, 53)
        assert source == (VIP1, 53)
        seen.add(hello.backend)
    assert seen == {"b1", "b2"}


def test_held_connection_and_conntrack_flush(
    topo: Topology, client: Client, harness_rules: None
) -> None:
    held = client.hold(VIP1, 80, backend="b2")
    try:
        for _ in range(3):
            held.exchange()
        # Re-point new connections to b1 only, then drop the conntrack state: the held
        # connection's next segment is scheduled anew (to b1, which resets it).
        nft(topo.lb, "flush", "chain", "inet", "harness", "pre")
        nft(
            topo.lb,
            "add",
            "rule",
            "inet",
            "harness",
            "pre",
            "ip",
            "daddr",
            VIP1,
            "tcp",
            "dport",
            "80",
            "ct",
            "mark",
            "set",
            "0x80000000",
            "dnat",
            "ip",
            "to",
            "198.18.2.1",
        )
        held.exchange()  # conntrack keeps the established NAT mapping
        if shutil.which("conntrack") is None:
            pytest.skip("conntrack tool not installed")
        sh(ns_exec(topo.lb, "conntrack", "-F"))
        outcome = held.exchange_outcome(timeout=3)
        assert outcome.startswith(("ConnectionResetError", "EOFError", "BrokenPipeError")), outcome
    finally:
        held.close()


def test_load_generator_counts(client: Client, harness_rules: None) -> None:
    with client.load(VIP1, 80, sources=[CLIENT_IP, "198.18.1.2", "198.18.1.3"]) as load:
        load.event("warm-up")
        load.wait_for(300)
    report = load.stop()
    print(report.summary())
    assert report.total >= 300
    assert not report.failures
    assert set(report.per_backend()) == {"b1", "b2"}


def test_foreign_tables_present(topo: Topology) -> None:
    tables = topo.foreign_tables()
    assert "counter packets 0 bytes 0 drop" in tables["inet hostfw"]
    assert "198.18.19.255.2" not in tables["ip foo"]
    assert "198.19.255.2" in tables["ip foo"]


# --- starting kernlb -----------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The process's start time (/proc/PID/stat field 22), None once it is gone: a PID the
    system gave to a new process does not pass for the old one."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_the_real_command_line_serves(topo: Topology, tmp_path: Path) -> None:
    """`ip netns exec LB python -m app serve ...`, the entry point itself, whatever
    KERNLB_TEST_ZYGOTE says (the other tests' servers are forked by the zygote)."""
    server = KernlbServer(topo.lb, tmp_path, use_zygote=False)
    try:
        server.start()
        assert isinstance(server.proc, subprocess.Popen)
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:4] == [sys.executable.encode(), b"-m", b"app", b"serve"], cmdline
        assert server.api.request("GET", "/farms").expect(200)["params"] == []
        server.stop()
        assert server.proc.returncode == -signal.SIGTERM  # uvicorn re-raises it once stopped
    finally:
        server.close()


def test_a_forked_server_is_inside_the_namespace_like_ip_netns_exec(
    topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment of the request, not the zygote's: a body limit the server reads from it.
    monkeypatch.setenv("KERNLB_BODY_LIMIT", "2048")
    server = KernlbServer(topo.lb, tmp_path, use_zygote=True)
    try:
        server.start()  # ready: it answers on 127.0.0.1 inside the LB namespace
        proc = server.proc
        assert isinstance(proc, ZygoteProcess)
        pid = proc.pid
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{topo.lb}").st_ino
        # A sysfs of its own, describing the namespace's links (as `ip netns exec` mounts it).
        links = sorted(os.listdir(f"/proc/{pid}/root/sys/class/net"))
        assert links == sorted(sh(ns_exec(topo.lb, "ls", "/sys/class/net")).stdout.split())
        assert "br0" in links
        assert links != sorted(os.listdir("/sys/class/net"))
        # As the Popen it replaces: own session, stdin from /dev/null, output to the log, the
        # cwd and the worker's environment at the moment of the start.
        assert os.getsid(pid) == pid
        assert Path(f"/proc/{pid}/comm").read_text() == "kernlb-serve\n"  # in ps and top
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/1") == str(server.log_path)
        assert os.readlink(f"/proc/{pid}/fd/2") == str(server.log_path)
        assert os.readlink(f"/proc/{pid}/cwd") == str(REPO_ROOT)
        # /proc/PID/environ is the block the zygote was started with (a forked child's
        # os.environ changes do not show there), so the request's environment is proven by
        # what the server does with it: a body over KERNLB_BODY_LIMIT is refused.
        big = {"farmname": "x" * 3000, "profile": "l4xnat", "vip": "198.18.0.10", "vport": 80}
        assert server.api.request("POST", "/farms", big).status == 413
        # The same body under the limit reaches validation (and creates nothing).
        assert server.api.request("POST", "/farms", {"farmname": "x" * 300}).status == 400
        assert "Application startup complete" in server.log_path.read_text()
        server.stop()
        assert proc.returncode == -signal.SIGTERM  # as the real command (test above)
        assert _start_time(pid) is None
    finally:
        server.close()


class _BadArgvServer(KernlbServer):
    def argv(self) -> list[str]:
        return [*super().argv(), "--no-such-option"]


def test_a_server_that_cannot_start_reports_its_exit_status_and_log(
    topo: Topology, tmp_path: Path
) -> None:
    server = _BadArgvServer(topo.lb, tmp_path, use_zygote=True)
    try:
        with pytest.raises(RuntimeError) as failure:
            server.start()
        assert "kernlb exited with rc=2:" in str(failure.value)
        assert "unrecognized arguments: --no-such-option" in str(failure.value)
    finally:
        server.close()


def test_zygote_exit_statuses_and_close(netns_capable: None, tmp_path: Path) -> None:
    """A zygote of the test's own (not the worker's), its servers in a namespace of their own:
    the statuses it reports, and nothing of it left once closed."""
    argv = kernlb_serve_argv(
        port=8444, db=tmp_path / "kernlb.db", state_dir=tmp_path, resync_interval=0, key="k"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lab = Lab()
    try:
        ns = lab.add_netns(f"klbz{os.getpid()}")
        zygote = Zygote()
        zygote_pid = zygote.proc.pid
        try:
            # The zygote itself lives in the worker's namespace.
            own = os.stat(f"/proc/{os.getpid()}/ns/net").st_ino
            assert os.stat(f"/proc/{zygote_pid}/ns/net").st_ino == own
            bad = zygote.spawn(ns, ["serve", "--bogus"], env=env, cwd=REPO_ROOT, log=tmp_path / "b")
            assert bad.wait(timeout=30) == 2
            assert "unrecognized arguments: --bogus" in (tmp_path / "b").read_text()

            nowhere = f"klbnone{os.getpid()}"  # no such namespace (`ip netns exec` fails too)
            lost = zygote.spawn(nowhere, argv[3:], env=env, cwd=REPO_ROOT, log=tmp_path / "l")
            assert lost.wait(timeout=30) == SETUP_FAILED
            assert f"/run/netns/{nowhere}" in (tmp_path / "l").read_text()

            killed = zygote.spawn(ns, argv[3:], env=env, cwd=REPO_ROOT, log=tmp_path / "k")
            killed.kill()
            assert killed.wait(timeout=30) == -signal.SIGKILL
            killed.kill()  # reaped: nothing is signalled (its PID may be another's now)

            left = zygote.spawn(ns, argv[3:], env=env, cwd=REPO_ROOT, log=tmp_path / "r")
            started = _start_time(left.pid)
            assert started is not None and left.poll() is None
        finally:
            zygote.close()
        assert zygote.proc.returncode == 0
        assert _start_time(zygote_pid) is None
        assert left.returncode == -signal.SIGKILL  # killed and reaped by the closing zygote
        assert _start_time(left.pid) != started
    finally:
        lab.close()
