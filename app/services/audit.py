"""The audit log: every write request, bounded by age and count.

Entries are written after the response went out, in their own short transaction; a database
that cannot be written loses the entry (logged), never the request.
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
    ) -> None:
        self.session_factory = session_factory
        self.max_entries = max_entries
        self.max_age = timedelta(days=max_age_days)
        self._added = 0
        self._lock = threading.Lock()

    def add(self, record: AuditRecord) -> None:
        try:
            with self._lock, self.session_factory() as session:
                session.add(
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
                )
                self._added += 1
                if self._added % PRUNE_EVERY == 1:
                    self._prune(session, now=record.at)
                session.commit()
        except Exception as exc:  # the request already succeeded or failed on its own
            log.warning("audit entry not stored (%s %s): %s", record.method, record.path, exc)

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
