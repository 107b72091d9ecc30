"""A throw-away PostgreSQL server (Debian's `postgresql` package): the tests' and `kernlb demo
--cluster`'s shared database.

`initdb` refuses to run as root, so the cluster belongs to an unprivileged user (`postgres`
when the package created it, else `nobody`).  It listens on a Unix socket in its own temporary
directory only (no TCP), trusts local connections, and is stopped by PID and removed at the end.
Network namespaces do not scope Unix sockets: kernlb nodes in different namespaces reach it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

SUPERUSER = "kernlb"


def postgres_bin_dir() -> Path | None:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major, reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parents[1].name)
    except ValueError:
        return 0


def unavailable_reason() -> str | None:
    if postgres_bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() != 0 and _owner() is None:
        return "no unprivileged user to own the throw-away PostgreSQL cluster"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    return None


def _owner() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


class ThrowawayPostgres:
    def __init__(self, *, spawn_prefix: Sequence[str] = ()) -> None:
        """`spawn_prefix`: argv before the server's (the demo's parent-death signal)."""
        self.spawn_prefix = list(spawn_prefix)
        bin_dir = postgres_bin_dir()
        owner = _owner()
        assert bin_dir is not None and owner is not None, unavailable_reason()
        self.bin_dir = bin_dir
        self.owner = owner
        # Not pytest's tmp_path: its 0700 parents would keep the unprivileged owner out.
        self.root = Path(tempfile.mkdtemp(prefix=f"kernlb-pg-{os.getpid()}-"))
        self.data = self.root / "data"
        self.socket_dir = self.root  # short path: a socket path must fit in 107 bytes
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "postgres.log"
        self._template: str | None = None

    def _owner_ids(self) -> tuple[int | None, int | None, list[int] | None]:
        """(user, group, extra groups) for subprocess: the owner when we are root, else as is."""
        if os.geteuid() != 0:
            return None, None, None
        return self.owner.pw_uid, self.owner.pw_gid, []

    def start(self) -> None:
        """initdb (once), then run the server; again after `halt` with the same data."""
        if not self.data.exists():
            self._initdb()
        self._launch()

    def _initdb(self) -> None:
        os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        os.chmod(self.root, 0o755)
        user, group, extra_groups = self._owner_ids()
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            user=user,
            group=group,
            extra_groups=extra_groups,
        )

    def _launch(self) -> None:
        user, group, extra_groups = self._owner_ids()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *self.spawn_prefix,
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.socket_dir),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        deadline = time.monotonic() + 30
        socket = self.socket_dir / ".s.PGSQL.5432"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text(errors='replace')}")
            if socket.exists() and self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres not ready: {self.log.read_text(errors='replace')}")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, database: str) -> str:
        return f"host={self.socket_dir} user={SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def create_database(self, prefix: str = "k", *, migrated: bool = True) -> str:
        """A fresh database (a copy of one migrated to head, unless `migrated=False`: empty);
        returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        template = self._migrated_template() if migrated else "template0"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            # Names built here: letters, digits and "_" only.
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _migrated_template(self) -> str:
        """Migrating costs more than copying: migrate one database once, copy it per test."""
        if self._template is None:
            from app.db.session import migrate

            url = self.create_database("template", migrated=False)
            migrate(url)
            self._template = url.split("?", 1)[0].rsplit("/", 1)[1]
        return self._template

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)

    def halt(self) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint; crash recovery on the next start) of
        our postmaster, by PID: clients see the database vanish, as in a crash.  Commits are
        not lost (synchronous_commit stays on; fsync=off only skips flushes to the disk)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGQUIT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
