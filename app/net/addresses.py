"""Which interface holds an address (the VIP check), read over netlink."""

from __future__ import annotations

import ipaddress
from typing import Protocol


class AddressBook(Protocol):
    def interface_of(self, ip: str) -> str | None: ...

    def on_link(self, ip: str, device: str) -> bool:
        """Whether `ip` is reached directly (no gateway) through `device`."""
        ...


class NetlinkAddressBook:
    def interface_of(self, ip: str) -> str | None:
        from pyroute2 import IPRoute

        wanted = ipaddress.ip_address(ip)
        with IPRoute() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            for addr in ipr.get_addr():
                value = addr.get_attr("IFA_ADDRESS") or addr.get_attr("IFA_LOCAL")
                if value and ipaddress.ip_address(value) == wanted:
                    label = addr.get_attr("IFA_LABEL")
                    return str(label or names.get(addr["index"], ""))
        return None

    def on_link(self, ip: str, device: str) -> bool:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            try:
                routes = ipr.route("get", dst=ip)
            except Exception:  # no route at all
                return False
            links = ipr.link_lookup(ifname=device)
            for route in routes:
                if route.get_attr("RTA_GATEWAY"):
                    return False
                if links and route.get_attr("RTA_OIF") == links[0]:
                    return True
        return False


class StaticAddressBook:
    """Fixed addresses (tests), or a permissive book when the operator disabled the check."""

    def __init__(
        self,
        addresses: dict[str, str] | None = None,
        *,
        any_address: str = "",
        off_link: set[str] | None = None,
    ) -> None:
        self._addresses = {str(ipaddress.ip_address(k)): v for k, v in (addresses or {}).items()}
        self._any = any_address
        self._off_link = {str(ipaddress.ip_address(a)) for a in (off_link or set())}

    def on_link(self, ip: str, device: str) -> bool:
        return str(ipaddress.ip_address(ip)) not in self._off_link

    def interface_of(self, ip: str) -> str | None:
        found = self._addresses.get(str(ipaddress.ip_address(ip)))
        return found if found is not None else (self._any or None)


class PermissiveAddressBook:
    """`--no-vip-check`: addresses this host does not hold (yet) are accepted, e.g. a VIP that
    keepalived adds on failover.  Where the host holds one, its interface is still reported;
    otherwise the interface is unknown ("")."""

    def __init__(self, inner: AddressBook) -> None:
        self._inner = inner

    def interface_of(self, ip: str) -> str | None:
        found = self._inner.interface_of(ip)
        return found if found is not None else ""

    def on_link(self, ip: str, device: str) -> bool:
        return self._inner.on_link(ip, device)
