"""keepalived and conntrackd configuration rendered from the farms' VIPs (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cluster import conntrackd, keepalived
from app.cluster.keepalived import ConfigError, FloatingAddress, VrrpNode

NODE = VrrpNode(
    name="lb1",
    priority=150,
    interface="f0",
    router_id=51,
    extra=(FloatingAddress.parse("198.18.21.1/24@b0"),),
    notify_script="/var/lib/kernlb/kernlb-notify.sh",
)


def test_one_instance_per_interface_in_one_sync_group() -> None:
    text = keepalived.render(
        NODE, [("198.18.20.100", "f0"), ("198.18.20.101", "f0"), ("2001:2::10", "f0")]
    )
    assert text.count("vrrp_instance ") == 2
    assert "vrrp_sync_group KERNLB {\n  group {\n    KERNLB_b0\n    KERNLB_f0\n  }\n" in text
    # The notify hook sits on the group: every instance moves with it.
    assert text.index('notify_master "/var/lib/kernlb/kernlb-notify.sh MASTER"') < text.index(
        "vrrp_instance"
    )
    back, front = text.split("vrrp_instance ")[1:]
    assert "interface b0\n  virtual_router_id 51\n  priority 150\n" in back
    assert "    198.18.21.1/24 dev b0\n" in back
    assert "interface f0\n  virtual_router_id 52\n" in front
    assert (
        "  virtual_ipaddress {\n    198.18.20.100/32 dev f0\n    198.18.20.101/32 dev f0\n  }\n"
        "  virtual_ipaddress_excluded {\n    2001:2::10/128 dev f0\n  }\n"
    ) in front
    assert "state BACKUP" in front and "advert_int 1\n  version 2" in front


def test_same_vips_same_text_whatever_the_order() -> None:
    vips = [("198.18.20.101", "f0"), ("198.18.20.100", "f0")]
    assert keepalived.render(NODE, vips) == keepalived.render(NODE, list(reversed(vips)))


def test_single_instance_carries_the_hooks_unicast_and_auth() -> None:
    node = VrrpNode(
        name="lb2",
        priority=100,
        interface="f0",
        auth="s3cret",
        unicast_source="198.18.20.12",
        unicast_peers=("198.18.20.11",),
        notify_script="/x/notify.sh",
    )
    text = keepalived.render(node, [("198.18.20.100", "f0")])
    assert "vrrp_sync_group" not in text
    assert "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n" in text
    assert "  unicast_src_ip 198.18.20.12\n  unicast_peer {\n    198.18.20.11\n  }\n" in text
    assert '  notify_backup "/x/notify.sh BACKUP"\n' in text


def test_sub_second_adverts_use_vrrp_v3() -> None:
    node = VrrpNode(name="lb1", priority=150, interface="f0", advert=0.1)
    assert "advert_int 0.1\n  version 3\n" in keepalived.render(node, [("198.18.20.1", "f0")])


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (VrrpNode(name="lb 1", priority=1, interface="f0"), "node name"),
        (VrrpNode(name="lb1", priority=1, interface="f0;x"), "not an interface name"),
        (VrrpNode(name="lb1", priority=1, interface="f0", auth="toolongpass"), "1-8"),
        (VrrpNode(name="lb1", priority=1, interface="f0", auth="ab", advert=0.5), "VRRPv2"),
        (VrrpNode(name="lb1", priority=1, interface="f0", advert=1.5), "whole seconds"),
        (VrrpNode(name="lb1", priority=1, interface="f0", unicast_peers=("x",)), "not an IP"),
        (VrrpNode(name="lb1", priority=1, interface="f0", unicast_peers=("1.2.3.4",)), "KERNLB"),
        (
            VrrpNode(
                name="lb1",
                priority=1,
                interface="f0",
                router_id=255,
                extra=(FloatingAddress.parse("10.0.0.1/24@b0"),),
            ),
            "virtual_router_id",
        ),
    ],
)
def test_settings_that_cannot_go_into_the_file_are_refused(node: VrrpNode, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        keepalived.render(node, [])


@pytest.mark.parametrize("text", ["198.18.21.1/24", "nonsense@b0", "198.18.21.1/24@bad dev"])
def test_extra_vips_must_be_ip_len_at_device(text: str) -> None:
    with pytest.raises(ConfigError, match="extra VIP"):
        FloatingAddress.parse(text)


def test_conntrackd_syncs_over_the_link_and_ignores_only_own_addresses() -> None:
    link = conntrackd.SyncLink(
        interface="s0",
        address="198.18.22.1",
        peer="198.18.22.2",
        own_addresses=("198.18.20.11", "198.18.21.11"),
        state_dir=Path("/var/lib/kernlb"),
    )
    text = conntrackd.render(link)
    assert "  Mode FTFW {\n  }\n" in text
    assert "    IPv4_address 198.18.22.1\n    IPv4_Destination_Address 198.18.22.2\n" in text
    assert "    Interface s0\n" in text
    ignored = text.split("Address Ignore {")[1].split("}")[0].split()
    assert ignored == [
        "IPv4_address", "127.0.0.1", "IPv4_address", "198.18.20.11",
        "IPv4_address", "198.18.21.11", "IPv4_address", "198.18.22.1",
        "IPv6_address", "::1",
    ]  # fmt: skip
    assert "  LockFile /var/lib/kernlb/conntrackd.lock\n" in text
    assert "    Path /var/lib/kernlb/conntrackd.ctl\n" in text


def test_notify_hook_follows_the_primary_backup_procedure() -> None:
    script = conntrackd.render_notify_script(
        state_file=Path("/s/vrrp_state"), conntrackd_conf=Path("/s/conntrackd.conf")
    )
    assert 'C="/usr/sbin/conntrackd -C /s/conntrackd.conf"' in script
    assert "  MASTER) $C -c; $C -f internal; $C -R; $C -B ;;" in script
    assert "  BACKUP) $C -t; $C -n ;;" in script
    assert "mv /s/vrrp_state.tmp /s/vrrp_state" in script
    without = conntrackd.render_notify_script(state_file=Path("/s/r"), conntrackd_conf=None)
    assert "conntrackd" not in without.split("Do not edit.")[1]


def test_interfaces_without_addresses_get_no_instance() -> None:
    # keepalived refuses an instance without addresses ("No VIP specified").
    node = VrrpNode(name="lb1", priority=150, interface="f0")
    assert "vrrp_instance" not in keepalived.render(node, [])
    assert "vrrp_instance KERNLB_f0" in keepalived.render(node, [("198.18.20.1", "f0")])


def test_cluster_nodes_with_conntrackd_drop_invalid_packets_before_nat() -> None:
    """The commit window (docs/cluster.md): a guard chain after conntrack, before dstnat."""
    from app.nft.render import PRIO_DSTNAT, render_skeleton

    plain = render_skeleton()
    guarded = render_skeleton(drop_invalid=True)
    assert set(guarded.chains) - set(plain.chains) == {"inet/cluster-guard"}
    chain = guarded.chains["inet/cluster-guard"]
    assert chain.decl["hook"] == "prerouting" and chain.decl["type"] == "filter"
    assert -200 < chain.decl["prio"] < PRIO_DSTNAT  # conntrack has classified the packet
    assert chain.decl["policy"] == "accept"
    assert chain.rules == (
        (
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}},
            {"drop": None},
        ),
    )
