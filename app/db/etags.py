"""Farm ETags (app.api.concurrency): a digest of a farm's configuration and its backends'.

Health and live counts are other tables: a health check never changes a farm's ETag.  A
write records the ETags of the farms it committed (`record`, called by the unit of work)
while a request collects them (`collecting`), so the answer's `ETag` comes from the rows the
write already holds instead of a second session reading the farm again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import Backend, Farm

# Farm name -> ETag of the farms the current request's writes committed.  The dict is
# shared with the worker threads the request runs its writes in (they get a copy of the
# context, which holds the same dict).
_written: ContextVar[dict[str, str] | None] = ContextVar("kernlb_written_etags", default=None)


def _columns(row: Farm | Backend) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


def digest(farm: Farm) -> str:
    config = {
        "farm": _columns(farm),
        "backends": sorted((_columns(b) for b in farm.backends), key=lambda b: b["id"]),
    }
    text = json.dumps(config, sort_keys=True, default=str)
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:24]}"'


def farm_etag(session: Session, name: str) -> str | None:
    farm = repo.get_farm(session, name)
    return None if farm is None else digest(farm)


@contextmanager
def collecting() -> Iterator[dict[str, str]]:
    """Collect the ETags of the farms the writes inside commit."""
    written: dict[str, str] = {}
    token = _written.set(written)
    try:
        yield written
    finally:
        _written.reset(token)


def collecting_now() -> bool:
    return _written.get() is not None


def record(session: Session, farm_ids: Iterator[int] | set[int] | frozenset[int]) -> None:
    """After a commit: the ETags of these farms as committed (rows of this session)."""
    written = _written.get()
    if written is None:
        return
    for farm_id in farm_ids:
        farm = session.get(Farm, farm_id)
        if farm is not None:
            written[farm.name] = digest(farm)
