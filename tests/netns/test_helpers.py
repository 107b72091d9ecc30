"""Conntrack helpers (issue 3, item 2; dataplane.md §2 "Helpers"): an FTP farm.

FTP's data connections are negotiated inside the control connection: passive mode (PASV, EPSV)
announces an address and port of the server, active mode (PORT, EPRT) one of the client. Behind
a NAT load balancer both are wrong unless the kernel's ftp conntrack helper, attached by the farm
(``protocol: ftp``), rewrites them and expects the data connection. ftp_server.py (in b1 and
b2) puts what it saw in its replies: the greeting names the backend and the control peer, the
PORT reply the address it was told, ``RETR whoami`` the data connection as the server saw it.
The client side is the standard library's ftplib.
"""

from __future__ import annotations

import ftplib
import ipaddress
import re
import socket
from collections import Counter
from dataclasses import dataclass, field

import pytest

from .kernlb import Api
from .topology import (
    BACKEND_IPS,
    BACKEND_IPS6,
    CLIENT_IPS,
    CLIENT_IPS6,
    HERE,
    LB_BACKEND_SIDE_IP,
    LB_BACKEND_SIDE_IP6,
    VIP1,
    VIP6_1,
    Topology,
)
from .traffic import Client, Hello, describe_error, parse_hello

pytestmark = pytest.mark.netns

FTP_SERVER = HERE / "ftp_server.py"
SOURCES = CLIENT_IPS[:8]
SOURCES6 = CLIENT_IPS6[:8]
SESSIONS = 16
FTP_ERRORS: tuple[type[BaseException], ...] = (*ftplib.all_errors, ValueError)


class RecordingFTP(ftplib.FTP):
    """ftplib's client, keeping every reply it read."""

    def __init__(self, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.replies: list[str] = []

    def getresp(self) -> str:
        resp = super().getresp()
        self.replies.append(resp)
        return resp

    def reply_to(self, code: str) -> str | None:
        """The last reply starting with ``code`` (e.g. "227", "229", "200 PORT")."""
        found = [r for r in self.replies if r.startswith(code)]
        return found[-1] if found else None


@dataclass
class FtpSession:
    """One FTP session through the VIP: what the client and the server saw."""

    source: str
    passive: bool
    greeting: str = ""
    negotiation: str | None = None  # the 227/229 reply, or the server's "200 PORT/EPRT" reply
    whoami: Hello | None = None  # the data connection as the server saw it
    listing: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def backend(self) -> str:
        return self.greeting.split()[1] if self.greeting.startswith("220 ") else "?"

    @property
    def control_peer(self) -> str:
        """The control connection's source address as the server saw it."""
        return self.greeting.split()[2] if self.greeting.startswith("220 ") else "?"

    @property
    def server_port(self) -> int:
        """The port the control connection reached on the backend."""
        return int(self.greeting.split()[4]) if self.greeting.startswith("220 ") else 0

    @property
    def ok(self) -> bool:
        return self.error is None and self.whoami is not None and len(self.listing) == 1


def ftp_session(vip: str, *, source: str, passive: bool, timeout: float = 3.0) -> FtpSession:
    """Log in, RETR whoami and LIST through ``vip``:21 (runs in the client namespace)."""
    result = FtpSession(source=source, passive=passive)
    ftp = RecordingFTP(timeout=timeout)
    try:
        result.greeting = ftp.connect(vip, 21, source_address=(source, 0))
        ftp.login()
        ftp.set_pasv(passive)
        data = bytearray()
        try:
            ftp.retrbinary("RETR whoami", data.extend)
        finally:
            if passive:
                result.negotiation = ftp.reply_to("229" if ftp.af == socket.AF_INET6 else "227")
            else:
                result.negotiation = ftp.reply_to(
                    "200 EPRT" if ftp.af == socket.AF_INET6 else "200 PORT"
                )
        result.whoami = parse_hello(bytes(data).split(b"\n", 1)[0])
        ftp.retrlines("LIST", result.listing.append)
        ftp.quit()
    except FTP_ERRORS as exc:
        result.error = describe_error(exc)
    finally:
        ftp.close()
    return result


def pasv_address(reply: str | None) -> tuple[str, int]:
    """The address and port announced by a 227 reply."""
    match = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", reply or "")
    assert match is not None, f"not a 227 reply: {reply!r}"
    numbers = [int(n) for n in match.groups()]
    return ".".join(str(n) for n in numbers[:4]), numbers[4] * 256 + numbers[5]


def port_told(reply: str | None) -> str:
    """The address the server was told by PORT/EPRT (ftp_server.py's ``200 PORT ip port``)."""
    parts = (reply or "").split()
    assert len(parts) == 4 and parts[0] == "200", f"not a PORT/EPRT reply: {reply!r}"
    return ipaddress.ip_address(parts[2]).compressed  # the kernel writes IPv6 in full


def sessions(
    client: Client, vip: str, sources: tuple[str, ...], *, passive: bool
) -> list[FtpSession]:
    """``SESSIONS`` FTP sessions, one after another, cycling through ``sources``."""

    def run() -> list[FtpSession]:
        return [
            ftp_session(vip, source=sources[i % len(sources)], passive=passive)
            for i in range(SESSIONS)
        ]

    return client.executor.run(run)


def summary(results: list[FtpSession]) -> str:
    backends = Counter(r.backend for r in results)
    errors = Counter(r.error for r in results if not r.ok)
    return f"{len(results)} sessions, backends {dict(backends)}, failures {dict(errors)}"


@pytest.fixture
def ftp_servers(topo: Topology) -> None:
    """ftp_server.py on ports 21 and 2121 in b1 and b2 (stopped by PID with the topology)."""
    for name in ("b1", "b2"):
        topo.spawn(
            topo.backends[name].ns,
            FTP_SERVER,
            f"--name={name}",
            "--ports=21,2121",
            log_name=f"ftp-{name}",
        )


def _ftp_farm(
    api: Api, *, nattype: str, protocol: str = "ftp", v6: bool = False, port: int | None = None
) -> None:
    fields = {} if port is None else {"port": port}
    api.setup_farm(
        "ftp",
        vip=VIP6_1 if v6 else VIP1,
        vport="21",
        backends={"b1": fields, "b2": fields},
        backend_ips=BACKEND_IPS6 if v6 else BACKEND_IPS,
        nattype=nattype,
        protocol=protocol,
    )
    params = api.get_farm("ftp")["params"]
    assert (params["protocol"], params["nattype"]) == (protocol, nattype), params


@pytest.mark.usefixtures("ftp_servers")
@pytest.mark.parametrize("nattype", ["nat", "dnat"])
def test_ftp_farm_passive_and_active_data_connections(
    api: Api, client: Client, nattype: str
) -> None:
    _ftp_farm(api, nattype=nattype)

    passive = sessions(client, VIP1, SOURCES, passive=True)
    active = sessions(client, VIP1, SOURCES, passive=False)
    print(f"ftp farm ({nattype}) passive: {summary(passive)}")
    print(f"ftp farm ({nattype}) active: {summary(active)}")
    print(f"  e.g. passive: {passive[0].negotiation!r} -> data {passive[0].whoami}")
    print(f"  e.g. active:  {active[0].negotiation!r} -> data {active[0].whoami}")
    for results in (passive, active):
        failed = [(r.source, r.backend, r.negotiation, r.error) for r in results if not r.ok]
        assert not failed, f"{len(failed)}/{len(results)} FTP sessions failed: {failed}"
        # 16 sessions on 2 equal backends: P(all on one) = 2 / 2^16.
        assert {r.backend for r in results} == {"b1", "b2"}, summary(results)
        for r in results:
            assert r.whoami is not None
            # The data connection reached the backend that serves the control connection.
            assert r.whoami.backend == r.backend, (r.greeting, r.whoami)
            expected_peer = LB_BACKEND_SIDE_IP if nattype == "nat" else r.source
            assert r.control_peer == expected_peer, r.greeting
            assert r.whoami.peer_ip == expected_peer, (r.negotiation, r.whoami)

    for r in passive:
        # The helper rewrote the backend's own address in the 227 reply into the VIP.
        assert pasv_address(r.negotiation)[0] == VIP1, r.negotiation
    for r in active:
        # nat: the helper rewrote the client's address in PORT into the LB's (the backend
        # connects back to the LB, which forwards to the client); dnat: the client's own.
        expected = LB_BACKEND_SIDE_IP if nattype == "nat" else r.source
        assert port_told(r.negotiation) == expected, r.negotiation


@pytest.mark.usefixtures("ftp_servers")
def test_ftp_without_the_helper_fails_and_switching_to_ftp_fixes_it(
    api: Api, client: Client
) -> None:
    """Negative control: the same farm as ``protocol: tcp`` cannot carry FTP data."""
    _ftp_farm(api, nattype="nat", protocol="tcp")

    def control_only(passive: bool) -> FtpSession:
        # Only the negotiation: a PORT the backend could not connect back to would take the
        # server's whole connect timeout.
        result = FtpSession(source=CLIENT_IPS[0], passive=passive)
        ftp = RecordingFTP(timeout=3.0)
        try:
            result.greeting = ftp.connect(VIP1, 21, source_address=(CLIENT_IPS[0], 0))
            ftp.login()
            if passive:
                result.negotiation = ftp.sendcmd("PASV")
            else:
                with ftp.makeport():
                    result.negotiation = ftp.reply_to("200 PORT")
            ftp.quit()
        finally:
            ftp.close()
        return result

    plain = client.executor.run(ftp_session, VIP1, source=CLIENT_IPS[0], passive=True)
    pasv = client.executor.run(control_only, True)
    port = client.executor.run(control_only, False)
    print(f"protocol tcp: passive RETR -> {plain.error}; PASV -> {pasv.negotiation!r}")
    print(f"protocol tcp: PORT told the backend {port.negotiation!r}")
    assert plain.greeting.startswith("220 "), "the control connection itself must work"
    assert plain.error is not None and "ECONNREFUSED" in plain.error, plain
    assert pasv_address(pasv.negotiation)[0] == BACKEND_IPS[pasv.backend], pasv.negotiation
    assert port_told(port.negotiation) == CLIENT_IPS[0], port.negotiation

    api.edit_farm("ftp", protocol="ftp")
    after = client.executor.run(ftp_session, VIP1, source=CLIENT_IPS[0], passive=True)
    print(f"protocol ftp: passive RETR -> {after.whoami} via {after.negotiation!r}")
    assert after.ok, after
    assert pasv_address(after.negotiation)[0] == VIP1, after.negotiation

    api.edit_farm("ftp", protocol="tcp")
    again = client.executor.run(ftp_session, VIP1, source=CLIENT_IPS[0], passive=True)
    assert again.error is not None and "ECONNREFUSED" in again.error, again


@pytest.mark.usefixtures("ftp_servers")
def test_ftp_farm_over_ipv6_epsv_and_eprt(api: Api, client: Client) -> None:
    _ftp_farm(api, nattype="nat", v6=True)

    passive = sessions(client, VIP6_1, SOURCES6, passive=True)
    active = sessions(client, VIP6_1, SOURCES6, passive=False)
    print(f"IPv6 ftp farm passive (EPSV): {summary(passive)}; e.g. {passive[0].negotiation!r}")
    print(f"IPv6 ftp farm active (EPRT): {summary(active)}; e.g. {active[0].negotiation!r}")
    for results in (passive, active):
        failed = [(r.source, r.backend, r.negotiation, r.error) for r in results if not r.ok]
        assert not failed, f"{len(failed)}/{len(results)} IPv6 FTP sessions failed: {failed}"
        assert {r.backend for r in results} == {"b1", "b2"}, summary(results)
        for r in results:
            assert r.whoami is not None and r.whoami.backend == r.backend
            assert r.whoami.peer_ip == LB_BACKEND_SIDE_IP6, (r.negotiation, r.whoami)
    for r in active:
        assert port_told(r.negotiation) == LB_BACKEND_SIDE_IP6, r.negotiation


@pytest.mark.usefixtures("ftp_servers")
def test_ftp_farm_with_backend_port_translation(api: Api, client: Client) -> None:
    """VIP:21 -> backends:2121: the helper still follows the control connection."""
    _ftp_farm(api, nattype="nat", port=2121)

    passive = sessions(client, VIP1, SOURCES, passive=True)
    active = sessions(client, VIP1, SOURCES, passive=False)
    print(f"ftp farm 21 -> 2121 passive: {summary(passive)}; active: {summary(active)}")
    for results in (passive, active):
        failed = [(r.source, r.backend, r.negotiation, r.error) for r in results if not r.ok]
        assert not failed, f"{len(failed)}/{len(results)} FTP sessions failed: {failed}"
        assert {r.server_port for r in results} == {2121}
        assert {r.backend for r in results} == {"b1", "b2"}, summary(results)
    assert all(pasv_address(r.negotiation)[0] == VIP1 for r in passive)
    assert all(port_told(r.negotiation) == LB_BACKEND_SIDE_IP for r in active)
