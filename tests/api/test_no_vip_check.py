"""`kernlb serve --no-vip-check` (KERNLB_VIP_CHECK=false): farms on addresses the host does not
hold (yet) can be created, changed and started; the kernel gets their rules at once."""

from __future__ import annotations

from app.nft.fake import FakeNftAdapter
from app.settings import Settings

from .builders import (
    NOT_LOCAL,
    VIP,
    Serve,
    TestClient,
    add_backend,
    create_farm,
    farm_body,
    url,
)


def test_farms_on_addresses_the_host_lacks(serve: Serve, settings: Settings) -> None:
    nft = FakeNftAdapter()
    with serve(nft=nft, settings=settings.model_copy(update={"vip_check": False})) as client:
        created = create_farm(client, vip=NOT_LOCAL)
        assert created["params"]["vip"] == NOT_LOCAL
        add_backend(client)
        dispatch = nft.elements("disp4")
        assert any(NOT_LOCAL in key for key in dispatch), dispatch
        create_farm(client, name="local", vip=VIP, vport=81)
        moved = client.put(url("/farms/local"), json={"vip": "203.0.113.11"})
        assert moved.status_code == 200, moved.text
        for action in ("stop", "start"):
            answer = client.put(url("/farms/web/actions"), json={"action": action})
            assert answer.status_code == 200, answer.text
        assert any(NOT_LOCAL in key for key in nft.elements("disp4"))


def test_the_check_is_on_by_default(client: TestClient) -> None:
    refused = client.post(url("/farms"), json=farm_body(vip=NOT_LOCAL))
    assert refused.status_code == 400
    assert refused.json()["message"] == "The vip IP must exist in some interface."
