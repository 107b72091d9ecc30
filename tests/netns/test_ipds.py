"""IPDS with real traffic: blacklists, whitelists, per-source limits (and what happens when
their meter is full), established-connection caps, RST floods, bogus TCP flags, list changes
under load.  Client sources 198.18.1.1-40 (topology.CLIENT_IPS)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from .ipds_traffic import paced_attempts, send_tcp_packets
from .kernlb import Api, KernlbServer
from .topology import BACKEND_IPS6, CLIENT_IPS, CLIENT_IPS6, VIP1, VIP6_1
from .traffic import Client

pytestmark = pytest.mark.netns

JSON = Any


def _farm(api: Api) -> None:
    api.setup_farm("web", vip=VIP1, vport="80", backends={"b1": {}, "b2": {}})


def _dos(api: Api, name: str, rule: str, **params: Any) -> None:
    api.request("POST", "/ipds/dos", {"name": name, "rule": rule}).expect(201)
    if params:
        api.request("PUT", f"/ipds/dos/{name}", params).expect(200)
    api.request("POST", "/farms/web/ipds/dos", {"name": name}).expect(200)


def _dropped(api: Api, kind: str, name: str) -> int:
    body = api.request("GET", "/stats/farms/web").expect(200)
    for item in body["ipds"][kind]:
        if item["name"] == name:
            packets: int = item["packets"]
            return packets
    raise AssertionError(f"{kind} {name} not in {body['ipds']}")


def test_blacklisted_cidr_gets_nothing_others_succeed(api: Api, client: Client) -> None:
    _farm(api)
    api.request(
        "POST", "/ipds/blacklists", {"name": "bad", "type": "local", "policy": "deny"}
    ).expect(201)
    api.request("POST", "/ipds/blacklists/bad/sources", {"source": "198.18.1.0/29"}).expect(201)
    api.request("POST", "/farms/web/ipds/blacklists", {"name": "bad"}).expect(200)
    listed = CLIENT_IPS[:7]  # .1-.7
    others = CLIENT_IPS[7:20]
    bad = [client.attempt(VIP1, 80, source=src, timeout=0.5) for src in listed for _ in range(2)]
    assert all(not o.ok for o in bad), [o for o in bad if o.ok]
    counts = client.backends_of(VIP1, 80, 52, sources=others)
    print(f"blacklist: 0/{len(bad)} from 198.18.1.0/29, {sum(counts.values())}/52 from others")
    assert _dropped(api, "blacklists", "bad") >= len(bad)
    # Removing the source lets them in at once (one element delete).
    api.request("DELETE", "/ipds/blacklists/bad/sources/0").expect(200)
    assert client.attempt(VIP1, 80, source=listed[0]).ok


def test_whitelist_admits_only_its_sources(api: Api, client: Client) -> None:
    _farm(api)
    api.request("POST", "/ipds/blacklists", {"name": "good", "policy": "allow"}).expect(201)
    api.request("POST", "/ipds/blacklists/good/sources", {"source": "198.18.1.8/29"}).expect(201)
    api.request("POST", "/farms/web/ipds/blacklists", {"name": "good"}).expect(200)
    inside = CLIENT_IPS[7:15]  # .8-.15
    outside = CLIENT_IPS[:7] + CLIENT_IPS[15:20]
    counts = client.backends_of(VIP1, 80, 40, sources=inside)
    refused = [client.attempt(VIP1, 80, source=src, timeout=0.5) for src in outside]
    print(
        f"whitelist: {sum(counts.values())}/40 listed admitted, "
        f"{sum(o.ok for o in refused)}/{len(refused)} others"
    )
    assert not any(o.ok for o in refused)
    assert _dropped(api, "blacklists", "good") >= len(refused)


def test_new_connection_rate_is_held_per_source(api: Api, client: Client) -> None:
    """One source at 10x its limit is held to the limit (within 10%); another source at a
    normal rate sees no failure."""
    _farm(api)
    rate, burst = 20, 5
    _dos(api, "persec", "limitsec", limit=rate, limit_burst=burst)
    normal: list[bool] = []

    def polite() -> None:
        for _ in range(15):
            normal.append(client.attempt(VIP1, 80, source=CLIENT_IPS[1], timeout=2.0).ok)
            time.sleep(0.25)

    thread = threading.Thread(target=polite)
    thread.start()
    flood = client.executor.run(
        paced_attempts, VIP1, 80, source=CLIENT_IPS[0], rate=10 * rate, seconds=4.0
    )
    thread.join()
    expected = burst + rate * flood.span
    error = abs(flood.accepted - expected) / expected
    print(
        f"limitsec {rate}/s burst {burst}: offered {flood.attempts} in {flood.span:.2f}s "
        f"({flood.attempts / flood.span:.0f}/s), accepted {flood.accepted}, expected "
        f"{expected:.1f} ({100 * error:.1f}% off); normal source {sum(normal)}/{len(normal)} ok"
    )
    assert error <= 0.10, (flood, expected)
    assert all(normal), normal
    assert _dropped(api, "dos", "persec") >= flood.attempts - flood.accepted


def test_full_meter_puts_untracked_sources_under_the_aggregate_limit(
    api: Api, client: Client
) -> None:
    """Meter of 4 sources: the 4 first are tracked (generous per-source limit); every other
    source shares one small aggregate limit: never unlimited, never zero."""
    _farm(api)
    _dos(
        api,
        "persec",
        "limitsec",
        limit=1000,
        limit_burst=1000,
        meter_size=4,
        overflow_limit=5,
        overflow_burst=5,
    )
    tracked = CLIENT_IPS[:4]
    for src in tracked:
        assert client.attempt(VIP1, 80, source=src).ok
    untracked = CLIENT_IPS[4:24]
    results = [
        client.executor.run(paced_attempts, VIP1, 80, source=src, rate=100, seconds=0.2)
        for src in untracked
    ]
    attempts = sum(r.attempts for r in results)
    accepted = sum(r.accepted for r in results)
    span = results[-1].last - results[0].first
    ceiling = 5 + 5 * span
    again = client.executor.run(paced_attempts, VIP1, 80, source=tracked[0], rate=100, seconds=0.5)
    print(
        f"meter full (4): 20 untracked sources offered {attempts} in {span:.1f}s, accepted "
        f"{accepted} (aggregate 5/s burst 5: at most {ceiling:.0f}); a tracked source "
        f"{again.accepted}/{again.attempts}"
    )
    # Saturated: the untracked sources get the aggregate rate (within 15%), no more, no less.
    assert 0.85 * ceiling <= accepted <= 1.1 * ceiling + 1, (accepted, ceiling)
    assert again.accepted == again.attempts


def test_established_connections_per_source_are_capped(api: Api, client: Client) -> None:
    _farm(api)
    _dos(api, "conns", "limitconns", limit_conns=3)
    held = [client.hold(VIP1, 80, source=CLIENT_IPS[0]) for _ in range(3)]
    try:
        fourth = client.attempt(VIP1, 80, source=CLIENT_IPS[0], timeout=1.0)
        other = client.attempt(VIP1, 80, source=CLIENT_IPS[1])
        assert not fourth.ok and other.ok, (fourth, other)
        for conn in held:
            conn.exchange()  # the three keep working
        held.pop().close()
        time.sleep(0.2)
        assert client.attempt(VIP1, 80, source=CLIENT_IPS[0]).ok
    finally:
        for conn in held:
            conn.close()
    print(f"limitconns 3: 4th refused, other source ok, dropped {_dropped(api, 'dos', 'conns')}")


def test_rst_flood_is_limited_and_syn_fin_dropped(api: Api, client: Client) -> None:
    _farm(api)
    rate, burst = 10, 5
    _dos(api, "rst", "limitrst", limit=rate, limit_burst=burst)
    _dos(api, "flags", "bogustcpflags")
    sent, seconds = 400, 2.0
    took = client.executor.run(
        send_tcp_packets,
        VIP1,
        80,
        source=CLIENT_IPS[2],
        flags=("rst",),
        count=sent,
        seconds=seconds,
    )
    passed = sent - _dropped(api, "dos", "rst")
    expected = burst + rate * took
    print(
        f"limitrst {rate}/s burst {burst}: {sent} RSTs in {took:.2f}s, {passed} passed "
        f"(expected {expected:.0f})"
    )
    assert abs(passed - expected) <= 0.10 * expected + 1, (passed, expected)
    client.executor.run(
        send_tcp_packets,
        VIP1,
        80,
        source=CLIENT_IPS[3],
        flags=("syn", "fin"),
        count=50,
        seconds=0.5,
    )
    assert _dropped(api, "dos", "flags") == 50
    assert client.attempt(VIP1, 80, source=CLIENT_IPS[3]).ok  # normal traffic unaffected
    print("bogustcpflags: 50/50 SYN+FIN dropped and counted")


def test_list_changes_under_load_drop_no_legitimate_connection(api: Api, client: Client) -> None:
    _farm(api)
    api.request("POST", "/ipds/blacklists", {"name": "bad"}).expect(201)
    api.request("POST", "/ipds/blacklists/bad/sources", {"source": "198.18.1.40"}).expect(201)
    api.request("POST", "/farms/web/ipds/blacklists", {"name": "bad"}).expect(200)
    with client.load(VIP1, 80, sources=CLIENT_IPS[:10], max_connections=5000) as load:
        load.start()
        load.wait_for(100)
        for i in range(20):
            body = api.request(
                "POST", "/ipds/blacklists/bad/sources", {"source": f"203.0.113.{i}"}
            ).expect(201)
            if i % 2:
                api.request(
                    "DELETE", f"/ipds/blacklists/bad/sources/{body['params']['id']}"
                ).expect(200)
        load.wait_for(50)  # 50 more after the edits
        report = load.stop()
    print(f"20 list changes under load: {report.summary()}")
    assert not report.failures, report.summary()


def test_ipv6_farm_blacklist_whitelist_and_connection_cap(api: Api, client: Client) -> None:
    """The same rules on an IPv6 farm: masked /64 lookups, the IPv6 meter."""
    api.setup_farm(
        "web", vip=VIP6_1, vport="80", backends={"b1": {}, "b2": {}}, backend_ips=BACKEND_IPS6
    )
    api.request("POST", "/ipds/blacklists", {"name": "bad6"}).expect(201)
    # CLIENT_IPS6[:8] = 2001:2:0:1::1-8: the /125 holds ::1-::7 only.
    api.request("POST", "/ipds/blacklists/bad6/sources", {"source": "2001:2:0:1::/125"}).expect(201)
    api.request("POST", "/farms/web/ipds/blacklists", {"name": "bad6"}).expect(200)
    _dos(api, "conns", "limitconns", limit_conns=2)
    listed = [client.attempt(VIP6_1, 80, source=src, timeout=0.5) for src in CLIENT_IPS6[:7]]
    assert not any(o.ok for o in listed), listed
    held = [client.hold(VIP6_1, 80, source=CLIENT_IPS6[8]) for _ in range(2)]
    try:
        third = client.attempt(VIP6_1, 80, source=CLIENT_IPS6[8], timeout=1.0)
        other = client.attempt(VIP6_1, 80, source=CLIENT_IPS6[9])
        assert not third.ok and other.ok, (third, other)
    finally:
        for conn in held:
            conn.close()
    assert _dropped(api, "blacklists", "bad6") >= len(listed)
    print(f"IPv6: 0/{len(listed)} from the /125, connection cap 2 held, others admitted")


def _bulk_loads(server: KernlbServer) -> int:
    """How many batches the server sent through the nfnetlink element writer (its log)."""
    return server.log_path.read_text(errors="replace").count("IPDS list elements through nfnetlink")


def test_large_whitelist_reloads_through_nfnetlink_under_load(
    api: Api, client: Client, kernlb: KernlbServer
) -> None:
    """A whitelist of 20,010 sources (above BULK_ELEMENTS: its elements go through the nfnetlink
    writer), reloaded by PUT while listed sources keep connecting: the reload swaps who gets in,
    and no connection of a source listed before and after fails."""
    _farm(api)
    bulk_before = _bulk_loads(kernlb)
    filler = [f"10.{i >> 8 & 255}.{i & 255}.0/24" for i in range(10_000)]
    filler += [f"10.200.{i >> 8 & 255}.{i & 255}" for i in range(10_000)]
    first = [*CLIENT_IPS[:10], *filler]  # .1-.10 admitted
    api.request("POST", "/ipds/blacklists", {"name": "office", "policy": "allow"}).expect(201)
    api.request("PUT", "/ipds/blacklists/office", {"sources": first}).expect(200)
    api.request("POST", "/farms/web/ipds/blacklists", {"name": "office"}).expect(200)
    assert all(client.attempt(VIP1, 80, source=src).ok for src in CLIENT_IPS[:10])
    assert not any(
        client.attempt(VIP1, 80, source=src, timeout=0.5).ok for src in CLIENT_IPS[10:15]
    )
    # Reload: .1-.5 leave, .11-.15 come in, .6-.10 stay (and keep connecting meanwhile); the
    # 10,000 single fillers are replaced too, so the change itself (20,010 deletes and adds,
    # one element transaction) goes through nfnetlink.
    moved = [f"10.201.{i >> 8 & 255}.{i & 255}" for i in range(10_000)]
    second = [*CLIENT_IPS[5:15], *filler[:10_000], *moved]
    with client.load(VIP1, 80, sources=CLIENT_IPS[5:10], max_connections=5000) as load:
        load.start()
        load.wait_for(50)
        started = time.perf_counter()
        api.request("PUT", "/ipds/blacklists/office", {"sources": second}).expect(200)
        took = time.perf_counter() - started
        load.wait_for(50)  # 50 more after the edits
        report = load.stop()
    print(f"20,010-source whitelist reloaded in {took:.2f} s under load: {report.summary()}")
    assert not report.failures, report.summary()
    assert all(client.attempt(VIP1, 80, source=src).ok for src in CLIENT_IPS[5:15])
    assert not any(client.attempt(VIP1, 80, source=src, timeout=0.5).ok for src in CLIENT_IPS[:5])
    assert _bulk_loads(kernlb) - bulk_before == 2  # the load and the reload went through nfnetlink
