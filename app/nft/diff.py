"""From two rulesets (or a ruleset and what the kernel holds) to one minimal nftables batch.

Pure functions.  Order inside a batch matters to the kernel: objects are declared before
anything references them, references are removed before what they point to is deleted.
The whole batch is one transaction, so packets see the old ruleset or the new one, never
a mixture, and never an empty chain or map in between.

Dynamic sets (persistence entries filled by the packet path) are never flushed or
re-declared unless their definition changes: clients stay stuck to their backends across
unrelated changes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.domain.ruleset import FAMILIES, TABLE, split_name
from app.nft.render import Chain, Fragment, ListFragment, Ruleset, SetDecl

Json = Any
Command = dict[str, Json]


@dataclass(frozen=True)
class KernelSet:
    """A set, map or ct helper object, reduced to what reconciliation compares."""

    kind: str  # "set" | "map" | "ct helper"
    type: Json
    map: Json | None = None
    flags: tuple[str, ...] = ()
    timeout: int | None = None
    elements: int = 0
    protocol: str | None = None  # ct helpers
    dynamic: bool = False  # filled by the packet path: element counts are not compared


@dataclass(frozen=True)
class KernelSummary:
    """What kernlb's tables hold, reduced to what reconciliation compares.

    Object names are qualified by family: `inet/f-1`, `netdev/in-eth0`.
    """

    chains: dict[str, int] = field(default_factory=dict)  # chain -> number of rules
    sets: dict[str, KernelSet] = field(default_factory=dict)
    tables: frozenset[str] = frozenset(FAMILIES)  # families whose kernlb table exists


@dataclass
class _Batch:
    declare: list[Command] = field(default_factory=list)
    flush: list[Command] = field(default_factory=list)
    delete_elements: list[Command] = field(default_factory=list)
    delete_objects: list[Command] = field(default_factory=list)
    redeclare: list[Command] = field(default_factory=list)
    rules: list[Command] = field(default_factory=list)
    add_elements: list[Command] = field(default_factory=list)

    def commands(self) -> list[Command]:
        return [
            *self.declare,
            *self.flush,
            *self.delete_elements,
            *self.delete_objects,
            *self.redeclare,
            *self.rules,
            *self.add_elements,
        ]


def table_command(family: str) -> Command:
    return {"add": {"table": {"family": family, "name": TABLE}}}


def _ref(qualified: str) -> dict[str, Json]:
    family, name = split_name(qualified)
    return {"family": family, "table": TABLE, "name": name}


def _rule_commands(qualified: str, chain: Chain) -> Iterator[Command]:
    family, name = split_name(qualified)
    for expr in chain.rules:
        rule = {"family": family, "table": TABLE, "chain": name, "expr": list(expr)}
        yield {"add": {"rule": rule}}


# What the value of a rule replaced in place may be made of: expressions whose kernel
# counterparts have no `validate` operation (numgen, symhash), unlike meta, lookups and
# verdicts, any of which makes the kernel validate the whole table at commit.  Packet
# fields are not: in the inet table libnftables adds a `meta nfproto`/`meta l4proto`
# dependency to `ip saddr` or `th sport` (measured: `ct mark set jhash ip saddr ...` costs
# the validation, `ct mark set numgen|symhash ...` does not).  A hash farm's modulus is
# its fixed table size anyway: a backend joining changes only `slots` elements.
_INERT_VALUES = frozenset({"numgen", "symhash", "mode", "mod", "offset"})


def _inert_value(value: Json) -> bool:
    if isinstance(value, dict):
        return all(k in _INERT_VALUES and _inert_value(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_inert_value(v) for v in value)
    return not (isinstance(value, str) and value.startswith("@"))


def inert(expr: Iterable[Json]) -> bool:
    """A rule whose addition does not make the kernel validate the whole table.

    Adding a rule with a verdict (goto, jump, vmap), a set or map lookup, a packet-mark
    write or a NAT statement makes the kernel walk every chain reachable from the base
    chains at commit (nft_table_validate): at 10,000 farms that is most of a change's
    kernel time.  Only `ct mark set <numgen | symhash ...>` rules qualify: the
    scheduling rule of a farm chain (app.nft.render), which is all a backend joining or
    leaving a weighted farm changes.
    """
    statements = list(expr)
    if not statements:
        return False
    for statement in statements:
        if not isinstance(statement, dict) or statement.keys() != {"mangle"}:
            return False
        mangle = statement["mangle"]
        if mangle.get("key") != {"ct": {"key": "mark"}} or not _inert_value(mangle.get("value")):
            return False
    return True


def _replacements(qualified: str, old: Chain, new: Chain) -> list[Command] | None:
    """`replace rule` commands turning `old` into `new` in place, or None when the chains
    differ in anything but inert rules at the same positions (then: flush and add).

    A command names the rule by its position (`index`) and the chain's rule count
    (`rules`), not by the kernel's handle, which this pure diff does not know: the adapter
    looks the handles up just before the batch (app.nft.netlink_rules) and refuses the
    batch when the chain does not hold that many rules.  The kernel keeps a replaced
    rule's handle and position, so nothing else of the chain changes.
    """
    if old.decl != new.decl or len(old.rules) != len(new.rules):
        return None
    family, name = split_name(qualified)
    commands: list[Command] = []
    for index, (before, after) in enumerate(zip(old.rules, new.rules, strict=True)):
        if before == after:
            continue
        if not (inert(before) and inert(after)):
            return None
        rule = {
            "family": family,
            "table": TABLE,
            "chain": name,
            "index": index,
            "rules": len(new.rules),
            "expr": list(after),
        }
        commands.append({"replace": {"rule": rule}})
    return commands


def _element_command(verb: str, qualified: str, items: list[Json]) -> Command:
    return {verb: {"element": {**_ref(qualified), "elem": items}}}


def _iter_fragments(ruleset: Ruleset) -> Iterable[tuple[object, Fragment]]:
    yield "skeleton", ruleset.skeleton
    yield from ruleset.farms.items()


def _diff_fragment(old: Fragment, new: Fragment, batch: _Batch) -> None:
    redefined_sets = {
        name for name, decl in new.sets.items() if name in old.sets and old.sets[name] != decl
    }
    for name, chain in new.chains.items():
        before = old.chains.get(name)
        if before is None:
            batch.declare.append({"add": {"chain": chain.decl}})
            batch.rules.extend(_rule_commands(name, chain))
        elif before != chain or redefined_sets:
            replaced = None if redefined_sets else _replacements(name, before, chain)
            if replaced is not None:
                batch.rules.extend(replaced)
                continue
            batch.flush.append({"flush": {"chain": _ref(name)}})
            batch.rules.extend(_rule_commands(name, chain))
    for name in old.chains.keys() - new.chains.keys():
        batch.flush.append({"flush": {"chain": _ref(name)}})
        batch.delete_objects.append({"delete": {"chain": _ref(name)}})
    for name, decl in new.sets.items():
        if name not in old.sets:
            batch.declare.append({"add": {decl.kind: decl.decl}})
        elif name in redefined_sets:
            old_decl = old.sets[name]
            batch.delete_objects.append({"delete": {old_decl.kind: _ref(name)}})
            batch.redeclare.append({"add": {decl.kind: decl.decl}})
    for name in old.sets.keys() - new.sets.keys():
        batch.delete_objects.append({"delete": {old.sets[name].kind: _ref(name)}})
    for map_name in sorted(old.elements.keys() | new.elements.keys()):
        before_items = old.elements.get(map_name, {})
        after_items = new.elements.get(map_name, {})
        removed = [
            item[0]
            for key, item in before_items.items()
            if key not in after_items or after_items[key] != item
        ]
        added = [
            [item[0], item[1]]
            for key, item in after_items.items()
            if key not in before_items or before_items[key] != item
        ]
        if removed:
            batch.delete_elements.append(_element_command("delete", map_name, removed))
        if added:
            batch.add_elements.append(_element_command("add", map_name, added))


ELEMENT_CHUNK = 100_000  # list elements per command (one batch all the same)


SORTED_ELEMENTS = 10_000  # larger element lists go unsorted (sorting 1,000,000 costs ~1 s)


def _set_element_commands(verb: str, qualified: str, sources: Collection[str]) -> Iterator[Command]:
    # Sorted for readable, reproducible batches; the kernel does not care about the order.
    items = sorted(sources) if len(sources) <= SORTED_ELEMENTS else list(sources)
    for start in range(0, len(items), ELEMENT_CHUNK):
        yield _element_command(verb, qualified, items[start : start + ELEMENT_CHUNK])


def _diff_list(old: ListFragment, new: ListFragment, batch: _Batch) -> None:
    """An IPDS list: only the sources that changed are added or deleted."""
    for name, decl in new.sets.items():
        before = old.sets.get(name)
        if before is None:
            batch.declare.append({"add": {decl.kind: decl.decl}})
        elif before != decl:
            batch.delete_objects.append({"delete": {before.kind: _ref(name)}})
            batch.redeclare.append({"add": {decl.kind: decl.decl}})
    for name in old.sets.keys() - new.sets.keys():
        batch.delete_objects.append({"delete": {old.sets[name].kind: _ref(name)}})
    for name, members in new.members.items():
        if name not in new.sets:
            continue
        redeclared = name in old.sets and old.sets[name] != new.sets[name]
        had: frozenset[str] = frozenset() if redeclared else old.members.get(name, frozenset())
        if members is had:
            continue
        batch.delete_elements.extend(_set_element_commands("delete", name, had - members))
        batch.add_elements.extend(_set_element_commands("add", name, members - had))


def diff(
    old: Ruleset,
    new: Ruleset,
    *,
    farms: Iterable[int] | None = None,
    lists: Iterable[int] | None = None,
) -> list[Command]:
    """The minimal batch that turns the applied `old` ruleset into `new`.

    `farms` names the farms that may differ (the reconciler knows which ones a request
    touched): only those are compared, so a change costs the same at 10 or 10,000 farms.
    `lists` does the same for IPDS lists (None: compare every one).
    """
    batch = _Batch()
    empty_list = ListFragment()
    list_ids = sorted(old.lists.keys() | new.lists.keys()) if lists is None else sorted(set(lists))
    for list_id in list_ids:
        before_list = old.lists.get(list_id, empty_list)
        after_list = new.lists.get(list_id, empty_list)
        if before_list is not after_list:
            _diff_list(before_list, after_list, batch)
    empty = Fragment()
    if old.skeleton is not new.skeleton and old.skeleton != new.skeleton:
        _diff_fragment(old.skeleton, new.skeleton, batch)
    candidates = (
        sorted(old.farms.keys() | new.farms.keys()) if farms is None else sorted(set(farms))
    )
    for farm_id in candidates:
        before = old.farms.get(farm_id, empty)
        after = new.farms.get(farm_id, empty)
        if before is after or before == after:
            continue
        _diff_fragment(before, after, batch)
    return batch.commands()


def _merged(ruleset: Ruleset) -> Fragment:
    chains: dict[str, Chain] = {}
    sets: dict[str, SetDecl] = {}
    elements: dict[str, dict[str, tuple[Json, Json]]] = {}
    for _, fragment in _iter_fragments(ruleset):
        chains.update(fragment.chains)
        sets.update(fragment.sets)
        for map_name, items in fragment.elements.items():
            elements.setdefault(map_name, {}).update(items)
    return Fragment(chains=chains, sets=sets, elements=elements)


def _set_matches(decl: SetDecl, kernel: KernelSet) -> bool:
    if decl.kind != kernel.kind:
        return False
    if decl.kind == "counter":
        return True
    if decl.kind == "ct helper":
        return bool(decl.decl["type"] == kernel.type and decl.decl["protocol"] == kernel.protocol)
    want_type = decl.decl["type"]
    if _as_tuple(want_type) != _as_tuple(kernel.type):
        return False
    if decl.kind == "map" and decl.decl.get("map") != kernel.map:
        return False
    if "interval" in decl.decl.get("flags", []) and "interval" not in kernel.flags:
        return False
    return not (decl.dynamic and decl.decl.get("timeout") != kernel.timeout)


def _as_tuple(value: Json) -> tuple[Json, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def sync(new: Ruleset, kernel: KernelSummary | None) -> list[Command]:
    """One atomic batch that makes the kernel hold exactly `new`, whatever it holds now.

    Used at start-up and for drift repair.  Existing chains and static maps are flushed and
    refilled inside the same transaction (no window without rules); dynamic sets whose
    definition still matches are kept with their entries; objects kernlb no longer wants
    are deleted.  `kernel=None` means the table does not exist.
    """
    want = _merged(new)
    have = kernel or KernelSummary(tables=frozenset())
    batch = _Batch()
    batch.declare.extend(table_command(family) for family in FAMILIES)
    for name in sorted(want.chains):
        batch.declare.append({"add": {"chain": want.chains[name].decl}})
    for name in sorted(have.chains):
        batch.flush.append({"flush": {"chain": _ref(name)}})
        if name not in want.chains:
            batch.delete_objects.append({"delete": {"chain": _ref(name)}})
    for name in sorted(want.sets):
        decl = want.sets[name]
        present = have.sets.get(name)
        if present is None:
            batch.declare.append({"add": {decl.kind: decl.decl}})
        elif not _set_matches(decl, present):
            batch.delete_objects.append({"delete": {present.kind: _ref(name)}})
            batch.redeclare.append({"add": {decl.kind: decl.decl}})
        elif not decl.dynamic:
            batch.flush.append({"flush": {decl.kind: _ref(name)}})
    list_sets = {name: decl for lst in new.lists.values() for name, decl in lst.sets.items()}
    for name in sorted(list_sets):
        decl = list_sets[name]
        present = have.sets.get(name)
        if present is None:
            batch.declare.append({"add": {decl.kind: decl.decl}})
        elif not _set_matches(decl, present):
            batch.delete_objects.append({"delete": {present.kind: _ref(name)}})
            batch.redeclare.append({"add": {decl.kind: decl.decl}})
        else:
            batch.flush.append({"flush": {decl.kind: _ref(name)}})
    wanted = want.sets.keys() | list_sets.keys()
    for name in sorted(have.sets.keys() - wanted):
        batch.delete_objects.append({"delete": {have.sets[name].kind: _ref(name)}})
    for name in sorted(want.chains):
        batch.rules.extend(_rule_commands(name, want.chains[name]))
    for map_name in sorted(want.elements):
        items = [[key, value] for key, value in want.elements[map_name].values()]
        if items:
            batch.add_elements.append(_element_command("add", map_name, items))
    for lst in new.lists.values():
        for name, members in sorted(lst.members.items()):
            batch.add_elements.extend(_set_element_commands("add", name, members))
    return batch.commands()


def expected_summary(ruleset: Ruleset) -> KernelSummary:
    """What the kernel should report after `ruleset` was applied (for drift checks)."""
    merged = _merged(ruleset)
    chains = {name: len(chain.rules) for name, chain in merged.chains.items()}
    sets = {}
    for lst in ruleset.lists.values():
        for name, decl in lst.sets.items():
            sets[name] = KernelSet(
                kind=decl.kind,
                type=decl.decl["type"],
                flags=tuple(decl.decl.get("flags", ())),
                elements=len(lst.members.get(name, ())),
            )
    for name, decl in merged.sets.items():
        sets[name] = KernelSet(
            kind=decl.kind,
            type=decl.decl.get("type"),
            map=decl.decl.get("map"),
            flags=tuple(decl.decl.get("flags", ())),
            timeout=decl.decl.get("timeout"),
            elements=len(merged.elements.get(name, {})),
            protocol=decl.decl.get("protocol"),
            dynamic=decl.dynamic,
        )
    return KernelSummary(chains=chains, sets=sets)


def drift(expected: KernelSummary, actual: KernelSummary | None) -> list[str]:
    """Human-readable differences between what kernlb applied and what the kernel holds."""
    if actual is None:
        return [f"table {family} kernlb is missing" for family in FAMILIES]
    problems = [
        f"table {family} kernlb is missing" for family in FAMILIES if family not in actual.tables
    ]
    for name, count in sorted(expected.chains.items()):
        have = actual.chains.get(name)
        if have is None:
            problems.append(f"chain {name} is missing")
        elif have != count:
            problems.append(f"chain {name} has {have} rules, expected {count}")
    problems.extend(
        f"unexpected chain {name}" for name in sorted(actual.chains.keys() - expected.chains.keys())
    )
    for name, want in sorted(expected.sets.items()):
        got = actual.sets.get(name)
        if got is None:
            problems.append(f"{want.kind} {name} is missing")
        elif got.kind != want.kind:
            problems.append(f"{name} is a {got.kind}, expected a {want.kind}")
        elif not want.dynamic and got.elements != want.elements:
            # static maps only: dynamic sets are filled by traffic
            problems.append(
                f"{want.kind} {name} has {got.elements} elements, expected {want.elements}"
            )
    problems.extend(
        f"unexpected {actual.sets[name].kind} {name}"
        for name in sorted(actual.sets.keys() - expected.sets.keys())
    )
    return problems
