"""keepalived's configuration, rendered from the farms' VIPs (pure), and its reload.

One VRRP instance per interface holding VIPs (the farms' interface, else the cluster
interface), plus the extra floating addresses (e.g. the backends' gateway), all in one sync
group so they move together: the node that owns the VIPs also gets the replies.  Both nodes
start as BACKUP; the higher priority wins the election.  The notify hook records the role and
drives conntrackd (see `conntrackd.render_notify_script`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
AUTH = re.compile(r"[A-Za-z0-9]{1,8}")
ALIVE_WEIGHT = 100  # more than any sensible priority gap between nodes
NODE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,63}")


class ConfigError(ValueError):
    """A cluster setting that cannot go into keepalived's or conntrackd's configuration."""


@dataclass(frozen=True)
class FloatingAddress:
    ip: str  # canonical
    prefixlen: int
    interface: str

    @classmethod
    def parse(cls, text: str) -> FloatingAddress:
        """`IP[/LEN]@DEV`, as in KERNLB_CLUSTER_EXTRA_VIPS."""
        address, sep, device = text.strip().partition("@")
        if not sep or not INTERFACE.fullmatch(device):
            raise ConfigError(f"extra VIP {text!r}: expected IP/LEN@INTERFACE")
        try:
            network = ipaddress.ip_interface(address)
        except ValueError as exc:
            raise ConfigError(f"extra VIP {text!r}: {exc}") from None
        return cls(str(network.ip), network.network.prefixlen, device)


@dataclass(frozen=True)
class VrrpNode:
    name: str
    priority: int
    interface: str  # where VIPs go when their farm names none
    router_id: int = 51  # virtual_router_id of the first instance (sorted by interface)
    advert: float = 1.0
    auth: str = ""
    unicast_source: str = ""
    unicast_peers: tuple[str, ...] = ()
    extra: tuple[FloatingAddress, ...] = ()
    notify_script: str = ""
    # A check keepalived runs every second: fails while this node's kernlb is not running.
    # Its weight drops the node below its peers, so a master whose kernlb died (its kernel no
    # longer follows the database) hands the VIPs over; with every kernlb down nothing moves.
    alive_script: str = ""

    def validate(self) -> None:
        if not NODE_NAME.fullmatch(self.name):
            raise ConfigError(f"node name {self.name!r}: letters, digits, '_', '.', '-' only")
        if not INTERFACE.fullmatch(self.interface):
            raise ConfigError(
                f"cluster interface {self.interface!r} is not an interface name "
                "(set KERNLB_CLUSTER_INTERFACE)"
            )
        if self.auth and not AUTH.fullmatch(self.auth):
            raise ConfigError("VRRP authentication: 1-8 letters or digits")
        if self.auth and self.advert < 1:
            raise ConfigError("VRRP authentication needs VRRPv2, i.e. an advert interval >= 1 s")
        if self.advert >= 1 and self.advert != int(self.advert):
            raise ConfigError("VRRPv2 advert intervals are whole seconds (or < 1 s for VRRPv3)")
        for address in (self.unicast_source, *self.unicast_peers):
            if address:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ConfigError(f"unicast address {address!r} is not an IP") from None
        if self.unicast_peers and not self.unicast_source:
            raise ConfigError("unicast peers need this node's address (KERNLB_CLUSTER_ADDRESS)")
        for script in (self.notify_script, self.alive_script):
            if script and not re.fullmatch(r"/[A-Za-z0-9_./-]+", script):
                raise ConfigError(f"script path {script!r} is not a plain path")
        if self.router_id + len(self._interfaces([])) > 256:
            raise ConfigError("virtual_router_id would exceed 255")

    def _interfaces(self, vips: Iterable[tuple[str, str]]) -> list[str]:
        found = {self.interface} | {dev for _, dev in vips} | {a.interface for a in self.extra}
        return sorted(found)


@dataclass(frozen=True)
class Instance:
    name: str
    interface: str
    router_id: int
    addresses: tuple[str, ...] = field(default_factory=tuple)  # "IP/LEN"
    excluded: tuple[str, ...] = field(default_factory=tuple)  # other family (not in adverts)


def instances(node: VrrpNode, vips: Iterable[tuple[str, str]]) -> list[Instance]:
    """VIPs as (ip, interface) -> one instance per interface, stable ids and order."""
    vips = list(vips)
    by_interface: dict[str, set[tuple[str, int]]] = {i: set() for i in node._interfaces(vips)}
    for ip, device in vips:
        address = ipaddress.ip_address(ip)
        by_interface[device].add((str(address), address.max_prefixlen))
    for extra in node.extra:
        by_interface[extra.interface].add((extra.ip, extra.prefixlen))
    result = []
    # keepalived refuses an instance without addresses: interfaces without VIPs get none.
    for index, device in enumerate(sorted(d for d, found in by_interface.items() if found)):
        addresses = sorted(by_interface[device], key=lambda a: _address_key(a[0]))
        v4 = tuple(f"{ip}/{n}" for ip, n in addresses if ipaddress.ip_address(ip).version == 4)
        v6 = tuple(f"{ip}/{n}" for ip, n in addresses if ipaddress.ip_address(ip).version == 6)
        # An instance advertises one family; the other rides along, set and removed with it.
        primary, excluded = (v4, v6) if v4 or not v6 else (v6, ())
        result.append(
            Instance(
                name=f"KERNLB_{_token(device)}",
                interface=device,
                router_id=node.router_id + index,
                addresses=primary,
                excluded=excluded,
            )
        )
    return result


def _token(device: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", device)


def render(node: VrrpNode, vips: Iterable[tuple[str, str]]) -> str:
    node.validate()
    items = instances(node, vips)
    version = 2 if node.advert >= 1 else 3
    advert = f"{int(node.advert)}" if version == 2 else f"{node.advert:g}"
    lines = [
        "# Rendered by kernlb from its database: do not edit (docs/cluster.md).",
        "global_defs {",
        f"  router_id {node.name}",
        "  script_user root",
        "  enable_script_security",
        "}",
    ]
    notify = (
        [
            f'  notify_master "{node.notify_script} MASTER"',
            f'  notify_backup "{node.notify_script} BACKUP"',
            f'  notify_fault "{node.notify_script} FAULT"',
            f'  notify_stop "{node.notify_script} STOP"',
        ]
        if node.notify_script
        else []
    )
    grouped = len(items) > 1
    if node.alive_script:
        lines += [
            "vrrp_script KERNLB_ALIVE {",
            f'  script "{node.alive_script}"',
            "  interval 1",
            "  fall 2",
            "  rise 1",
            f"  weight -{ALIVE_WEIGHT}",
            "}",
        ]
    if grouped:
        # Failover moves every instance at once (front VIPs and the backends' gateway).
        lines += ["vrrp_sync_group KERNLB {", "  group {"]
        lines += [f"    {item.name}" for item in items]
        lines += ["  }"]
        if node.alive_script:
            # Without it keepalived ignores weighted track scripts of grouped instances.
            lines.append("  sync_group_tracking_weight")
        lines += [*notify, "}"]
    for item in items:
        lines += [
            f"vrrp_instance {item.name} {{",
            "  state BACKUP",
            f"  interface {item.interface}",
            f"  virtual_router_id {item.router_id}",
            f"  priority {node.priority}",
            f"  advert_int {advert}",
            f"  version {version}",
        ]
        if node.auth:
            lines += [
                "  authentication {",
                "    auth_type PASS",
                f"    auth_pass {node.auth}",
                "  }",
            ]
        if node.unicast_peers:
            lines.append(f"  unicast_src_ip {node.unicast_source}")
            lines += ["  unicast_peer {", *(f"    {p}" for p in node.unicast_peers), "  }"]
        lines.append("  virtual_ipaddress {")
        lines += [f"    {a} dev {item.interface}" for a in item.addresses]
        lines.append("  }")
        if item.excluded:
            lines.append("  virtual_ipaddress_excluded {")
            lines += [f"    {a} dev {item.interface}" for a in item.excluded]
            lines.append("  }")
        if node.alive_script:
            lines += ["  track_script {", "    KERNLB_ALIVE", "  }"]
        if not grouped:
            lines += notify
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str, *, mode: int = 0o644) -> bool:
    """Atomically replace `path` when its content differs; True when it changed."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def reload(pidfile: Path) -> bool:
    """SIGHUP the keepalived whose PID the file names (it re-reads its configuration)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        log.info(
            "keepalived not running (no PID in %s): it reads the new file when it starts", pidfile
        )
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        log.warning("keepalived PID %d from %s is gone; not reloaded", pid, pidfile)
        return False
    return True


def _address_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)
