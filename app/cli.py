"""`kernlb serve | migrate | sync | render | key | demo`."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from app.gcpause import collector_paused

if TYPE_CHECKING:
    from app.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    # Imported here: pydantic-settings is ~0.13 s of CPU, and `kernlb CMD --help` needs none.
    from app.settings import Settings

    overrides: dict[str, Any] = {}
    for field in (
        "host",
        "port",
        "db",
        "state_dir",
        "resync_interval",
        "body_limit",
        "client_timeout",
        "auth_failures",
        "auth_window",
    ):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "key", None):
        overrides["zapi_key"] = args.key
    if getattr(args, "no_tls", False):
        overrides["tls"] = False
    if getattr(args, "cert", None):
        overrides["cert"] = args.cert
    if getattr(args, "cert_key", None):
        overrides["cert_key"] = args.cert_key
    if getattr(args, "metrics_public", False):
        overrides["metrics_public"] = True
    if getattr(args, "no_vip_check", False):
        overrides["vip_check"] = False
    return Settings(**overrides)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env KERNLB_DB)")
    parser.add_argument("--state-dir", help="state directory (env KERNLB_STATE_DIR)")


def cmd_serve(args: argparse.Namespace) -> int:
    with collector_paused():
        import uvicorn

        from app.api.transport import QuietServer, protocol_with_header_timeout
        from app.main import create_app
        from app.net.sysctl import disable_tcp_loose, enable_forwarding
        from app.tls import ensure_self_signed
    # What was just imported (~300,000 objects) lives as long as the server: out of the
    # collector's sight, the first collections after the pause do not walk it all twice
    # (~45 ms of a start) and later full collections never walk it again.
    gc.freeze()

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.ip_forward:
        enable_forwarding()
    ssl: dict[str, Any] = {}
    if settings.tls:
        if settings.cert and settings.cert_key:
            cert, key = settings.cert, settings.cert_key
        else:
            cert, key = ensure_self_signed(settings.state_dir / "tls")
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    from app.cluster.schema import StartupError

    try:
        app = create_app(settings)
        app.state.preflight()  # cluster: database, schema, keepalived, conntrackd
    except StartupError as exc:
        print(f"kernlb: {exc}", file=sys.stderr)
        return 2
    if settings.cluster and settings.cluster_sync_interface:
        disable_tcp_loose()  # with the guard chain: conntrackd's commit window (cluster.md)
    config = uvicorn.Config(
        app,
        http=protocol_with_header_timeout(settings.client_timeout),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=1,
        access_log=False,
        **ssl,
    )
    server = QuietServer(config)  # uvicorn.run, minus nine wake-ups a second
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        return 3  # uvicorn's STARTUP_FAILURE: the port, TLS files or the start-up sync failed
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.db.session import ensure_sqlite_dir, migrate

    settings = _settings(args)
    ensure_sqlite_dir(settings.database_url)
    migrate(settings.database_url)
    print("database at head")
    return 0


def _reconciler(settings: Settings, *, with_kernel: bool) -> Any:
    from app.db.session import ensure_sqlite_dir, make_engine, make_session_factory, migrate
    from app.nft.adapter import LibNftAdapter
    from app.nft.netlink_elements import ElementWriter
    from app.reconcile.reconciler import Reconciler

    ensure_sqlite_dir(settings.database_url)
    migrate(settings.database_url)
    factory = make_session_factory(make_engine(settings.database_url))
    adapter: Any = LibNftAdapter() if with_kernel else None
    elements = ElementWriter() if with_kernel else None
    return Reconciler(adapter=adapter, session_factory=factory, elements=elements)


def cmd_sync(args: argparse.Namespace) -> int:
    from app.errors import KernelRejected

    # A one-shot command: its objects live until it exits.  Collecting while the imports
    # and the whole ruleset are built only walks them again and again.
    gc.disable()
    reconciler = _reconciler(_settings(args), with_kernel=True)
    if args.check:
        # Dry run: what the database implies against what the kernel holds; nothing applied.
        differences = reconciler.differences(reconciler.render_all(), reconciler.adapter.listing())
        for line in differences:
            print(line)
        if differences:
            print(f"kernlb sync --check: {len(differences)} difference(s)", file=sys.stderr)
            return 1
        print("kernel in sync with the database")
        return 0
    try:
        reconciler.full_sync()
    except KernelRejected as exc:
        print(f"kernlb sync: {exc.message}", file=sys.stderr)
        return 1
    print(f"kernel in sync: {len(reconciler.specs())} farms")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from app.db.session import ensure_sqlite_dir, make_engine, make_session_factory, migrate
    from app.services.audit import AuditLog, entry_json

    settings = _settings(args)
    ensure_sqlite_dir(settings.database_url)
    migrate(settings.database_url)
    audit = AuditLog(
        make_session_factory(make_engine(settings.database_url)),
        max_entries=settings.audit_max_entries,
        max_age_days=settings.audit_max_age_days,
    )
    total, entries = audit.page(page=args.page, limit=args.limit)
    rows = [entry_json(entry) for entry in entries]
    if args.json:
        json.dump(
            {"params": rows, "page": args.page, "limit": args.limit, "total": total}, sys.stdout
        )
        print()
        return 0
    for row in rows:
        farms = ",".join(row["farms"]) or "-"
        print(
            f"{row['time']}  {row['source']:<15} {row['status']} {row['method']:<6} "
            f"{row['path']}  farms={farms}  {row['duration_ms']:.1f}ms  {row['body']}"
        )
    print(f"({len(rows)} of {total}, newest first, page {args.page})", file=sys.stderr)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from app.nft.diff import sync

    reconciler = _reconciler(_settings(args), with_kernel=False)
    batch = sync(reconciler.render_all(), None)
    json.dump({"nftables": batch}, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from app.db.session import ensure_sqlite_dir, make_engine, make_session_factory, migrate
    from app.domain.values import FARM_NAME
    from app.services.keys import KeyStore, generate_key

    settings = _settings(args)
    ensure_sqlite_dir(settings.database_url)
    migrate(settings.database_url)
    store = KeyStore(make_session_factory(make_engine(settings.database_url)))
    if args.set:
        if not FARM_NAME.fullmatch(args.set) or "-" in args.set:
            print("kernlb key: a key must be letters and digits only", file=sys.stderr)
            return 2
        store.set(args.set)
        print("ZAPI key set")
    else:
        key = generate_key()
        store.set(key)
        print(key)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.cluster:
        from app.demo_cluster import run_cluster_demo

        return run_cluster_demo(held=args.held)
    from app.demo import run_demo

    return run_demo(
        connections=args.connections,
        pause=not args.no_pause and sys.stdin.isatty(),
        health_checks=not args.no_health_checks,
    )


def cmd_openapi(_args: argparse.Namespace) -> int:
    from app.openapi_export import render_spec

    sys.stdout.write(render_spec())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernlb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the ZAPI server (reconciles nftables first)")
    serve.add_argument("--host", help="listen address (env KERNLB_HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (env KERNLB_PORT, default 444)")
    serve.add_argument("--key", help="ZAPI key to set (env KERNLB_ZAPI_KEY)")
    serve.add_argument("--no-tls", action="store_true", help="plain HTTP (env KERNLB_TLS=false)")
    serve.add_argument("--cert", help="TLS certificate (env KERNLB_CERT)")
    serve.add_argument("--cert-key", help="TLS private key (env KERNLB_CERT_KEY)")
    serve.add_argument(
        "--resync-interval",
        type=float,
        help="seconds between drift checks (env KERNLB_RESYNC_INTERVAL)",
    )
    serve.add_argument(
        "--body-limit", type=int, help="largest request body in bytes (env KERNLB_BODY_LIMIT)"
    )
    serve.add_argument(
        "--client-timeout",
        type=float,
        help="seconds a client has to send headers, and a body (env KERNLB_CLIENT_TIMEOUT)",
    )
    serve.add_argument(
        "--auth-failures",
        type=int,
        help="wrong keys per source address and window before 429 (env KERNLB_AUTH_FAILURES)",
    )
    serve.add_argument(
        "--auth-window", type=float, help="seconds of that window (env KERNLB_AUTH_WINDOW)"
    )
    serve.add_argument(
        "--no-vip-check", action="store_true", help="accept VIPs not (yet) on an interface"
    )
    serve.add_argument(
        "--metrics-public",
        action="store_true",
        help="serve GET /metrics without the ZAPI key (env KERNLB_METRICS_PUBLIC=true)",
    )
    _add_common(serve)
    serve.set_defaults(func=cmd_serve)

    for name, func, text in (
        ("migrate", cmd_migrate, "apply database migrations"),
        ("sync", cmd_sync, "reconcile nftables with the database once and exit"),
        ("render", cmd_render, "print the nftables JSON the database implies (touches nothing)"),
    ):
        command = sub.add_parser(name, help=text)
        _add_common(command)
        command.set_defaults(func=func)
        if name == "sync":
            command.add_argument(
                "--check",
                action="store_true",
                help="only print the differences; exit 1 when there are any (changes nothing)",
            )

    audit = sub.add_parser("audit", help="print the audit log of write requests, newest first")
    audit.add_argument("--limit", type=int, default=50, help="entries per page (default 50)")
    audit.add_argument("--page", type=int, default=1, help="page, from 1 (default 1)")
    audit.add_argument("--json", action="store_true", help="JSON, as GET /system/audit")
    _add_common(audit)
    audit.set_defaults(func=cmd_audit)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document of the API")
    openapi.set_defaults(func=cmd_openapi)

    demo = sub.add_parser(
        "demo", help="see kernlb balance traffic in a throw-away lab of network namespaces"
    )
    demo.add_argument("--connections", type=int, default=120, help="connections per round")
    demo.add_argument("--no-pause", action="store_true", help="do not wait for Enter")
    demo.add_argument(
        "--no-health-checks", action="store_true", help="show a failure without farmguardian"
    )
    demo.add_argument(
        "--cluster",
        action="store_true",
        help="two load balancers (PostgreSQL, keepalived, conntrackd) and a failover",
    )
    demo.add_argument(
        "--held", type=int, default=20, help="--cluster: connections held across the failover"
    )
    demo.set_defaults(func=cmd_demo)

    key = sub.add_parser("key", help="rotate the ZAPI key")
    group = key.add_mutually_exclusive_group(required=True)
    group.add_argument("--generate", action="store_true", help="generate a key and print it once")
    group.add_argument("--set", metavar="KEY", help="set this key")
    _add_common(key)
    key.set_defaults(func=cmd_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
