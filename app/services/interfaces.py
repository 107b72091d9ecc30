"""Network interfaces: the host's links (read-only) and virtual interfaces (`eth0:vip1`).

A virtual interface is stored in the database and projected onto the kernel as an IPv4
address labelled with its name on its parent link.  Changes run under the reconciler's lock
(the unit of work), so a farm cannot be created on an address while that address is being
deleted.  The database commits only after the kernel took the change; a failed commit undoes
the kernel change.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import VirtualInterface
from app.errors import BadRequest, NotFound
from app.net.links import Address, Link, LinkError, LinkManager
from app.reconcile.uow import UnitOfWork
from app.schemas.requests import VirtualInterfaceCreate
from app.schemas.views import InterfaceItem, NicView, VirtualView

log = logging.getLogger(__name__)

MAX_NAME = 15  # IFNAMSIZ - 1: the kernel's limit for a label
# parent (a link, optionally a vlan "eth0.10") ":" tag
VIRTUAL_NAME = re.compile(r"([a-zA-Z0-9][a-zA-Z0-9_-]*(?:\.[0-9]{1,4})?):([a-zA-Z0-9]+)")
ADD = "Add a virtual interface"
DELETE = "Delete virtual interface"
MODIFY = "Modify virtual interface"
ACTION = "Action on virtual interface"


def _netmask(prefixlen: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


def _own_ipv4(addresses: list[Address], link: str) -> list[Address]:
    """A link's own IPv4 addresses (not those of its virtual interfaces)."""
    return [a for a in addresses if a.link == link and a.label == link and a.family == 4]


class InterfaceService:
    def __init__(self, uow: UnitOfWork, links: LinkManager) -> None:
        self.uow = uow
        self.links = links

    # -- reads -----------------------------------------------------------------------------

    def nics(self) -> list[NicView]:
        links = self.links.links()
        addresses = self.links.addresses()
        gateways = self.links.gateways()
        with_vlan = {link.parent for link in links if link.kind == "vlan" and link.parent}
        result = []
        for link in sorted(links, key=lambda item: item.name):
            if link.loopback or link.kind == "vlan":
                continue
            own = _own_ipv4(addresses, link.name)
            result.append(
                NicView(
                    name=link.name,
                    ip=own[0].ip if own else "",
                    netmask=_netmask(own[0].prefixlen) if own else "",
                    gateway=gateways.get(link.name, ""),
                    mac=link.mac,
                    status="up" if link.up else "down",
                    has_vlan=link.name in with_vlan,
                )
            )
        return result

    def virtuals(self) -> list[VirtualView]:
        with self.uow.read() as session:
            rows = list(session.scalars(select(VirtualInterface).order_by(VirtualInterface.name)))
        return self._views(rows)

    def virtual(self, name: str) -> VirtualView:
        with self.uow.read() as session:
            row = session.get(VirtualInterface, name)
        if row is None:
            raise NotFound(
                "Virtual interface not found.", description=f"Show virtual interface {name}"
            )
        return self._views([row])[0]

    def _views(self, rows: list[VirtualInterface]) -> list[VirtualView]:
        if not rows:
            return []
        links = {link.name: link for link in self.links.links()}
        present = {(a.link, a.ip) for a in self.links.addresses()}
        gateways = self.links.gateways()
        views = []
        for row in rows:
            parent: Link | None = links.get(row.parent)
            up = parent is not None and parent.up and (row.parent, row.ip) in present
            views.append(
                VirtualView(
                    name=row.name,
                    parent=row.parent,
                    ip=row.ip,
                    netmask=_netmask(row.prefixlen),
                    gateway=gateways.get(row.parent, ""),
                    mac=parent.mac if parent is not None else "",
                    status="up" if up else "down",
                )
            )
        return views

    # -- changes ---------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any] | VirtualInterfaceCreate) -> VirtualView:
        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=ADD)

        request = VirtualInterfaceCreate.parse(body, description=ADD)
        name = request.name
        parent = name.split(":", 1)[0]
        ip = ipaddress.IPv4Address(request.ip)
        added: Address | None = None
        try:
            with self.uow.write() as work:
                row = self._insert(work.session, name=name, parent=parent, ip=ip)
                added = Address(link=parent, label=name, ip=row.ip, prefixlen=row.prefixlen)
                try:
                    self.links.add_address(added)
                except LinkError as exc:
                    added = None
                    log.error("creating virtual interface %s failed: %s", name, exc)
                    raise bad(f"The {name} virtual network interface can't be created") from None
        except BaseException:
            if added is not None:  # the kernel took it but the database did not commit
                self._undo(self.links.remove_address, added)
            raise
        return self._views([row])[0]

    def _insert(
        self, session: Session, *, name: str, parent: str, ip: ipaddress.IPv4Address
    ) -> VirtualInterface:
        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=ADD)

        links = {link.name for link in self.links.links()}
        addresses = self.links.addresses()
        own = _own_ipv4(addresses, parent)
        if parent not in links or not own:
            raise bad(f"The parent interface {parent} doesn't exist.")
        if session.get(VirtualInterface, name) is not None or any(
            a.label == name for a in addresses
        ):
            raise bad(f"Network interface {name} already exists.")
        in_use = {ipaddress.ip_address(a.ip) for a in addresses}
        in_use.update(ipaddress.ip_address(v) for v in session.scalars(select(VirtualInterface.ip)))
        if ip in in_use:
            raise bad(f"IP Address {ip} is already in use.")
        networks = [ipaddress.IPv4Network(f"{a.ip}/{a.prefixlen}", strict=False) for a in own]
        network = next((n for n in networks if ip in n), None)
        if network is None:
            raise bad(f"IP Address {ip} must be same net than the parent interface.")
        if network.prefixlen < 31 and ip in (network.network_address, network.broadcast_address):
            raise bad("IP Address is not valid.")
        row = VirtualInterface(name=name, parent=parent, ip=str(ip), prefixlen=network.prefixlen)
        session.add(row)
        session.flush()
        return row

    def delete(self, name: str) -> None:
        removed: Address | None = None
        try:
            with self.uow.write() as work:
                session = work.session
                row = session.get(VirtualInterface, name)
                if row is None:
                    raise NotFound("Virtual interface not found.", description=DELETE)
                users = sorted(farm.name for farm in repo.farms_on_vip(session, row.ip))
                if users:
                    raise BadRequest(
                        f"The virtual interface {name} is the VIP of the farm(s) "
                        f"{', '.join(users)}; delete those farms or change their vip first.",
                        description=DELETE,
                    )
                address = Address(
                    link=row.parent, label=row.name, ip=row.ip, prefixlen=row.prefixlen
                )
                session.delete(row)
                session.flush()
                try:
                    self.links.remove_address(address)
                except LinkError as exc:
                    log.error("deleting virtual interface %s failed: %s", name, exc)
                    raise BadRequest(
                        f"The virtual interface {name} can't be deleted", description=DELETE
                    ) from None
                removed = address
        except BaseException:
            if removed is not None:  # the kernel lost it but the database did not commit
                self._undo(self.links.add_address, removed)
            raise

    def restore(self) -> int:
        """Start-up: put back the addresses of stored virtual interfaces; returns how many."""
        with self.uow.read() as session:
            rows = list(session.scalars(select(VirtualInterface).order_by(VirtualInterface.name)))
        if not rows:
            return 0
        links = {link.name for link in self.links.links()}
        present = {(a.link, a.ip) for a in self.links.addresses()}
        restored = 0
        for row in rows:
            if (row.parent, row.ip) in present or not row.enabled:
                continue
            if row.parent not in links:
                log.warning(
                    "virtual interface %s not restored: its parent %s does not exist",
                    row.name,
                    row.parent,
                )
                continue
            address = Address(link=row.parent, label=row.name, ip=row.ip, prefixlen=row.prefixlen)
            try:
                self.links.add_address(address)
            except LinkError as exc:
                log.error("virtual interface %s not restored: %s", row.name, exc)
                continue
            log.info("restored virtual interface %s (%s)", row.name, row.ip)
            restored += 1
        return restored

    def all_interfaces(self) -> list[InterfaceItem]:
        """`GET /interfaces`: the NICs, the vlans and the virtual interfaces."""
        items = [
            InterfaceItem(
                name=n.name,
                ip=n.ip,
                netmask=n.netmask,
                gateway=n.gateway,
                mac=n.mac,
                status=n.status,
                type="nic",
                has_vlan=n.has_vlan,
            )
            for n in self.nics()
        ]
        addresses = self.links.addresses()
        gateways = self.links.gateways()
        for link in sorted(self.links.links(), key=lambda item: item.name):
            if link.kind != "vlan":
                continue
            own = _own_ipv4(addresses, link.name)
            items.append(
                InterfaceItem(
                    name=link.name,
                    ip=own[0].ip if own else "",
                    netmask=_netmask(own[0].prefixlen) if own else "",
                    gateway=gateways.get(link.name, ""),
                    mac=link.mac,
                    status="up" if link.up else "down",
                    type="vlan",
                )
            )
        for view in self.virtuals():
            items.append(
                InterfaceItem(
                    name=view.name,
                    ip=view.ip,
                    netmask=view.netmask,
                    gateway=view.gateway,
                    mac=view.mac,
                    status=view.status,
                    type="virtual",
                )
            )
        return items

    def modify(self, name: str, raw_ip: Any, *, move_farms: bool, force_hint: str) -> VirtualView:
        """A new address for a virtual interface.  Farms on the old address move with it when
        `move_farms` (4.0's `force`); otherwise they make it a 400 (`force_hint` says what to
        do), never a farm left on an address no interface holds."""

        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=MODIFY)

        changed: tuple[Address | None, Address] | None = None  # (removed, added)
        try:
            with self.uow.write(MODIFY) as work:
                session = work.session
                row = session.get(VirtualInterface, name)
                if row is None:
                    raise NotFound("Virtual interface not found", description=MODIFY)
                try:
                    ip = ipaddress.IPv4Address(raw_ip) if isinstance(raw_ip, str) else None
                except ValueError:
                    ip = None
                if ip is None:
                    raise bad(f"IP Address {raw_ip} structure is not ok.")
                if str(ip) == row.ip:
                    return self._views([row])[0]
                addresses = self.links.addresses()
                in_use = {ipaddress.ip_address(a.ip) for a in addresses}
                in_use.update(
                    ipaddress.ip_address(v) for v in session.scalars(select(VirtualInterface.ip))
                )
                if ip in in_use:
                    raise bad("The IP address is already in use for other interface.")
                farms = repo.farms_on_vip(session, row.ip)
                if farms and not move_farms:
                    users = ", ".join(sorted(f.name for f in farms))
                    raise bad(
                        f"The IP is being used as farm vip in the farm(s): {users}. {force_hint}"
                    )
                own = _own_ipv4(addresses, row.parent)
                networks = [
                    ipaddress.IPv4Network(f"{a.ip}/{a.prefixlen}", strict=False) for a in own
                ]
                network = next((n for n in networks if ip in n), None)
                if network is None:
                    raise bad(
                        f"IP address {ip} must be on the same network than the parent interface."
                    )
                old = Address(link=row.parent, label=row.name, ip=row.ip, prefixlen=row.prefixlen)
                row.ip, row.prefixlen = str(ip), network.prefixlen
                for farm in farms:
                    farm.vip = str(ip)
                session.flush()
                new = Address(link=row.parent, label=row.name, ip=row.ip, prefixlen=row.prefixlen)
                if row.enabled:
                    try:
                        self.links.remove_address(old)
                        changed = (old, new)
                        self.links.add_address(new)
                    except LinkError as exc:
                        log.error("modifying virtual interface %s failed: %s", name, exc)
                        raise bad(f"Errors found trying to modify interface {name}") from None
                view = self._views([row])[0]
        except BaseException:
            if changed is not None:  # put the kernel back as the database still has it
                removed, added = changed
                self._undo(self.links.remove_address, added)
                if removed is not None:
                    self._undo(self.links.add_address, removed)
            raise
        return view

    def set_state(self, name: str, up: bool) -> None:
        """`POST /interfaces/virtual/NAME/actions`: put the address on its link, or take it off
        (and keep it off across restarts)."""
        with self.uow.write(ACTION) as work:
            row = work.session.get(VirtualInterface, name)
            if row is None:
                raise NotFound("Virtual interface not found", description=ACTION)
            address = Address(link=row.parent, label=row.name, ip=row.ip, prefixlen=row.prefixlen)
            present = any(a.link == row.parent and a.ip == row.ip for a in self.links.addresses())
            if up:
                parent = next((li for li in self.links.links() if li.name == row.parent), None)
                if parent is None or not parent.up:
                    raise BadRequest(
                        f"The interface {name} has a parent interface DOWN, check the "
                        "interfaces status",
                        description=ACTION,
                    )
                row.enabled = True
                work.session.flush()
                if not present:
                    try:
                        self.links.add_address(address)
                    except LinkError as exc:
                        log.error("setting %s up failed: %s", name, exc)
                        raise BadRequest(
                            "The interface could not be set UP", description=ACTION
                        ) from None
            else:
                row.enabled = False
                work.session.flush()
                if present:
                    try:
                        self.links.remove_address(address)
                    except LinkError as exc:
                        log.error("setting %s down failed: %s", name, exc)
                        raise BadRequest(
                            "The interface could not be set DOWN", description=ACTION
                        ) from None

    @staticmethod
    def _undo(change: Callable[[Address], None], address: Address) -> None:
        try:
            change(address)
        except LinkError:
            log.exception("could not undo the change of %s on %s", address.ip, address.link)
