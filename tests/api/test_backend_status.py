"""One rule for a backend's status: the farm view, the stats and the metrics agree.

A dsr backend the LB cannot resolve at L2 is `undefined` everywhere, takes no traffic, and
its connections do not count in the farm's totals.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.db import repositories as repo
from app.net.neighbours import Target
from app.nft.fake import FakeNftAdapter
from app.reconcile.uow import UnitOfWork

from .builders import Serve, TestClient, add_backend, create_farm, modify_farm, url
from .fakes import FakeCounter
from .test_metrics import parse, value

GONE = "192.0.2.2"  # no neighbour entry: the LB cannot forward frames to it


class FakeNeighbours:
    def __init__(self, unreachable: set[str]) -> None:
        self.unreachable_ips = unreachable

    def unreachable(self, targets: Iterable[Target]) -> set[Target]:
        return {t for t in targets if t[0] in self.unreachable_ips}


def test_an_unresolvable_dsr_backend_is_undefined_everywhere(
    serve: Serve, counter: FakeCounter
) -> None:
    nft = FakeNftAdapter()
    with serve(nft=nft, neighbours=FakeNeighbours({GONE})) as client:
        create_farm(client)
        modify_farm(client, nattype="dsr")
        add_backend(client, ip="192.0.2.1", port=None)
        add_backend(client, ip=GONE, port=None)
        up_mark, gone_mark = backend_marks(client)
        counter.set(up_mark, established=3)
        counter.set(gone_mark, established=5)

        farm = client.get(url("/farms/web")).json()
        assert [b["status"] for b in farm["backends"]] == ["up", "undefined"]
        assert farm["params"]["status"] == "up"  # an undefined backend counts for nothing
        listed = client.get(url("/farms/web/backends")).json()["params"]
        assert [b["status"] for b in listed] == ["up", "undefined"]
        guarded = client.get(url("/farms/web/fg")).json()["backends"]
        assert [b["status"] for b in guarded] == ["up", "undefined"]

        stats = client.get(url("/stats/farms/web")).json()["backends"]
        assert [(b["status"], b["established"]) for b in stats] == [("up", 3), ("undefined", 5)]
        (total,) = client.get(url("/stats/farms")).json()["farms"]
        assert (total["status"], total["established"]) == ("up", 3)

        client.event_hooks["response"] = []  # /metrics is text
        metrics = parse(client.get("/metrics").text)
        labels = {"farm": "web", "backend": "1"}
        assert value(metrics, "kernlb_backend_up", **labels) == 0.0
        assert value(metrics, "kernlb_backend_status", **labels, kernlb_backend_status="undefined")
        assert value(metrics, "kernlb_farm_established_connections", farm="web") == 3.0

        # ... and it is out of the scheduler: every slot goes to the backend that is up.
        assert set(nft.elements("dslots4", family="netdev").values()) == {"192.0.2.1"}


def backend_marks(client: TestClient) -> tuple[int, int]:
    uow: UnitOfWork = client.app.state.farms.uow  # type: ignore[attr-defined]
    with uow.read() as session:
        farm = repo.get_farm(session, "web")
        assert farm is not None
        first, second = farm.backends
        return first.id, second.id
