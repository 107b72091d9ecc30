"""PUT /farms/NAME/fg and the fg* fields (reference §7.3-7.4, zapi31.md §1 and checklist
"Farmguardian"), and the checker seen through the API: health flips, cut_conns, turning it
off, restarts, configuration edits.

Probes are answered by a scripted prober inside the app: no packet leaves the test process.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.health.checks import Check
from app.health.probes import ProbeResult
from app.main import create_app
from app.net.addresses import StaticAddressBook
from app.net.conntrack import NullConntrack
from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import (
    INTERFACES,
    JSON,
    KEY,
    TestClient,
    add_backend,
    backend,
    check_zapi_response,
    create_farm,
    error,
    expect,
    farm_action,
    farm_detail,
    get_farm,
    modify_farm,
    set_maintenance,
    url,
)

DESC = "Modify farm guardian"
B0, B1 = "192.0.2.1", "192.0.2.2"
TCP = "check_tcp -H HOST -p PORT"
# What konsorten/zevenet-lb-go's UpdateService sends when FarmGuardianLogsEnabled is unset.
GO_BODY = {"service": "", "fgenabled": "true", "fglog": "", "fgscript": TCP, "fgtimecheck": 1}


@dataclass
class ScriptedProber:
    """Fails the IPs in `down`, never answers those in `hang`; records (ip, port)."""

    down: set[str] = field(default_factory=set)
    hang: set[str] = field(default_factory=set)
    calls: list[tuple[str, int | None]] = field(default_factory=list)

    async def __call__(self, check: Check, host: str, port: int | None) -> ProbeResult:
        self.calls.append((host, port))
        if host in self.hang:
            await asyncio.sleep(3600)
        if host in self.down:
            return ProbeResult(False, f"TCP connect to {host}:{port} failed: Connection refused")
        return ProbeResult(True, f"TCP connect to {host}:{port} accepted")

    def probed(self, ip: str) -> int:
        return sum(1 for host, _ in self.calls if host == ip)


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    plugin = directory / "check_fake"
    plugin.write_text("#!/bin/sh\nexit 0\n")
    plugin.chmod(0o755)
    return directory


@pytest.fixture
def settings(settings: Settings, plugins: Path) -> Settings:
    return settings.model_copy(update={"fg_plugin_dir": plugins})


@pytest.fixture
def prober() -> ScriptedProber:
    return ScriptedProber()


@contextmanager
def serve_fg(
    settings: Settings, *, nft: FakeNftAdapter, ct: NullConntrack, prober: ScriptedProber
) -> Iterator[TestClient]:
    app = create_app(
        settings,
        nft=nft,
        addresses=StaticAddressBook(INTERFACES),
        conntrack=ct,
        prober=prober,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        client.event_hooks["response"] = [check_zapi_response]
        client.headers.update({"ZAPI_KEY": KEY})
        yield client


@pytest.fixture
def client(
    settings: Settings, nft: FakeNftAdapter, ct: NullConntrack, prober: ScriptedProber
) -> Iterator[TestClient]:
    with serve_fg(settings, nft=nft, ct=ct, prober=prober) as client:
        yield client


# -- helpers -------------------------------------------------------------------------------


def put_fg(client: TestClient, body: JSON, name: str = "web") -> httpx.Response:
    return client.put(url(f"/farms/{name}/fg"), json=body)


def modified(name: str = "web", **params: Any) -> JSON:
    return {
        "description": DESC,
        "message": f"Success, some parameters have been changed in farm guardian in farm {name}.",
        "params": fg_fields(**params),
    }


def fg_fields(
    *,
    fgenabled: str = "false",
    fglog: str = "false",
    fgscript: str = "",
    fgtimecheck: int = 5,
    **extensions: Any,
) -> JSON:
    return {
        "fgenabled": fgenabled,
        "fglog": fglog,
        "fgscript": fgscript,
        "fgtimecheck": fgtimecheck,
        **extensions,
    }


def detail(*, backends: list[JSON], status: str, **fg: Any) -> JSON:
    """GET /farms/web with these farmguardian fields."""
    body = farm_detail(backends=backends, status=status)
    body["params"].update(fg_fields(**fg))
    return body


def wait_until(
    client: TestClient, predicate: Callable[[JSON], bool], *, timeout: float = 5.0
) -> JSON:
    deadline = time.monotonic() + timeout
    while True:
        body = get_farm(client)
        if predicate(body):
            return body
        assert time.monotonic() < deadline, f"not reached within {timeout}s: {body}"
        time.sleep(0.05)


def statuses(body: JSON) -> list[str]:
    return [b["status"] for b in body["backends"]]


def web_with_backends(client: TestClient) -> None:
    create_farm(client)
    add_backend(client, ip=B0)
    add_backend(client, ip=B1)


# -- PUT /farms/NAME/fg --------------------------------------------------------------------


def test_go_client_body_is_accepted_and_read_back_typed(client: TestClient) -> None:
    create_farm(client)
    expect(
        put_fg(client, GO_BODY),
        200,
        modified(fgenabled="true", fgscript=TCP, fgtimecheck=1),
    )
    expect(
        client.get(url("/farms/web")),
        200,
        detail(backends=[], status="critical", fgenabled="true", fgscript=TCP, fgtimecheck=1),
    )


def test_fields_merge_with_the_current_values(client: TestClient) -> None:
    create_farm(client)
    expect(put_fg(client, {"fgtimecheck": "10"}), 200, modified(fgtimecheck=10))
    expect(
        put_fg(client, {"fgscript": "check_http -H HOST -p PORT", "fglog": "true"}),
        200,
        modified(fgtimecheck=10, fglog="true", fgscript="check_http -H HOST -p PORT"),
    )
    expect(
        put_fg(client, {"fgenabled": "true"}),
        200,
        modified(
            fgenabled="true", fgtimecheck=10, fglog="true", fgscript="check_http -H HOST -p PORT"
        ),
    )


def test_an_empty_fglog_leaves_the_flag_as_it_is(client: TestClient) -> None:
    create_farm(client)
    expect(put_fg(client, {"fglog": "true"}), 200, modified(fglog="true"))
    expect(
        put_fg(client, GO_BODY),
        200,
        modified(fgenabled="true", fglog="true", fgscript=TCP, fgtimecheck=1),
    )


def test_a_plugin_that_is_installed_is_accepted(client: TestClient) -> None:
    create_farm(client)
    body = {"fgenabled": "true", "fgscript": "check_fake -H HOST -w 'a b'"}
    expect(
        put_fg(client, body),
        200,
        modified(fgenabled="true", fgscript="check_fake -H HOST -w 'a b'"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"fgtimecheck": 0}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgtimecheck": "abc"}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgtimecheck": -5}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgtimecheck": 1.5}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgtimecheck": True}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgtimecheck": None}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgscript": ""}, "Invalid fgscript, can't be blank."),
        ({"fgscript": 5}, "Invalid fgscript."),
        ({"fgenabled": "yes"}, "Invalid format, please insert a valid fgenabled."),
        ({"fgenabled": True}, "Invalid format, please insert a valid fgenabled."),
        ({"fglog": "no"}, "Invalid format, please insert a valid fglog."),
        ({"fglog": False}, "Invalid format, please insert a valid fglog."),
        # The reference's order of checks.
        ({"fgscript": "", "fgtimecheck": 0}, "Invalid format, please insert a valid fgtimecheck."),
        ({"fgenabled": "x", "fgscript": ""}, "Invalid fgscript, can't be blank."),
        ({"fglog": "x", "fgenabled": "x"}, "Invalid format, please insert a valid fgenabled."),
        ({"foo": 1, "bar": 2, "fgtimecheck": 5}, "Illegal params: bar, foo"),
        ({"fgtimecheck": 0, "interval": 5}, "Invalid format, please insert a valid fgtimecheck."),
        ({}, "Not found any param."),
        ({"service": ""}, "Not found any param."),
        ({"fglog": ""}, "Not found any param."),
        ({"service": "default", "fgtimecheck": 5}, "L4xNAT profile farms do not have services."),
        # Runnable scripts only.
        ({"fgenabled": "true"}, "Invalid fgscript, can't be blank."),
        (
            {"fgscript": "check_missing -H HOST"},
            "Invalid fgscript, the check 'check_missing' is not installed in {plugins}.",
        ),
        ({"fgscript": "check_fake -s 'open"}, "Invalid fgscript, its quoting is unbalanced."),
        (
            {"fgscript": "/bin/sh -c reboot"},
            "Invalid fgscript, the check must be the name of a program in {plugins}.",
        ),
        # Extensions.
        ({"fgrise": 0}, "Invalid format, please insert a valid fgrise."),
        ({"fgfall": 101}, "Invalid format, please insert a valid fgfall."),
        ({"fgtimeout": -1}, "Invalid format, please insert a valid fgtimeout."),
        ({"fgtimeout": 86401}, "Invalid format, please insert a valid fgtimeout."),
        ({"fgcutconns": "yes"}, "Invalid format, please insert a valid fgcutconns."),
    ],
)
def test_invalid_requests_are_refused_and_change_nothing(
    client: TestClient, plugins: Path, body: JSON, message: str
) -> None:
    create_farm(client)
    before = get_farm(client)
    expect(put_fg(client, body), 400, error(DESC, message.format(plugins=plugins)))
    expect(client.get(url("/farms/web")), 200, before)


def test_all_or_nothing(client: TestClient) -> None:
    create_farm(client)
    expect(
        put_fg(client, {"fgtimecheck": 3, "fgscript": TCP, "fgenabled": "maybe"}),
        400,
        error(DESC, "Invalid format, please insert a valid fgenabled."),
    )
    expect(client.get(url("/farms/web")), 200, detail(backends=[], status="critical"))


def test_missing_farm(client: TestClient) -> None:
    expect(
        put_fg(client, GO_BODY, name="nope"),
        404,
        error(DESC, "The farmname nope does not exist."),
    )
    expect(
        client.get(url("/farms/nope/fg")),
        404,
        error("Show farm guardian", "The farmname nope does not exist."),
    )


def test_extensions_are_echoed_and_shown_when_set(client: TestClient) -> None:
    create_farm(client)
    body = {"fgtimecheck": 2, "fgrise": 3, "fgfall": "2", "fgtimeout": 1, "fgcutconns": "true"}
    expect(
        put_fg(client, body),
        200,
        modified(fgtimecheck=2, fgrise=3, fgfall=2, fgtimeout=1, fgcutconns="true"),
    )
    expected = detail(backends=[], status="critical", fgtimecheck=2)
    expected["params"].update(fgrise=3, fgfall=2, fgtimeout=1, fgcutconns="true")
    expect(client.get(url("/farms/web")), 200, expected)

    # Back to the defaults: GET /farms/NAME is the plain v3.1 body again.
    body = {"fgrise": 1, "fgfall": 1, "fgtimeout": 0, "fgcutconns": "false"}
    expect(
        put_fg(client, body),
        200,
        modified(fgtimecheck=2, fgrise=1, fgfall=1, fgtimeout=0, fgcutconns="false"),
    )
    expect(
        client.get(url("/farms/web")), 200, detail(backends=[], status="critical", fgtimecheck=2)
    )


# -- the checker through the API -----------------------------------------------------------


def test_a_failing_backend_goes_down_and_comes_back(
    client: TestClient, prober: ScriptedProber, nft: FakeNftAdapter
) -> None:
    web_with_backends(client)
    prober.down.add(B1)
    batches = len(nft.batches)
    expect(put_fg(client, GO_BODY), 200, modified(fgenabled="true", fgscript=TCP, fgtimecheck=1))

    fg = {"fgenabled": "true", "fgscript": TCP, "fgtimecheck": 1}
    down = wait_until(client, lambda body: statuses(body) == ["up", "down"])
    assert down == detail(
        backends=[backend(0, ip=B0), backend(1, ip=B1, status="down")], status="problem", **fg
    )
    assert len(nft.batches) == batches + 1, "the flip is one nftables batch"
    assert (B1, 8080) in prober.calls, "probes go to the backend's port"

    prober.down.clear()
    up = wait_until(client, lambda body: statuses(body) == ["up", "up"])
    assert up == detail(backends=[backend(0, ip=B0), backend(1, ip=B1)], status="up", **fg)
    assert len(nft.batches) == batches + 2


def test_get_fg_shows_each_backends_last_transition(
    client: TestClient, prober: ScriptedProber
) -> None:
    web_with_backends(client)
    prober.down.add(B1)
    put_fg(client, GO_BODY)
    wait_until(client, lambda body: statuses(body) == ["up", "down"])

    response = client.get(url("/farms/web/fg"))
    body = response.json()
    changed = body["backends"][1]["changed"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", changed), changed
    expect(
        response,
        200,
        {
            "description": "Show farm guardian of web",
            "params": fg_fields(
                fgenabled="true",
                fgscript=TCP,
                fgtimecheck=1,
                fgtimeout=0,
                fgrise=1,
                fgfall=1,
                fgcutconns="false",
            ),
            "backends": [
                {
                    "id": 0,
                    "ip": B0,
                    "port": 8080,
                    "status": "up",
                    "health": "up",
                    "changed": None,
                    "reason": "",
                },
                {
                    "id": 1,
                    "ip": B1,
                    "port": 8080,
                    "status": "down",
                    "health": "down",
                    "changed": changed,
                    "reason": f"TCP connect to {B1}:8080 failed: Connection refused",
                },
            ],
        },
    )


def test_cut_conns_cuts_a_backend_that_goes_down(
    client: TestClient, prober: ScriptedProber, ct: NullConntrack
) -> None:
    web_with_backends(client)
    put_fg(client, {**GO_BODY, "fgcutconns": "true"})
    prober.down.add(B0)
    wait_until(client, lambda body: statuses(body) == ["down", "up"])
    assert ct.flushed == [1], "backend 0 (mark 1) is cut"


def test_without_cut_conns_nothing_is_cut(
    client: TestClient, prober: ScriptedProber, ct: NullConntrack
) -> None:
    web_with_backends(client)
    prober.down.add(B0)
    put_fg(client, GO_BODY)
    wait_until(client, lambda body: statuses(body) == ["down", "up"])
    assert ct.flushed == []


def test_turning_farmguardian_off_brings_its_down_backends_back(
    client: TestClient, prober: ScriptedProber
) -> None:
    web_with_backends(client)
    prober.down.add(B1)
    put_fg(client, GO_BODY)
    wait_until(client, lambda body: statuses(body) == ["up", "down"])

    expect(
        put_fg(client, {"fgenabled": "false"}),
        200,
        modified(fgscript=TCP, fgtimecheck=1),
    )
    assert statuses(get_farm(client)) == ["up", "up"]
    assert client.get(url("/farms/web/fg")).json()["backends"][1]["reason"] == (
        "farmguardian disabled"
    )
    probes = len(prober.calls)
    time.sleep(1.5)
    assert len(prober.calls) == probes, "still probing with farmguardian off"


def test_health_is_kept_across_a_restart(
    settings: Settings, nft: FakeNftAdapter, ct: NullConntrack
) -> None:
    first = ScriptedProber(down={B1})
    with serve_fg(settings, nft=nft, ct=ct, prober=first) as client:
        web_with_backends(client)
        put_fg(client, GO_BODY)
        wait_until(client, lambda body: statuses(body) == ["up", "down"])

    # B1 does not answer the new process: it must not be marked up meanwhile.
    second = ScriptedProber(hang={B1})
    with serve_fg(settings, nft=FakeNftAdapter(), ct=ct, prober=second) as client:
        assert statuses(get_farm(client)) == ["up", "down"]
        time.sleep(1.5)  # past a timeout: unanswered probes are failures
        assert statuses(get_farm(client)) == ["up", "down"]
        assert second.probed(B1) >= 1


def test_configuration_edits_keep_health(client: TestClient, prober: ScriptedProber) -> None:
    web_with_backends(client)
    prober.down.add(B1)
    put_fg(client, {**GO_BODY, "fgrise": 100})  # once down, B1 stays down through this test
    wait_until(client, lambda body: statuses(body) == ["up", "down"])
    prober.down.clear()

    modify_farm(client, algorithm="roundrobin", persistence="ip")
    assert statuses(get_farm(client)) == ["up", "down"]
    client.put(url("/farms/web/backends/1"), json={"weight": 3})
    assert statuses(get_farm(client)) == ["up", "down"]
    set_maintenance(client, "web", 1, mode="drain")
    assert statuses(get_farm(client)) == ["up", "maintenance"]
    set_maintenance(client, "web", 1, action="up")
    assert statuses(get_farm(client)) == ["up", "down"]
    put_fg(client, {"fgscript": "check_http -H HOST -p PORT"})
    assert statuses(get_farm(client)) == ["up", "down"]


def test_backends_in_maintenance_and_stopped_farms_are_not_probed(
    client: TestClient, prober: ScriptedProber
) -> None:
    web_with_backends(client)
    set_maintenance(client, "web", 1, mode="drain")
    put_fg(client, GO_BODY)
    wait_until(client, lambda _: prober.probed(B0) >= 2)
    assert prober.probed(B1) == 0

    farm_action(client, "web", "stop")
    time.sleep(1.2)  # the checker re-reads farms and backends every second
    probes = len(prober.calls)
    time.sleep(1.5)
    assert len(prober.calls) == probes, "a stopped farm is still probed"
