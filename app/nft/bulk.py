"""Large IPDS list loads: the elements go through nfnetlink, the rest through libnftables.

A batch that adds, deletes or flushes at least `BULK_ELEMENTS` elements of IPDS list sets
(`l-<list>-<family>-<length>`) is applied in three transactions instead of one:

1. libnftables: the tables and the list sets the elements go to (new sets are empty and no
   rule references them yet: nothing changes for packets);
2. nfnetlink (`ElementWriter`): every list element change, in the batch's order (a reload of
   an existing set, delete + add, is atomic for packets), gated on the ruleset generation
   read after step 1: if anyone else committed in between, nothing is applied;
3. libnftables: everything else (rules, maps, deletions of sets no longer wanted).

If step 2 fails, the sets step 1 created are deleted; if step 3 fails, step 2 is undone
(elements added are deleted, deleted ones added back) and then step 1.  The caller keeps
its database transaction open until all three succeeded, and rolls it back on any failure.

Between steps 2 and 3 (milliseconds) a packet can see a list's new elements with the old
rules: a source whose prefix length is new to the list is matched only after step 3, and a
set the list no longer needs still matches until step 3 deletes it.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

from app.domain.ruleset import TABLE
from app.nft.netlink_elements import ElementOp

Command = dict[str, Any]

BULK_ELEMENTS = 10_000  # fewer list elements stay in the one atomic libnftables batch
_LIST_SET = re.compile(r"l-\d+-([46])-\d+(?:-s\d+)?")


@dataclass
class BulkSplit:
    first: list[Command] = field(default_factory=list)
    elements: list[ElementOp] = field(default_factory=list)
    rest: list[Command] = field(default_factory=list)
    created: list[Command] = field(default_factory=list)  # refs of sets step 1 declares
    count: int = 0  # elements moved to step 2


def _list_family(body: Command) -> int | None:
    """4 or 6 for an IPDS list set of kernlb's table, else None."""
    if body.get("table") != TABLE or body.get("family") != "inet":
        return None
    match = _LIST_SET.fullmatch(str(body.get("name", "")))
    return int(match.group(1)) if match else None


def _keys(family: int, items: list[Any]) -> list[bytes]:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    return list(map(socket.inet_pton, repeat(af), items))  # no Python loop per element


def split_bulk(batch: list[Command], *, minimum: int = BULK_ELEMENTS) -> BulkSplit | None:
    """The three steps of a batch, or None when it is small enough for one transaction."""
    redeclared = {
        (body["family"], body["name"])
        for command in batch
        if (body := command.get("delete", {}).get("set")) is not None
    }

    def movable(body: Command) -> int | None:
        family = _list_family(body)
        if family is None or (body["family"], body["name"]) in redeclared:
            return None
        return family

    count = sum(
        len(body.get("elem", ()))
        for command in batch
        for verb in ("add", "delete")
        if (body := command.get(verb, {}).get("element")) is not None and movable(body)
    )
    if count < minimum:
        return None
    split = BulkSplit(count=count)
    for command in batch:
        verb, body = next(iter(command.items()))
        kind, target = next(iter(body.items())) if isinstance(body, dict) else ("", {})
        family = movable(target) if isinstance(target, dict) else None
        if verb == "add" and kind == "table":
            split.first.append(command)
        elif family is not None and verb == "add" and kind == "set":
            split.first.append(command)
            split.created.append({key: target[key] for key in ("family", "table", "name")})
        elif family is not None and kind == "element" and verb in ("add", "delete"):
            keys = _keys(family, target["elem"])
            op: ElementOp = ElementOp(
                "add" if verb == "add" else "delete",
                target["family"],
                target["table"],
                target["name"],
                keys,
            )
            split.elements.append(op)
        elif family is not None and verb == "flush" and kind == "set":
            split.elements.append(
                ElementOp("flush", target["family"], target["table"], target["name"])
            )
        else:
            split.rest.append(command)
    return split


def inverse(ops: list[ElementOp]) -> list[ElementOp] | None:
    """The operations that undo `ops` (applied), or None when a flush makes it impossible."""
    undo: list[ElementOp] = []
    for op in reversed(ops):
        if op.verb == "flush":
            return None
        verb: Literal["add", "delete"] = "delete" if op.verb == "add" else "add"
        undo.append(ElementOp(verb, op.family, op.table, op.set, op.elements))
    return undo


def apply_in_steps(
    split: BulkSplit,
    *,
    apply: Callable[[list[Command]], None],
    write: Callable[[list[ElementOp]], None],
    undo_failed: Callable[[str], None],
) -> None:
    """Steps 1-3 with their rollbacks.  `apply` and `write` raise on refusal (nothing of that
    step applied); the refusal is re-raised after the rollback.  `undo_failed` is told when
    a rollback itself could not be applied (the caller then treats the kernel as drifted)."""

    def undo_first() -> None:
        if not split.created:
            return
        try:
            apply([{"delete": {"set": ref}} for ref in split.created])
        except Exception as exc:  # reported; the refusal that led here is what is raised
            undo_failed(f"deleting the list sets of a failed load: {exc}")

    apply(split.first)
    try:
        write(split.elements)
    except Exception:
        undo_first()
        raise
    try:
        apply(split.rest)
    except Exception:
        undo = inverse(split.elements)
        if undo is None:
            undo_failed("a flushed list cannot be restored element by element")
        else:
            try:
                write(undo)
            except Exception as exc:  # reported; the refusal that led here is what is raised
                undo_failed(f"undoing a list's elements: {exc}")
        undo_first()
        raise
