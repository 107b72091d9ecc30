"""The audit log: every write request, bounded by age and count.

Entries are written after the response went out, by one writer thread, in batches: a request
only queues its entry (no thread hop, no transaction of its own); the writer waits
`COALESCE_S` for more, then stores everything queued in one transaction.  Readers flush the
queue first, so `GET /system/audit` always shows every answered request; another process
(`kernlb audit`) sees an entry within `COALESCE_S`.  A database that cannot be written loses
the batch (logged), never a request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.db.models import AuditEntry

log = logging.getLogger(__name__)

MAX_STORED_BODY = 4096
SECRET_KEYS = frozenset({"key", "password", "newpassword", "secret", "token", "zapi_key"})
REDACTED = "********"
PRUNE_EVERY = 100
COALESCE_S = 0.05  # how long the writer waits for more entries before a transaction


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    source: str
    method: str
    path: str
    body: str
    status: int
    duration_ms: float
    farms: tuple[str, ...]


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_KEYS else _redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def redacted_body(raw: bytes, *, total: int) -> str:
    """The body as stored: secrets masked; too long or not JSON: only its size."""
    if total == 0:
        return ""
    if total > MAX_STORED_BODY:
        return f"({total} bytes, not stored)"
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return f"({total} bytes, not JSON)"
    text = json.dumps(_redact(value), sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_STORED_BODY + 100 else f"({total} bytes, not stored)"


class AuditLog:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        max_entries: int,
        max_age_days: float,
        coalesce: float = COALESCE_S,
    ) -> None:
        self.session_factory = session_factory
        self.max_entries = max_entries
        self.max_age = timedelta(days=max_age_days)
        self.coalesce = coalesce
        self._added = 0
        self._lock = threading.Lock()  # held while a batch is stored
        self._queued = threading.Condition()  # guards the queue and the writer
        self._pending: list[AuditRecord] = []
        self._writer: threading.Thread | None = None
        self._closed = False

    def add(self, record: AuditRecord) -> None:
        """Queue an entry (never blocks on the database)."""
        with self._queued:
            self._pending.append(record)
            if self._writer is None and not self._closed:
                self._writer = threading.Thread(
                    target=self._write_batches, name="kernlb-audit", daemon=True
                )
                self._writer.start()
            self._queued.notify()

    def flush(self) -> None:
        """Store every queued entry now (readers call it first)."""
        with self._lock:  # one batch at a time: entries keep their order
            with self._queued:
                batch, self._pending = self._pending, []
            if batch:
                self._store(batch)

    def close(self) -> None:
        """Stop the writer and store what is queued (at shutdown)."""
        with self._queued:
            self._closed = True
            writer, self._writer = self._writer, None
            self._queued.notify()
        if writer is not None:
            writer.join(timeout=10)
        self.flush()

    def _write_batches(self) -> None:
        while True:
            with self._queued:
                self._queued.wait_for(lambda: self._pending or self._closed)
                # Let the entries of a burst of requests join; `close` ends the wait at once
                # (it stores what is queued itself), so a shutdown never waits it out.
                if self._closed or self._queued.wait_for(lambda: self._closed, self.coalesce):
                    return
            self.flush()

    def _store(self, batch: list[AuditRecord]) -> None:
        try:
            with self.session_factory() as session:
                session.add_all(
                    AuditEntry(
                        at=record.at.replace(tzinfo=None),
                        source=record.source[:64],
                        method=record.method[:8],
                        path=record.path[:1024],
                        body=record.body,
                        status=record.status,
                        duration_ms=round(record.duration_ms, 3),
                        farms=",".join(record.farms)[:1024],
                    )
                    for record in batch
                )
                before = self._added
                self._added += len(batch)
                if before == 0 or before // PRUNE_EVERY != self._added // PRUNE_EVERY:
                    session.flush()
                    self._prune(session, now=max(record.at for record in batch))
                session.commit()
        except Exception as exc:  # the requests already succeeded or failed on their own
            first = batch[0]
            log.warning(
                "%d audit entries not stored (from %s %s): %s",
                len(batch),
                first.method,
                first.path,
                exc,
            )

    def _prune(self, session: Session, *, now: datetime) -> None:
        horizon = (now - self.max_age).replace(tzinfo=None)
        session.execute(delete(AuditEntry).where(AuditEntry.at < horizon))
        keep_from = session.scalar(
            select(AuditEntry.id)
            .order_by(AuditEntry.id.desc())
            .offset(self.max_entries - 1)
            .limit(1)
        )
        if keep_from is not None:
            session.execute(delete(AuditEntry).where(AuditEntry.id < keep_from))

    def page(self, *, page: int, limit: int) -> tuple[int, list[AuditEntry]]:
        """Newest first; `page` counts from 1."""
        self.flush()
        with self.session_factory() as session:
            total = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            entries = session.scalars(
                select(AuditEntry)
                .order_by(AuditEntry.id.desc())
                .offset((page - 1) * limit)
                .limit(limit)
            ).all()
            return total, list(entries)


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "time": entry.at.replace(tzinfo=UTC).isoformat(timespec="milliseconds"),
        "source": entry.source,
        "method": entry.method,
        "path": entry.path,
        "body": entry.body,
        "status": entry.status,
        "duration_ms": entry.duration_ms,
        "farms": [name for name in entry.farms.split(",") if name],
    }


def now() -> datetime:
    return datetime.now(UTC)
