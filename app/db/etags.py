"""Farm ETags (app.api.concurrency): a digest of a farm's configuration and its backends'.

Health and live counts are other tables: a health check never changes a farm's ETag.  A
write records the ETags of the farms it committed (`record`, called by the unit of work)
while a request collects them (`collecting`), so the answer's `ETag` comes from the rows the
write already holds instead of a second session reading the farm again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import select
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
    return _digest(_columns(farm), [_columns(b) for b in farm.backends])


def _digest(farm: dict[str, Any], backends: list[dict[str, Any]]) -> str:
    config = {"farm": farm, "backends": sorted(backends, key=lambda b: b["id"])}
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


def record(session: Session, farm_ids: Collection[int]) -> None:
    """After a commit: the ETags of these farms as committed.

    Read with plain SELECTs of the mapped columns (the ORM objects of the write's session
    may hold collections its flush did not update), which give the same values, and so the
    same digest, as the ORM load of a later `GET`."""
    written = _written.get()
    if written is None or not farm_ids:
        return
    ids = sorted(farm_ids)
    farm_columns = [getattr(Farm, c.key) for c in Farm.__mapper__.column_attrs]
    backend_columns = [getattr(Backend, c.key) for c in Backend.__mapper__.column_attrs]
    backends: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(select(*backend_columns).where(Backend.farm_id.in_(ids))):
        values = dict(row._mapping)
        backends.setdefault(values["farm_id"], []).append(values)
    for row in session.execute(select(*farm_columns).where(Farm.id.in_(ids))):
        values = dict(row._mapping)
        written[values["name"]] = _digest(values, backends.get(values["id"], []))
