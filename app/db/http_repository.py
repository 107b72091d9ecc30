"""Queries for http farms and certificates, and their mapping to the renderer's state."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.db.models import Certificate, HttpFarm, HttpFarmCertificate, HttpService
from app.domain.model import FarmSpec
from app.haproxy.model import (
    ERROR_CODES,
    HAPROXY_ERROR_PAGES,
    HealthCheck,
    HttpFarmSpec,
    ServerSpec,
    ServiceSpec,
)

# l4xnat protocols that carry no TCP: they never meet an http farm's listener.
NON_TCP_PROTOCOLS = frozenset({"udp", "sctp", "tftp", "snmp", "netbios-ns", "amanda"})


def get_http_farm(session: Session, name: str) -> HttpFarm | None:
    return session.scalars(select(HttpFarm).where(HttpFarm.name == name)).one_or_none()


# Built once: every l4 request asks it (an http farm's name answers differently).
_HTTP_FARM_NAMED = select(HttpFarm.id).where(HttpFarm.name == bindparam("name"))


def http_farm_exists(session: Session, name: str) -> bool:
    return session.connection().scalar(_HTTP_FARM_NAMED, {"name": name}) is not None


def list_http_farms(session: Session) -> list[HttpFarm]:
    return list(session.scalars(select(HttpFarm).order_by(HttpFarm.name)))


def http_farms_on_vip(
    session: Session, vip: str, *, except_id: int | None = None
) -> list[HttpFarm]:
    query = select(HttpFarm).where(HttpFarm.vip == vip)
    if except_id is not None:
        query = query.where(HttpFarm.id != except_id)
    return list(session.scalars(query))


def get_certificate(session: Session, name: str) -> Certificate | None:
    return session.get(Certificate, name)


def list_certificates(session: Session) -> list[Certificate]:
    return list(session.scalars(select(Certificate).order_by(Certificate.name)))


def certificate_users(session: Session, name: str) -> list[str]:
    query = (
        select(HttpFarm.name)
        .join(HttpFarmCertificate, HttpFarmCertificate.farm_id == HttpFarm.id)
        .where(HttpFarmCertificate.cert_name == name)
        .order_by(HttpFarm.name)
    )
    return list(session.scalars(query))


def l4_claims_port(spec: FarmSpec, vip: str, port: int) -> bool:
    """Whether a running l4xnat farm takes TCP traffic for vip:port in the kernel (before
    HAProxy could see it): a wildcard or a port list that contains it, on the same VIP."""
    if not spec.running or spec.vip != vip or spec.protocol in NON_TCP_PROTOCOLS:
        return False
    if spec.ports is None:
        return True
    return any(r.first <= port <= r.last for r in spec.ports)


HealthOf = Callable[[HttpService], HealthCheck | None]


def no_health(_service: HttpService) -> HealthCheck | None:
    return None


def http_farm_spec(farm: HttpFarm, health: HealthOf = no_health) -> HttpFarmSpec:
    errors = tuple(
        (code, text)
        for code in ERROR_CODES
        if code in HAPROXY_ERROR_PAGES and (text := getattr(farm, f"error{code}"))
    )
    disabled = frozenset(
        key
        for key in ("sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2")
        if getattr(farm, f"disable_{key}")
    )
    return HttpFarmSpec(
        id=farm.id,
        name=farm.name,
        vip=farm.vip,
        vport=farm.vport,
        listener=farm.listener,
        running=farm.running,
        contimeout=farm.contimeout,
        restimeout=farm.restimeout,
        resurrectime=farm.resurrectime,
        reqtimeout=farm.reqtimeout,
        rewritelocation=farm.rewritelocation,
        httpverb=farm.httpverb,
        errors=errors,
        ciphers=farm.ciphers,
        cipherc=farm.cipherc,
        disabled_protocols=disabled,
        certificates=tuple(c.cert_name for c in farm.certificates),
        services=tuple(
            ServiceSpec(
                id=s.id,
                name=s.name,
                vhost=s.vhost,
                urlp=s.urlp,
                redirect=s.redirect,
                redirecttype=s.redirecttype,
                persistence=s.persistence,
                ttl=s.ttl,
                sessionid=s.sessionid,
                leastresp=s.leastresp,
                httpsb=s.httpsb,
                health=health(s),
                servers=tuple(
                    ServerSpec(
                        id=b.id,
                        ip=b.ip,
                        port=b.port,
                        weight=b.weight,
                        timeout=b.timeout,
                        maintenance=b.maintenance,
                    )
                    for b in s.backends
                ),
            )
            for s in farm.services
        ),
    )


def desired_http_state(
    session: Session, health: HealthOf = no_health
) -> tuple[list[HttpFarmSpec], dict[str, str]]:
    """Every http farm, and the PEM of each certificate a running https farm uses.
    `health`: a service's farmguardian as an HAProxy check (app/services/http_health.py)."""
    farms = [http_farm_spec(f, health) for f in list_http_farms(session)]
    needed = {name for f in farms if f.running and f.listener == "https" for name in f.certificates}
    pems = {c.name: c.pem for c in list_certificates(session) if c.name in needed}
    return farms, pems
