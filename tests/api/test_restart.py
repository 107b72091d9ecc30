"""A restart keeps everything: the database is the source of truth and the initial sync
rebuilds the kernel from it in one batch (zapi31.md §1; STYLE "reconcile from the whole
current state").  The API key survives too, stored only as a hash (zapi31.md §1 "auth")."""

from __future__ import annotations

import copy
from pathlib import Path

from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import (
    KEY,
    VIP6,
    VIP_ALIAS,
    Serve,
    TestClient,
    add_backend,
    create_farm,
    expect,
    farm_action,
    modify_farm,
    set_maintenance,
    snapshot,
    url,
)

UNAUTHORIZED = {"message": "Authorization required"}


def populate(client: TestClient) -> None:
    create_farm(client, name="web", vport="80,443")
    add_backend(client, "web", ip="192.0.2.1", port=8080, weight=3)
    add_backend(client, "web", ip="192.0.2.2", port=None, priority=2, max_conns=50)
    add_backend(client, "web", ip="192.0.2.3")
    client.delete(url("/farms/web/backends/1"))
    assert set_maintenance(client, "web", 2, mode="cut").status_code == 200
    modify_farm(client, "web", algorithm="hash_srcip", persistence="ip", ttl=300)
    create_farm(client, name="dns", vport=53)
    modify_farm(client, "dns", protocol="udp", nattype="dnat")
    add_backend(client, "dns", ip="192.0.2.53", port=53)
    farm_action(client, "dns", "stop")
    create_farm(client, name="any", vip=VIP_ALIAS, vport="*")
    add_backend(client, "any", ip="192.0.2.7")
    create_farm(client, name="v6", vip=VIP6, vport=8443)
    add_backend(client, "v6", ip="2001:db8::7", port=443)


def test_farms_and_kernel_come_back_after_a_restart(serve: Serve, nft: FakeNftAdapter) -> None:
    with serve(nft=nft) as client:
        populate(client)
        before = snapshot(client)
    kernel = copy.deepcopy(nft.state)
    assert kernel.chains and kernel.sets

    fresh = FakeNftAdapter()  # e.g. after a reboot: an empty ruleset
    with serve(nft=fresh) as client:
        assert len(fresh.batches) == 1  # one atomic initial sync
        assert snapshot(client) == before
        assert fresh.state == kernel
        assert fresh.summary() == nft.summary()
        # ... and keeps working from there: ids continue where they were.
        assert add_backend(client, "web", ip="192.0.2.9") == 1
        assert farm_action(client, "dns", "start") == {"action": "start", "status": "up"}


def test_a_restart_over_a_live_ruleset_leaves_it_as_it_is(
    serve: Serve, nft: FakeNftAdapter
) -> None:
    with serve(nft=nft) as client:
        populate(client)
        before = snapshot(client)
    kernel = copy.deepcopy(nft.state)
    with serve(nft=nft) as client:
        assert snapshot(client) == before
        assert nft.state == kernel


def test_the_key_survives_a_restart_stored_only_as_a_hash(
    serve: Serve, settings: Settings, tmp_path: Path
) -> None:
    with serve(nft=FakeNftAdapter()) as client:
        create_farm(client)
    assert KEY.encode() not in (tmp_path / "k.db").read_bytes()

    # No key configured this time: the stored one still opens the door.
    keyless = settings.model_copy(update={"zapi_key": ""})
    with serve(nft=FakeNftAdapter(), settings=keyless, key=None) as client:
        expect(client.get(url("/farms/web"), headers={"ZAPI_KEY": "other"}), 401, UNAUTHORIZED)
        assert client.get(url("/farms/web"), headers={"ZAPI_KEY": KEY}).status_code == 200

    # A key given by the operator replaces the stored one.
    rotated = settings.model_copy(update={"zapi_key": "other"})
    with serve(nft=FakeNftAdapter(), settings=rotated, key=None) as client:
        expect(client.get(url("/farms/web"), headers={"ZAPI_KEY": KEY}), 401, UNAUTHORIZED)
        assert client.get(url("/farms/web"), headers={"ZAPI_KEY": "other"}).status_code == 200
