"""Farm ETags (app.api.concurrency): a digest of a farm's configuration and its backends'.

Health and live counts are other tables: a health check never changes a farm's ETag.  A
write records the ETags of the farms it commits (`record`, from the rows the reconciler
renders them from) while a request collects them (`collecting`), so the answer's `ETag`
needs no second session reading the farm again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import Backend, Farm
from app.db.repositories import FarmRows

# Farm name -> ETag of the farms the current request's writes committed.  The dict is
# shared with the worker threads the request runs its writes in (they get a copy of the
# context, which holds the same dict).
_written: ContextVar[dict[str, str] | None] = ContextVar("kernlb_written_etags", default=None)
# The same for a `GET /farms/NAME`: the ETag of the rows its answer was made from.
_read: ContextVar[dict[str, str] | None] = ContextVar("kernlb_read_etags", default=None)


def _columns(row: Farm | Backend) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


def digest(farm: Farm) -> str:
    return _digest(_columns(farm), [_columns(b) for b in farm.backends])


def _digest(farm: dict[str, Any], backends: list[dict[str, Any]]) -> str:
    config = {"farm": farm, "backends": sorted(backends, key=lambda b: b["id"])}
    text = json.dumps(config, sort_keys=True, default=str)
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:24]}"'


def farm_etag(session: Session, name: str) -> str | None:
    farm = repo.get_farm(session, name)
    return None if farm is None else digest(farm)


@contextmanager
def _collected(into: ContextVar[dict[str, str] | None]) -> Iterator[dict[str, str]]:
    found: dict[str, str] = {}
    token = into.set(found)
    try:
        yield found
    finally:
        into.reset(token)


def collecting() -> AbstractContextManager[dict[str, str]]:
    """Collect the ETags of the farms the writes inside commit (`record`)."""
    return _collected(_written)


def reading() -> AbstractContextManager[dict[str, str]]:
    """Collect the ETags of the farms read inside (`record_read`)."""
    return _collected(_read)


def record_read(farm: Farm) -> None:
    """The ETag of a farm as the current `GET /farms/NAME` read it (so the answer's `ETag` is
    that of the rows shown, with no second read).  Only while a request collects them."""
    read = _read.get()
    if read is not None:
        read[farm.name] = digest(farm)


def record(rows: FarmRows) -> None:
    """The ETags of these farms as a write is about to commit them (its flushed rows, read
    with plain SELECTs of the mapped columns: the same values, and so the same digest, as
    the ORM load of a later `GET`).  Only while a request collects them."""
    written = _written.get()
    if written is None:
        return
    for farm in rows.farms:
        written[farm["name"]] = _digest(farm, rows.backends.get(farm["id"], []))
