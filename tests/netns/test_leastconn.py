"""leastconn (issue 3, item 3; dataplane.md §2 "Schedulers"): a loaded backend gets fewer.

kernlb counts each backend's active connections in conntrack every 2 s and gives new
connections to backends in proportion to ``weight / (1 + connections)``. The test loads b1 with
30 held connections through the farm (b2 and b3 drained meanwhile, so that every one lands on
b1), brings b2 and b3 back, waits for a load refresh and counts where new connections go; then
closes the held connections and checks that the split evens out again.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .kernlb import Api
from .topology import CLIENT_IPS, VIP1
from .traffic import Client, HeldConnection

pytestmark = pytest.mark.netns

HELD = 30
NEW = 150
REFRESH = 2.0  # kernlb's load period (README "Schedulers")
SETTLE = REFRESH + 1.5  # one full period after the change, plus margin


def _hold(client: Client, n: int) -> list[HeldConnection]:
    held: list[HeldConnection] = []
    try:
        for i in range(n):
            src = CLIENT_IPS[i % len(CLIENT_IPS)]
            held.append(client.executor.run(HeldConnection.open, VIP1, 80, source=src))
    except BaseException:
        for conn in held:
            conn.close()
        raise
    return held


def test_leastconn_steers_new_connections_away_from_a_loaded_backend(
    api: Api, client: Client
) -> None:
    ids = api.setup_farm(
        "web",
        vip=VIP1,
        vport="80",
        backends={"b1": {}, "b2": {}, "b3": {}},
        algorithm="leastconn",
    )
    assert api.get_farm("web")["params"]["algorithm"] == "leastconn"

    # Unloaded, leastconn splits like weight: about a third each.
    even = client.backends_of(VIP1, 80, NEW, sources=CLIENT_IPS)
    print(f"leastconn, no load, {NEW} connections: {dict(even)}")
    # Binomial(150, 1/3): mean 50, sd 5.8; >= 25 is 4.3 sd below.
    assert set(even) == {"b1", "b2", "b3"} and min(even.values()) >= 25, even

    api.maintenance("web", ids["b2"], mode="drain")
    api.maintenance("web", ids["b3"], mode="drain")
    held = _hold(client, HELD)
    try:
        assert Counter(c.hello.backend for c in held) == {"b1": HELD}
        api.backend_up("web", ids["b2"])
        api.backend_up("web", ids["b3"])
        time.sleep(SETTLE)

        loaded = client.backends_of(VIP1, 80, NEW, sources=CLIENT_IPS)
        print(f"leastconn, b1 holding {HELD} connections, {NEW} new ones: {dict(loaded)}")
        # Expected share of b1: (1/31) / (1/31 + 1 + 1) = 1.6% (about 2 of 150). Without
        # leastconn it would get a third (50 +- 5.8): 15 (10%) is 6 sd below that, and
        # Binomial(150, 0.016) reaches 15 with probability < 1e-8.
        assert loaded["b1"] <= NEW // 10, f"b1 (loaded) still got {loaded['b1']}/{NEW}: {loaded}"
        assert min(loaded["b2"], loaded["b3"]) >= 50, loaded
        for conn in held:
            conn.exchange()  # the held connections are alive all along
    finally:
        for conn in held:
            conn.close()

    time.sleep(SETTLE)
    after = client.backends_of(VIP1, 80, NEW, sources=CLIENT_IPS)
    print(f"leastconn, held connections closed, {NEW} new ones: {dict(after)}")
    assert set(after) == {"b1", "b2", "b3"} and min(after.values()) >= 25, after
