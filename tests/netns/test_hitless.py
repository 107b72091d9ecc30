"""dataplane.md §4.15: edits under continuous new-connection load refuse nothing and keep an
established connection that the edit does not require dropping."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .kernlb import Api
from .topology import BACKEND_IPS, CLIENT_IPS, VIP1
from .traffic import Client

pytestmark = pytest.mark.netns

LOAD_SOURCES = CLIENT_IPS[1:5]
PER_EDIT = 25  # new connections made after each edit before the next one


def test_edits_under_load_refuse_nothing(api: Api, client: Client) -> None:
    ids = api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})
    # b1 and b2 are never removed by the edits below: their connections must survive them all.
    held = [client.hold(VIP1, 80, backend="b1"), client.hold(VIP1, 80, backend="b2")]

    def add_b3() -> None:
        ids["b3"] = api.add_backend("web", BACKEND_IPS["b3"], weight=2)

    def remove_b3() -> None:
        # Operators drain before removing; removal then drops nothing that is still in use.
        api.maintenance("web", ids["b3"], mode="drain")
        load.wait_for(PER_EDIT)
        api.delete_backend("web", ids.pop("b3"))

    edits: list[tuple[str, Callable[[], object]]] = [
        ("add b3", add_b3),
        ("weight b2=3", lambda: api.edit_backend("web", ids["b2"], weight=3)),
        ("weight b1=2", lambda: api.edit_backend("web", ids["b1"], weight=2)),
        ("algorithm roundrobin", lambda: api.edit_farm("web", algorithm="roundrobin")),
        ("algorithm hash_srcip", lambda: api.edit_farm("web", algorithm="hash_srcip")),
        (
            "algorithm hash_srcip_srcport",
            lambda: api.edit_farm("web", algorithm="hash_srcip_srcport"),
        ),
        ("algorithm symhash", lambda: api.edit_farm("web", algorithm="symhash")),
        ("algorithm weight", lambda: api.edit_farm("web", algorithm="weight")),
        ("persistence ip", lambda: api.edit_farm("web", persistence="ip", ttl=30)),
        ("persistence none", lambda: api.edit_farm("web", persistence="")),
        ("nattype dnat", lambda: api.edit_farm("web", nattype="dnat")),
        ("nattype nat", lambda: api.edit_farm("web", nattype="nat")),
        ("vport 80,443", lambda: api.edit_farm("web", vport="80,443")),
        ("vport 79:81", lambda: api.edit_farm("web", vport="79:81")),
        ("vport 80,8080", lambda: api.edit_farm("web", vport="80,8080")),
        ("vport 80", lambda: api.edit_farm("web", vport="80")),
        ("weight b2=1", lambda: api.edit_backend("web", ids["b2"], weight=1)),
        ("remove b3", remove_b3),
    ]

    load = client.load(
        VIP1, 80, sources=LOAD_SOURCES, max_connections=4000, max_seconds=120, pause=0.01
    )
    held_failures: list[str] = []
    try:
        load.start()
        load.wait_for(50)
        for round_no in (1, 2):
            for label, edit in edits:
                load.event(f"{label} (round {round_no})")
                edit()
                load.wait_for(PER_EDIT)
                for conn in held:
                    outcome = conn.exchange_outcome()
                    if outcome != "alive":
                        held_failures.append(
                            f"{conn.hello.backend}: {label} (round {round_no}): {outcome}"
                        )
                if held_failures:
                    break
        load.event("edits done")
        load.wait_for(50)
    finally:
        report = load.stop()
        for conn in held:
            conn.close()

    print(f"\nedits under load: {2 * len(edits)} edits; {report.summary()}")
    assert report.total >= 2 * len(edits) * PER_EDIT
    assert not held_failures, f"held connections dropped: {held_failures}"
    assert not report.failures, f"connections failed during edits: {report.summary()}"
    assert set(report.per_backend()) == {"b1", "b2", "b3"}
