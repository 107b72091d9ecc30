"""Farmguardian with real traffic (issue 5; dataplane.md behaviours 5 and 9): a backend whose
server stops is taken out of rotation within two check intervals under continuous load, and
comes back when it returns; sticky clients leave it at once; a real monitoring plugin decides
like the backend; health survives a restart of kernlb; native probes agree with the plugins.

The figures (detection time, client failures) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.health.checks import CommandCheck, parse_check
from app.health.probes import ProbeResult, run_check
from app.tls import ensure_self_signed

from .kernlb import Api, KernlbServer
from .topology import (
    BACKEND_IPS,
    CLIENT_IPS,
    VIP1,
    Topology,
    nft,
    ns_exec,
    stop_process,
    wait_for_line,
)
from .traffic import Client, LoadReport, Outcome

pytestmark = pytest.mark.netns

HERE = Path(__file__).resolve().parent
PLUGINS = Path("/usr/lib/nagios/plugins")
INTERVAL = 1  # fgtimecheck, seconds
TCP_CHECK = "check_tcp -H HOST -p PORT"
LOAD_SOURCES = CLIENT_IPS[1:5]
DEAD = ("ConnectionResetError", "EOFError", "BrokenPipeError")


def require_plugins(*names: str) -> None:
    missing = [n for n in names if not os.access(PLUGINS / n, os.X_OK)]
    if not missing:
        return
    reason = f"{', '.join(missing)} missing in {PLUGINS} (apt-get install monitoring-plugins-basic)"
    if os.environ.get("KERNLB_REQUIRE_NETNS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def set_fg(api: Api, farm: str, **fields: Any) -> dict[str, Any]:
    return api.request("PUT", f"/farms/{farm}/fg", fields).expect(200)


def guard(api: Api, farm: str, script: str = TCP_CHECK, **fields: Any) -> None:
    set_fg(api, farm, fgenabled="true", fgscript=script, fgtimecheck=INTERVAL, **fields)


def status_of(api: Api, farm: str, backend_id: int) -> str:
    backends = api.get_farm(farm)["backends"]
    status: str = next(b["status"] for b in backends if b["id"] == backend_id)
    return status


def wait_status(api: Api, farm: str, backend_id: int, status: str, *, timeout: float) -> float:
    """Poll GET /farms/NAME until the backend shows `status`; the moment it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        if status_of(api, farm, backend_id) == status:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"backend {backend_id} not {status} within {timeout}s")
        time.sleep(0.02)


def health_reason(api: Api, farm: str, backend_id: int) -> str:
    body = api.request("GET", f"/farms/{farm}/fg").expect(200)
    reason: str = next(b["reason"] for b in body["backends"] if b["id"] == backend_id)
    return reason


def between(report: LoadReport, start: float, end: float = float("inf")) -> list[Outcome]:
    """Connections in flight at some moment of [start, end)."""
    return [o for o in report.outcomes if o.started < end and o.started + o.elapsed >= start]


def started_between(report: LoadReport, start: float, end: float = float("inf")) -> list[Outcome]:
    return [o for o in report.outcomes if start <= o.started < end]


def backends_of(outcomes: list[Outcome]) -> set[str]:
    return {o.hello.backend for o in outcomes if o.hello is not None}


# -- a backend stops and comes back, under load --------------------------------------------


def test_a_stopped_backend_leaves_rotation_within_two_intervals_and_returns(
    topo: Topology, api: Api, client: Client
) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}, "b3": {}})
    guard(api, "web")
    load = client.load(
        VIP1, 80, sources=LOAD_SOURCES, max_connections=20000, max_seconds=90, pause=0.01
    )
    try:
        load.start()
        load.wait_for(100)
        load.event("b2 stopped")
        stopped = time.monotonic()
        topo.stop_backend("b2")
        seen_down = wait_status(api, "web", ids["b2"], "down", timeout=5 * INTERVAL)
        load.event("b2 down in the API")
        load.wait_for(400)

        load.event("b2 restarted")
        restarted = time.monotonic()
        topo.start_backends(["b2"])
        seen_up = wait_status(api, "web", ids["b2"], "up", timeout=5 * INTERVAL)
        load.event("b2 up in the API")
        load.wait_for(400)
    finally:
        report = load.stop()

    detection, recovery = seen_down - stopped, seen_up - restarted
    window = between(report, stopped, seen_down)
    failed_in_window = [o for o in window if not o.ok]
    while_down = started_between(report, seen_down, restarted)
    after_up = started_between(report, seen_up)
    print(
        f"\nfarmguardian (fgtimecheck {INTERVAL}s, check_tcp native): "
        f"b2 stopped -> down in the API after {detection:.2f}s; "
        f"{len(failed_in_window)} of {len(window)} client connections failed in that window "
        f"({sorted({o.error for o in failed_in_window})}); "
        f"b2 restarted -> up after {recovery:.2f}s\n  {report.summary()}"
    )
    assert detection <= 2 * INTERVAL, f"detection took {detection:.2f}s"
    assert recovery <= 2 * INTERVAL, f"recovery took {recovery:.2f}s"
    assert len(failed_in_window) == len(report.failures), (
        f"connections failed outside the detection window: {report.summary()}"
    )
    assert len(while_down) >= 300 and all(o.ok for o in while_down)
    assert "b2" not in backends_of(while_down), "a connection reached b2 after it was down"
    assert all(o.ok for o in after_up)
    assert "b2" in backends_of(after_up), "b2 gets no traffic after it came back"
    assert backends_of(while_down) == {"b1", "b3"}


def test_a_sticky_client_of_a_dead_backend_reconnects_at_once(
    topo: Topology, api: Api, client: Client
) -> None:
    api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        persistence="ip",
        ttl=120,
    )
    ids = {b["ip"]: b["id"] for b in api.get_farm("web")["backends"]}
    guard(api, "web")
    src = CLIENT_IPS[8]
    first = [h.backend for h in client.sequence(VIP1, 80, 10, source=src)]
    assert len(set(first)) == 1, f"persistence did not stick: {first}"
    sticky = first[0]

    stopped = time.monotonic()
    topo.stop_backend(sticky)
    seen = wait_status(api, "web", ids[BACKEND_IPS[sticky]], "down", timeout=5 * INTERVAL)
    outcome = client.attempt(VIP1, 80, source=src)
    after = [h.backend for h in client.sequence(VIP1, 80, 10, source=src)]
    print(
        f"\nsticky client {src} of {sticky}: {sticky} down after {seen - stopped:.2f}s; "
        f"next connection -> {outcome.hello.backend if outcome.hello else outcome.error} "
        f"in {outcome.elapsed * 1000:.1f} ms, then {after}"
    )
    assert outcome.hello is not None, f"the sticky client's next connection failed: {outcome}"
    assert outcome.hello.backend != sticky
    assert outcome.elapsed < 0.9, f"next connection took {outcome.elapsed:.2f}s (retransmit?)"
    assert set(after) == {outcome.hello.backend}, f"the client does not stick again: {after}"


# -- a real monitoring plugin ----------------------------------------------------------------


def test_a_monitoring_plugin_passes_and_fails_as_the_backend_does(
    topo: Topology, api: Api, client: Client
) -> None:
    require_plugins("check_tcp")
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}, "b3": {}})
    # -w/-c are not probed natively: this runs /usr/lib/nagios/plugins/check_tcp.
    script = "check_tcp -H HOST -p PORT -w 2 -c 3"
    assert isinstance(parse_check(script, PLUGINS), CommandCheck)
    guard(api, "web", script)
    time.sleep(1.5 * INTERVAL)
    assert [b["status"] for b in api.get_farm("web")["backends"]] == ["up", "up", "up"]

    stopped = time.monotonic()
    topo.stop_backend("b3")
    seen_down = wait_status(api, "web", ids["b3"], "down", timeout=5 * INTERVAL)
    down_reason = health_reason(api, "web", ids["b3"])
    counts = client.backends_of(VIP1, 80, 90)

    restarted = time.monotonic()
    topo.start_backends(["b3"])
    seen_up = wait_status(api, "web", ids["b3"], "up", timeout=5 * INTERVAL)
    up_reason = health_reason(api, "web", ids["b3"])
    counts_back = client.backends_of(VIP1, 80, 90)
    print(
        f"\ncheck_tcp plugin: b3 down after {seen_down - stopped:.2f}s ({down_reason!r}), "
        f"up after {seen_up - restarted:.2f}s ({up_reason!r}); while down {dict(counts)}, "
        f"back {dict(counts_back)}"
    )
    assert seen_down - stopped <= 2 * INTERVAL
    assert down_reason == (
        f"check_tcp: connect to address {BACKEND_IPS['b3']} and port 80: Connection refused"
    )
    assert counts["b3"] == 0, counts
    assert up_reason.startswith("check_tcp: TCP OK"), up_reason
    assert counts_back["b3"] >= 10, counts_back


# -- established connections and cut_conns -------------------------------------------------


def block_port(ns: str, port: int) -> None:
    """Drop a port in a backend namespace: the check times out, traffic on 80 goes on."""
    nft(
        ns,
        "-f",
        "-",
        stdin=f"""
table inet fgtest {{
    chain input {{
        type filter hook input priority filter; policy accept;
        tcp dport {port} drop
    }}
}}
""",
    )


def unblock(ns: str) -> None:
    nft(ns, "delete", "table", "inet", "fgtest")


def test_down_keeps_established_connections_and_cut_conns_cuts_them(
    topo: Topology, api: Api, client: Client
) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    guard(api, "web", "check_tcp -H HOST -p 5000")  # the check's port, not the traffic's
    b1 = topo.backends["b1"].ns

    held = client.hold(VIP1, 80, backend="b1")
    cut = None
    try:
        started = time.monotonic()
        block_port(b1, 5000)
        seen = wait_status(api, "web", ids["b1"], "down", timeout=5 * INTERVAL)
        print(f"\ncheck port dropped: b1 down after {seen - started:.2f}s (probe timeout)")
        assert seen - started <= 2 * INTERVAL + 0.5
        assert health_reason(api, "web", ids["b1"]) == (
            f"no answer from {BACKEND_IPS['b1']}:5000 within {INTERVAL} s"
        )
        assert held.exchange_outcome() == "alive", "down dropped an established connection"
        assert client.backends_of(VIP1, 80, 40) == {"b2": 40}
        assert held.exchange_outcome() == "alive"

        unblock(b1)
        wait_status(api, "web", ids["b1"], "up", timeout=5 * INTERVAL)
        set_fg(api, "web", fgcutconns="true")
        cut = client.hold(VIP1, 80, backend="b1")
        other = client.hold(VIP1, 80, backend="b2")
        block_port(b1, 5000)
        wait_status(api, "web", ids["b1"], "down", timeout=5 * INTERVAL)
        outcome = cut.exchange_outcome(timeout=3)
        print(f"with fgcutconns: held connection to b1 -> {outcome}")
        assert outcome.startswith(DEAD), f"cut_conns left b1's connection {outcome!r}"
        assert other.exchange_outcome() == "alive", "cutting b1 broke a connection to b2"
        other.close()
    finally:
        held.close()
        if cut is not None:
            cut.close()
        nft(b1, "delete", "table", "inet", "fgtest", check=False)


# -- restart -------------------------------------------------------------------------------


def test_health_survives_a_restart_of_kernlb(
    topo: Topology, kernlb: KernlbServer, api: Api, client: Client
) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}, "b3": {}})
    guard(api, "web")
    topo.stop_backend("b2")
    wait_status(api, "web", ids["b2"], "down", timeout=5 * INTERVAL)

    load = client.load(
        VIP1, 80, sources=LOAD_SOURCES, max_connections=20000, max_seconds=90, pause=0.01
    )
    try:
        load.start()
        load.wait_for(100)
        load.event("kernlb stopped")
        kernlb.stop()
        load.wait_for(100)
        load.event("kernlb started")
        started = time.monotonic()
        kernlb.start()
        ready = time.monotonic() - started
        statuses = [b["status"] for b in api.get_farm("web")["backends"]]
        load.wait_for(300)
        time.sleep(2 * INTERVAL)
        load.wait_for(100)
    finally:
        report = load.stop()
    print(f"\nrestart with b2 down (ready after {ready:.1f}s): {report.summary()}")
    assert statuses == ["up", "down", "up"], "the restarted kernlb forgot b2 was down"
    assert status_of(api, "web", ids["b2"]) == "down"
    assert not report.failures, f"connections failed across the restart: {report.summary()}"
    assert "b2" not in report.per_backend()


# -- native probes agree with the plugins --------------------------------------------------

HTTP_PORT, HTTPS_PORT, CLOSED_PORT = 7000, 7443, 7001

PARITY_SCRIPTS = [
    f"check_tcp -H HOST -p {HTTP_PORT}",
    f"check_tcp -H HOST -p {CLOSED_PORT}",
    f"check_http -I HOST -p {HTTP_PORT}",
    f"check_http -H HOST -p {HTTP_PORT}",
    f"check_http -I HOST -p {HTTP_PORT} -e 200",
    f"check_http -I HOST -p {HTTP_PORT} -e 200 -u /missing",
    f"check_http -I HOST -p {HTTP_PORT} -u /missing",
    f"check_http -I HOST -p {HTTP_PORT} -e 404 -u /missing",
    f"check_http -I HOST -p {HTTP_PORT} -u /error",
    f"check_http -I HOST -p {HTTP_PORT} -u /redirect",
    f"check_http -I HOST -p {HTTP_PORT} -e 200 -u /redirect",
    f"check_http -I HOST -p {HTTP_PORT} -e 200,302 -u /redirect",
    f"check_http -I HOST -p {HTTP_PORT} -e 200 -s 'hello from b1'",
    f"check_http -I HOST -p {HTTP_PORT} -e 200 -s 'hello from b2'",
    f"check_http -I HOST -H www.example.com -p {HTTP_PORT} -u /vhost -e 200",
    f"check_http -I HOST -p {HTTP_PORT} -u /vhost -e 200",
    f"check_http -I HOST -p {HTTPS_PORT} -S -e 200",
    f"check_http -I HOST -p {HTTPS_PORT} -S -e 200 -s 'hello from b1' -t 5",
    f"check_http -I HOST -p {HTTP_PORT} -S -e 200",
    f"check_http -I HOST -p {HTTPS_PORT} -e 200",
    f"check_http -I HOST -p {CLOSED_PORT}",
    # The traffic backend answers a line that is not HTTP, and keeps the connection open.
    "check_http -I HOST -p 80 -t 2",
]


@pytest.fixture
def web_server(topo: Topology, tmp_path: Path) -> Iterator[None]:
    cert, key = ensure_self_signed(tmp_path / "tls")
    proc = subprocess.Popen(
        ns_exec(
            topo.backends["b1"].ns,
            sys.executable,
            str(HERE / "http_server.py"),
            "--name=b1",
            f"--port={HTTP_PORT}",
            f"--tls-port={HTTPS_PORT}",
            f"--cert={cert}",
            f"--key={key}",
        ),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_line(proc, "ready", timeout=15)
        yield
    finally:
        stop_process(proc)


def test_native_probes_agree_with_the_plugins(topo: Topology, web_server: None) -> None:
    require_plugins("check_tcp", "check_http")
    assert shutil.which("ip")
    host = BACKEND_IPS["b1"]
    assert topo.lb_exec is not None

    def probe(check: Any) -> ProbeResult:
        # Runs in a thread of the LB namespace: sockets and plugin processes live there.
        return asyncio.run(asyncio.wait_for(run_check(check, host, None), timeout=10))

    rows = []
    print("\nnative probe, plugin:")
    for script in PARITY_SCRIPTS:
        native = parse_check(script, PLUGINS)
        assert not isinstance(native, CommandCheck), f"{script!r} is not probed natively"
        argv = shlex.split(script)
        plugin = CommandCheck(PLUGINS / argv[0], tuple(argv[1:]))
        ours = topo.lb_exec.run(probe, native)
        theirs = topo.lb_exec.run(probe, plugin)
        rows.append((script, ours, theirs))
        print(f"\n{'ok ' if ours.ok else 'bad'} {'ok ' if theirs.ok else 'bad'} {script}")
        print(f"        native: {ours.reason}\n        plugin: {theirs.reason}")
    disagree = [script for script, ours, theirs in rows if ours.ok != theirs.ok]
    assert not disagree, f"native probes and plugins disagree on {disagree}"
    assert {ours.ok for _, ours, _ in rows} == {True, False}
