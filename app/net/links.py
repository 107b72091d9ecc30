"""Links and their addresses over netlink (pyroute2): what `/interfaces/*` shows and manages.

A virtual interface in ZAPI (`eth0:vip1`) is not a link of its own: it is an IPv4 address
carrying that label on its parent link, as `ip addr add 198.18.0.20/24 dev eth0 label eth0:vip1`
makes it.  `LinkManager` reads links, addresses and default gateways, and adds or removes such
labelled addresses; `StaticLinks` is an in-memory stand-in for tests without a kernel.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
EEXIST = 17
EADDRNOTAVAIL = 99
RT_SCOPE_HOST = 254
LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


def address_scope(ip: str) -> int | None:
    """The scope `ip addr add` picks itself: host for 127/8 (the kernel refuses such an address
    with global scope: EINVAL), the default (global) otherwise."""
    value = ipaddress.ip_address(ip)
    return RT_SCOPE_HOST if value.version == 4 and value in LOOPBACK_NET else None


class LinkError(Exception):
    """The kernel refused an address change (the message says why)."""


@dataclass(frozen=True)
class Link:
    name: str
    mac: str
    up: bool
    loopback: bool = False
    kind: str = ""  # IFLA_INFO_KIND: "veth", "bridge", "vlan", "" for a plain device
    parent: str | None = None  # for a vlan: the link it sits on


@dataclass(frozen=True)
class Address:
    link: str  # the link holding the address
    label: str  # IFA_LABEL: the link name, or a virtual name such as "eth0:vip1"
    ip: str  # canonical text
    prefixlen: int

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.ip).version

    @property
    def netmask(self) -> str:
        """Dotted netmask for IPv4 (as ZAPI shows it), the prefix length for IPv6."""
        if self.family == 4:
            return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefixlen}").netmask)
        return str(self.prefixlen)


class LinkManager(Protocol):
    def links(self) -> list[Link]: ...

    def addresses(self) -> list[Address]: ...

    def gateways(self) -> dict[str, str]:
        """IPv4 default gateway per link name."""
        ...

    def add_address(self, address: Address) -> None: ...

    def remove_address(self, address: Address) -> None:
        """Remove an address; one that is already gone is not an error."""
        ...


def interface_holding(addresses: list[Address], ip: str) -> str | None:
    """The interface name ZAPI reports for an address: its label (`eth0:vip1`) or link."""
    wanted = ipaddress.ip_address(ip)
    for address in addresses:
        if ipaddress.ip_address(address.ip) == wanted:
            return address.label or address.link
    return None


class NetlinkLinks:
    """The real thing, in the network namespace kernlb runs in."""

    def links(self) -> list[Link]:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            raw = list(ipr.get_links())
        names = {link["index"]: str(link.get_attr("IFLA_IFNAME")) for link in raw}
        result = []
        for link in raw:
            info = link.get_attr("IFLA_LINKINFO")
            kind = str(info.get_attr("IFLA_INFO_KIND") or "") if info is not None else ""
            lower = link.get_attr("IFLA_LINK")
            result.append(
                Link(
                    name=names[link["index"]],
                    mac=str(link.get_attr("IFLA_ADDRESS") or ""),
                    up=bool(link["flags"] & IFF_UP),
                    loopback=bool(link["flags"] & IFF_LOOPBACK),
                    kind=kind,
                    parent=names.get(lower) if kind == "vlan" and lower else None,
                )
            )
        return result

    def addresses(self) -> list[Address]:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            names = {link["index"]: str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}
            result = []
            for addr in ipr.get_addr():
                value = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS")
                if not value:
                    continue
                link = names.get(addr["index"], "")
                label = addr.get_attr("IFA_LABEL")
                result.append(
                    Address(
                        link=link,
                        label=str(label) if label else link,
                        ip=str(ipaddress.ip_address(value)),
                        prefixlen=int(addr["prefixlen"]),
                    )
                )
        return result

    def gateways(self) -> dict[str, str]:
        from pyroute2 import IPRoute

        result: dict[str, str] = {}
        with IPRoute() as ipr:
            names = {link["index"]: str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}
            for route in ipr.get_default_routes(family=socket.AF_INET):
                oif, gateway = route.get_attr("RTA_OIF"), route.get_attr("RTA_GATEWAY")
                if oif in names and gateway:
                    result.setdefault(names[oif], str(gateway))
        return result

    def add_address(self, address: Address) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ipr:
            index = self._index(ipr, address.link)
            kwargs: dict[str, Any] = {}
            if address.family == 4:
                kwargs["label"] = address.label
            scope = address_scope(address.ip)
            if scope is not None:
                kwargs["scope"] = scope
            try:
                ipr.addr(
                    "add",
                    index=index,
                    address=address.ip,
                    prefixlen=address.prefixlen,
                    **kwargs,
                )
            except NetlinkError as exc:
                raise LinkError(f"cannot add {address.ip} to {address.link}: {exc}") from exc

    def remove_address(self, address: Address) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=address.link)
            if not found:
                return
            try:
                ipr.addr("del", index=found[0], address=address.ip, prefixlen=address.prefixlen)
            except NetlinkError as exc:
                if exc.code == EADDRNOTAVAIL:
                    return
                raise LinkError(f"cannot remove {address.ip} from {address.link}: {exc}") from exc

    @staticmethod
    def _index(ipr: Any, name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise LinkError(f"no link named {name}")
        return int(found[0])


@dataclass
class StaticLinks:
    """In-memory links and addresses (API tests, the OpenAPI export).

    Also an `AddressBook`, so the VIP check of farms sees the virtual interfaces it holds."""

    link_list: list[Link] = field(default_factory=list)
    address_list: list[Address] = field(default_factory=list)
    gateway_map: dict[str, str] = field(default_factory=dict)
    fail_next: str | None = None  # make the next change fail with this message

    def links(self) -> list[Link]:
        return list(self.link_list)

    def addresses(self) -> list[Address]:
        return list(self.address_list)

    def gateways(self) -> dict[str, str]:
        return dict(self.gateway_map)

    def add_address(self, address: Address) -> None:
        self._maybe_fail()
        if not any(link.name == address.link for link in self.link_list):
            raise LinkError(f"no link named {address.link}")
        if any(a.ip == address.ip and a.link == address.link for a in self.address_list):
            raise LinkError(f"cannot add {address.ip} to {address.link}: File exists")
        self.address_list.append(replace(address))

    def remove_address(self, address: Address) -> None:
        self._maybe_fail()
        self.address_list = [
            a for a in self.address_list if not (a.ip == address.ip and a.link == address.link)
        ]

    def interface_of(self, ip: str) -> str | None:
        return interface_holding(self.address_list, ip)

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise LinkError(message)
