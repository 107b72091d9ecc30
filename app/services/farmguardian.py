"""Farmguardian use cases: PUT /farms/NAME/fg (v3.1, reference §7.4) and its read-back.

v3.1 fields: `fgenabled`, `fglog` ("true"/"false"), `fgscript`, `fgtimecheck` (seconds).
kernlb extensions, in the same style: `fgtimeout` (seconds per probe, 0 = `fgtimecheck`),
`fgrise`/`fgfall` (consecutive passing/failing rounds that flip a backend, default 1 as in
Zevenet) and `fgcutconns` ("true": cut the connections of a backend that leaves rotation).

Choices where the reference leaves room:
- `service` is accepted when empty (the Go client always sends it); l4xnat farms have none.
- `fglog: ""` (what the Go client sends when the flag is unset) leaves the flag as it was,
  where the original answered 400.
- The answer's `params` are the farm's four v3.1 fields after the change, typed, plus the
  extension fields the request named (app/schemas/fg.py).
- Turning farmguardian off brings every backend it had marked down back up (Zevenet does the
  same when it stops a farmguardian): nothing would ever mark them up again otherwise.
  Changing the check keeps each backend's last known health until the new check decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.db import repositories as repo
from app.db.models import Farm
from app.errors import BadRequest, NotFound
from app.health.checks import CheckError, missing_plugin, parse_check
from app.health.recorder import utcnow
from app.reconcile.uow import UnitOfWork
from app.schemas.requests import FarmGuardianUpdate
from app.schemas.views import FarmView
from app.services.fg_objects import shared_link, sync_default

DESCRIPTION = "Modify farm guardian"


class FarmGuardianService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        plugin_dir: Path,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.uow = uow
        self.plugin_dir = plugin_dir
        self.on_change = on_change  # wakes the checker

    def show(self, name: str) -> Farm:
        with self.uow.read() as session:
            farm = repo.get_farm(session, name)
            if farm is None:
                raise NotFound(
                    f"The farmname {name} does not exist.", description="Show farm guardian"
                )
            return farm

    def view(self, name: str) -> FarmView:
        """The farm with its backends' statuses as observed (GET /farms/NAME/fg)."""
        return FarmView.of(self.show(name), self.uow.reconciler.unreachable_marks())

    def modify(self, name: str, body: Mapping[str, Any] | FarmGuardianUpdate) -> Farm:
        with self.uow.write(DESCRIPTION) as work:
            farm = repo.get_farm(work.session, name)
            if farm is None:
                raise NotFound(f"The farmname {name} does not exist.", description=DESCRIPTION)
            if farm.profile != "l4xnat":
                raise _bad("Farm guardian is not supported for the requested farm profile.")
            changes = FarmGuardianUpdate.parse(body, description=DESCRIPTION).changes()
            shared = shared_link(work.session, farm)
            if shared is not None:
                raise _bad(
                    f"Farm guardian {shared} is used for several farms, modify it from API 3.2 "
                    "or later"
                )
            self._check_script(farm, changes)
            was_enabled = farm.fg_enabled
            for key, value in changes.items():
                setattr(farm, key, value)
            if was_enabled and not farm.fg_enabled:
                _reset_health(farm)
            sync_default(work.session, farm)  # the 4.0 view of this check: `_default_NAME`
        self.on_change()
        return farm

    def _check_script(self, farm: Farm, changes: dict[str, Any]) -> None:
        """The script that will run must be runnable here (a missing plugin is a 400 now, not
        a farm whose backends all fail later)."""
        script: str = changes.get("fg_script", farm.fg_script)
        if "fg_script" not in changes and not changes.get("fg_enabled", farm.fg_enabled):
            return
        try:
            check = parse_check(script, self.plugin_dir)
        except CheckError as exc:
            raise _bad(f"Invalid fgscript, {exc}.") from None
        problem = missing_plugin(check)
        if problem is not None:
            raise _bad(f"Invalid fgscript, {problem}.")


def _bad(message: str) -> BadRequest:
    return BadRequest(message, description=DESCRIPTION)


def _reset_health(farm: Farm) -> None:
    """Farmguardian off: the backends it marked down are up again (nothing else would)."""
    down = [b for b in farm.backends if b.health is not None and b.health.state == "down"]
    for backend in down:
        assert backend.health is not None
        backend.health.state = "up"
        backend.health.changed_at = utcnow()
        backend.health.reason = "farmguardian disabled"
