"""Named farmguardian objects (ZAPI 4.0 `/monitoring/fg`, zapi40-l4.md §4) over the one health
checker.

A farm links at most one object (`farm.fg_name`).  Linking copies the object's settings into the
farm's `fg_*` columns, which is what the health checker and v3.1's `fg*` fields read; changing a
linked object rewrites the columns of every farm it is linked to.  So a check set through 4.0
shows in 3.1's fields, and v3.1's PUT /farms/NAME/fg maintains the object `_default_NAME`
(`sync_default`), which 4.0 lists as an ordinary farmguardian (§4.4).

Templates (app/domain/fg_templates.py) are not stored until their first write (a link or a
change), when they are copied into the table and keep `template: true`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import repositories as repo
from app.db.models import Farm, FarmGuardian
from app.domain.fg_templates import TEMPLATES
from app.errors import BadRequest, NotFound
from app.health.checks import CheckError, missing_plugin, parse_check
from app.health.recorder import utcnow
from app.reconcile.uow import UnitOfWork, Work
from app.schemas.views import FgView
from app.services.farms import status_of

MIGRATED = "This farmguardian was created automatically to migrate to ZEVENET 5.2 version or higher"
DEFAULT_PREFIX = "_default_"


def _template_row(name: str) -> FarmGuardian:
    t = TEMPLATES[name]
    return FarmGuardian(
        name=t.name,
        description=t.description,
        command=t.command,
        interval=t.interval,
        timeout=t.interval,
        log=False,
        cut_conns=t.cut_conns,
        backend_alias=False,
        template=True,
    )


def _farms_of(session: Session, name: str) -> list[Farm]:
    return list(session.scalars(select(Farm).where(Farm.fg_name == name).order_by(Farm.name)))


def _view(row: FarmGuardian, farms: list[str]) -> FgView:
    return FgView(
        name=row.name,
        description=row.description,
        command=row.command,
        interval=row.interval,
        timeout=row.timeout,
        log=row.log,
        cut_conns=row.cut_conns,
        backend_alias=row.backend_alias,
        template=row.template,
        farms=tuple(farms),
    )


def copy_to_farm(row: FarmGuardian, farm: Farm) -> None:
    """The object's settings become the farm's check (what the health checker runs)."""
    farm.fg_name = row.name
    farm.fg_enabled = True
    farm.fg_script = row.command
    farm.fg_timecheck = row.interval
    farm.fg_timeout = row.timeout if row.timeout != row.interval else 0
    farm.fg_log = row.log
    farm.fg_cut_conns = row.cut_conns


def reset_health(work: Work, farm: Farm, reason: str) -> None:
    """The backends the check marked down are up again (nothing else would bring them back)."""
    down = [b for b in farm.backends if b.health is not None and b.health.state == "down"]
    for backend in down:
        assert backend.health is not None
        backend.health.state = "up"
        backend.health.changed_at = utcnow()
        backend.health.reason = reason


def unlink(work: Work, farm: Farm) -> None:
    farm.fg_name = None
    farm.fg_enabled = False
    reset_health(work, farm, "farmguardian removed")


def sync_default(session: Session, farm: Farm) -> None:
    """After a v3.1 PUT /farms/NAME/fg: `_default_NAME` holds the farm's check, and is linked
    when the check is enabled (zapi40-l4.md §4.4, steps 3 to 5)."""
    name = f"{DEFAULT_PREFIX}{farm.name}"
    previous = farm.fg_name
    row = session.get(FarmGuardian, name)
    if row is None:
        row = FarmGuardian(name=name, backend_alias=False, template=False)
        session.add(row)
    row.description = MIGRATED
    row.command = farm.fg_script
    row.interval = farm.fg_timecheck
    row.timeout = farm.fg_timeout or farm.fg_timecheck
    row.log = farm.fg_log
    row.cut_conns = farm.fg_cut_conns
    farm.fg_name = name if farm.fg_enabled else None
    if previous and previous != name and previous.startswith(DEFAULT_PREFIX):
        session.flush()
        if not _farms_of(session, previous):
            old = session.get(FarmGuardian, previous)
            if old is not None and not old.template:
                session.delete(old)


def shared_link(session: Session, farm: Farm) -> str | None:
    """v3.1 must not modify an object other farms use too: its name, if that is the case."""
    if farm.fg_name and len(_farms_of(session, farm.fg_name)) > 1:
        return farm.fg_name
    return None


class FgObjectService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        plugin_dir: Path,
        unreachable: Callable[[], frozenset[int]] = frozenset,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.uow = uow
        self.plugin_dir = plugin_dir
        self.unreachable = unreachable
        self.on_change = on_change  # wakes the health checker

    # -- reads -----------------------------------------------------------------------------

    def list(self) -> list[FgView]:
        """Stored objects first, then the templates not copied yet (the original's order)."""
        with self.uow.read() as session:
            rows = list(session.scalars(select(FarmGuardian).order_by(FarmGuardian.name)))
            links: dict[str, list[str]] = {}
            for farm in session.scalars(select(Farm).where(Farm.fg_name.is_not(None))):
                links.setdefault(str(farm.fg_name), []).append(farm.name)
            stored = {row.name for row in rows}
            views = [_view(row, sorted(links.get(row.name, []))) for row in rows]
            views += [_view(_template_row(n), []) for n in TEMPLATES if n not in stored]
        return views

    def get(self, name: str) -> FgView | None:
        with self.uow.read() as session:
            row = session.get(FarmGuardian, name)
            if row is None:
                return _view(_template_row(name), []) if name in TEMPLATES else None
            return _view(row, [f.name for f in _farms_of(session, name)])

    # -- changes ---------------------------------------------------------------------------

    def create(self, name: str, copy_from: str | None, *, description: str) -> FgView:
        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=description)

        with self.uow.write(description) as work:
            session = work.session
            if session.get(FarmGuardian, name) is not None:
                raise bad(f"The farm guardian '{name}' already exists.")
            if name in TEMPLATES:
                raise bad(f"The farm guardian '{name}' is a template, select another name, please")
            if copy_from:
                source = session.get(FarmGuardian, copy_from)
                if source is None and copy_from in TEMPLATES:
                    source = _template_row(copy_from)
                if source is None:
                    raise bad(f"The parent farm guardian '{copy_from}' does not exist.")
                row = FarmGuardian(
                    name=name,
                    description=source.description,
                    command=source.command,
                    interval=source.interval,
                    timeout=source.timeout,
                    log=source.log,
                    cut_conns=source.cut_conns,
                    backend_alias=source.backend_alias,
                    template=False,
                )
            else:
                row = FarmGuardian(
                    name=name,
                    description="",
                    command="",
                    interval=10,
                    timeout=10,
                    log=False,
                    cut_conns=False,
                    backend_alias=False,
                    template=False,
                )
            session.add(row)
            session.flush()
            view = _view(row, [])
        return view

    def modify(self, name: str, changes: dict[str, Any], *, force: bool) -> FgView:
        """`changes`: column -> value.  Linked farms take the new settings in the same commit."""
        description = f"Modify farm guardian '{name}'"

        def bad(message: str) -> BadRequest:
            return BadRequest(message, description=description)

        with self.uow.write(description) as work:
            session = work.session
            row = self._stored(session, name)
            if row is None:
                raise bad(f"The farm guardian '{name}' does not exist.")
            if row.template and ({"description", "command"} & changes.keys()):
                raise bad(
                    "It is not allow to modify the parameters 'description' or 'command' "
                    "in a template."
                )
            farms = _farms_of(session, name)
            running = [f.name for f in farms if f.running]
            if running and ({"command", "backend_alias"} & changes.keys()) and not force:
                raise bad(
                    f"Farm guardian '{name}' is running in: '{', '.join(running)}'. "
                    "To apply, send parameter 'force'"
                )
            for key, value in changes.items():
                setattr(row, key, value)
            if farms:
                self._check_command(row.command, bad)
            for farm in farms:
                copy_to_farm(row, farm)
            session.flush()
            view = _view(row, [f.name for f in farms])
        self.on_change()
        return view

    def delete(self, name: str) -> None:
        description = f"Delete the farm guardian '{name}'"
        with self.uow.write(description) as work:
            session = work.session
            row = session.get(FarmGuardian, name)
            if row is None:
                if name in TEMPLATES:  # nothing stored: the template itself cannot go
                    raise BadRequest(
                        f"Deleting the farm guardian '{name}'.", description=description
                    )
                raise NotFound(f"The farm guardian {name} does not exist", description=description)
            farms = _farms_of(session, name)
            running = [f.name for f in farms if f.running]
            if running:
                raise BadRequest(
                    f"It is not possible delete farm guardian '{name}' because it is running "
                    f"in: '{', '.join(running)}'",
                    description=description,
                )
            for farm in farms:
                unlink(work, farm)
            session.delete(row)
        self.on_change()
        if name in TEMPLATES:
            # The original resets the template and answers this (its delete "fails").
            raise BadRequest(f"Deleting the farm guardian '{name}'.", description=description)

    def attach(self, farm_name: str, name: str) -> str:
        label = f"farm '{farm_name}'"
        description = f"Add the farm guardian '{name}' to the '{label}'"
        with self.uow.write(description) as work:
            session = work.session
            farm = repo.get_farm(session, farm_name)
            if farm is None:
                raise NotFound(f"The farm '{farm_name}' does not exist", description=description)
            row = self._stored(session, name)
            if row is None:
                raise NotFound(f"The farmguardian '{name}' does not exist", description=description)
            if farm.fg_name == name:
                raise BadRequest(
                    f"'{name}' is already applied in the '{label}'", description=description
                )
            if farm.fg_name is not None:
                raise BadRequest(
                    f"The '{label}' has already linked a farm guardian", description=description
                )

            def bad(message: str) -> BadRequest:
                return BadRequest(
                    f"There was an error trying to add '{name}' to the '{label}': {message}",
                    description=description,
                )

            self._check_command(row.command, bad)
            copy_to_farm(row, farm)
            session.flush()
            status = status_of(farm, self.unreachable())
        self.on_change()
        return status

    def detach(self, farm_name: str, name: str) -> str:
        label = f"farm '{farm_name}'"
        description = f"Remove the farm guardian '{name}' from the '{label}'"
        with self.uow.write(description) as work:
            session = work.session
            farm = repo.get_farm(session, farm_name)
            if farm is None:
                raise NotFound(f"The farm '{farm_name}' does not exist", description=description)
            if session.get(FarmGuardian, name) is None and name not in TEMPLATES:
                raise NotFound(f"The farmguardian '{name}' does not exist", description=description)
            if farm.fg_name != name:
                raise BadRequest(
                    f"The farm guardian '{name}' is not applied to the '{label}'",
                    description=description,
                )
            unlink(work, farm)
            session.flush()
            status = status_of(farm, self.unreachable())
        self.on_change()
        return status

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _stored(session: Session, name: str) -> FarmGuardian | None:
        """The stored object, copying a template into the table on its first write."""
        row = session.get(FarmGuardian, name)
        if row is None and name in TEMPLATES:
            row = _template_row(name)
            session.add(row)
            session.flush()
        return row

    def _check_command(self, command: str, bad: Callable[[str], BadRequest]) -> None:
        """A check that runs on a farm must be runnable here: a 400 now, not a farm whose
        backends all fail later."""
        try:
            check = parse_check(command, self.plugin_dir)
        except CheckError as exc:
            raise bad(f"the command cannot run, {exc}") from None
        problem = missing_plugin(check)
        if problem is not None:
            raise bad(f"the command cannot run, {problem}")
