"""Drift by content: what the kernel holds, object by object, against what kernlb applied.

Pure functions.  Counting rules and elements (`diff.drift`) misses a tamper that keeps the
counts: a backend address swapped in `bea4`, a farm chain rewritten to send everything to one
slot.  Here every chain's rules and every static set's and map's elements are compared as
canonical JSON.  Dynamic sets (persistence entries, connection counts) are filled by the
packet path and only their declaration is compared.

The kernel lists a few statements differently from how kernlb writes them; `_as_written`
maps those listings back (checked against every golden ruleset in a real kernel):
- `ct mark and 0x80000000 != 0` is listed as `ct mark != 0x0/1` (a prefix match);
- `reject` is listed with its defaults (`icmpx port-unreachable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.ruleset import qualified
from app.nft.diff import _merged
from app.nft.render import Ruleset, canonical

Json = Any
_HOOK_KEYS = ("type", "hook", "prio", "policy")  # `dev` of netdev chains is not listed back
_REJECT_DEFAULT = {"expr": "port-unreachable", "type": "icmpx"}
_MARK_BITS = 32
_SHOWN = 3  # elements named per difference in a log line


@dataclass(frozen=True)
class Content:
    """Canonical text of every kernlb object, keyed by family-qualified name."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hooks: dict[str, dict[str, Json]] = field(default_factory=dict)  # base chains only
    elements: dict[str, frozenset[str]] = field(default_factory=dict)  # static sets and maps
    kinds: dict[str, str] = field(default_factory=dict)  # set/map/ct helper name -> kind


def _hook(decl: dict[str, Json]) -> dict[str, Json]:
    return {key: decl[key] for key in _HOOK_KEYS if key in decl}


def _element(kind: str, key: Json, value: Json) -> str:
    return canonical([key, value]) if kind == "map" else canonical(key)


def expected_content(ruleset: Ruleset) -> Content:
    merged = _merged(ruleset)
    chains = {
        name: tuple(canonical(list(rule)) for rule in chain.rules)
        for name, chain in merged.chains.items()
    }
    hooks = {name: _hook(c.decl) for name, c in merged.chains.items() if "hook" in c.decl}
    elements = {
        name: frozenset(
            _element(decl.kind, key, value) for key, value in merged.elements.get(name, {}).values()
        )
        for name, decl in merged.sets.items()
        if decl.kind in ("set", "map") and not decl.dynamic
    }
    kinds = {name: decl.kind for name, decl in merged.sets.items()}
    return Content(chains=chains, hooks=hooks, elements=elements, kinds=kinds)


def _as_written(statement: Json) -> Json:
    """Undo the kernel's rewriting of the statements kernlb emits (see the module doc)."""
    if not isinstance(statement, dict) or len(statement) != 1:
        return statement
    ((kind, body),) = statement.items()
    if kind == "reject" and body == _REJECT_DEFAULT:
        return {"reject": None}
    if kind == "match" and isinstance(body, dict):
        right = body.get("right")
        if (
            isinstance(right, dict)
            and set(right) == {"prefix"}
            and right["prefix"].get("addr") == 0
            and isinstance(right["prefix"].get("len"), int)
            and body.get("op") in ("==", "!=")
            and body.get("left") in ({"ct": {"key": "mark"}}, {"meta": {"key": "mark"}})
        ):
            length = right["prefix"]["len"]
            mask = ((1 << length) - 1) << (_MARK_BITS - length)
            return {"match": {"op": body["op"], "left": {"&": [body["left"], mask]}, "right": 0}}
    return statement


def _listed_element(kind: str, item: Json) -> str:
    if isinstance(item, dict) and "elem" in item:  # an element with timeout/expires/counter
        item = item["elem"].get("val")
    if kind == "map" and isinstance(item, list) and len(item) == 2:
        key, value = item
        if isinstance(key, dict) and "elem" in key:
            key = key["elem"].get("val")
        return canonical([key, value])
    return canonical(item)


def kernel_content(objects: list[dict[str, Json]]) -> Content:
    """Reduce a `nft -j list table` listing (both families) to comparable canonical text."""
    chains: dict[str, list[str]] = {}
    hooks: dict[str, dict[str, Json]] = {}
    elements: dict[str, frozenset[str]] = {}
    kinds: dict[str, str] = {}
    for item in objects:
        if "chain" in item:
            body = item["chain"]
            name = qualified(body["family"], body["name"])
            chains.setdefault(name, [])
            if "hook" in body:
                hooks[name] = _hook(body)
        elif "rule" in item:
            body = item["rule"]
            name = qualified(body["family"], body["chain"])
            rule = [_as_written(statement) for statement in body.get("expr", [])]
            chains.setdefault(name, []).append(canonical(rule))
        elif "set" in item or "map" in item:
            kind = "set" if "set" in item else "map"
            body = item[kind]
            name = qualified(body["family"], body["name"])
            kinds[name] = kind
            elements[name] = frozenset(_listed_element(kind, e) for e in body.get("elem", []))
        elif "ct helper" in item:
            body = item["ct helper"]
            kinds[qualified(body["family"], body["name"])] = "ct helper"
    return Content(
        chains={name: tuple(rules) for name, rules in chains.items()},
        hooks=hooks,
        elements=elements,
        kinds=kinds,
    )


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _named(items: set[str]) -> str:
    shown = ", ".join(_short(i, 80) for i in sorted(items)[:_SHOWN])
    more = len(items) - _SHOWN
    return shown + (f" (+{more} more)" if more > 0 else "")


def content_drift(expected: Content, actual: Content) -> list[str]:
    """Each object that differs, with what differs, in a stable order."""
    problems: list[str] = []
    for name in sorted(expected.chains.keys() | actual.chains.keys()):
        want, have = expected.chains.get(name), actual.chains.get(name)
        if have is None:
            problems.append(f"chain {name} is missing")
            continue
        if want is None:
            problems.append(f"unexpected chain {name}")
            continue
        if expected.hooks.get(name) != actual.hooks.get(name):
            problems.append(
                f"chain {name} is hooked as {actual.hooks.get(name)}, "
                f"expected {expected.hooks.get(name)}"
            )
        if want != have:
            if len(want) != len(have):
                problems.append(f"chain {name} has {len(have)} rules, expected {len(want)}")
            else:
                index = next(i for i, (a, b) in enumerate(zip(want, have, strict=True)) if a != b)
                problems.append(
                    f"chain {name} rule {index + 1} is {_short(have[index])}, "
                    f"expected {_short(want[index])}"
                )
    for name in sorted(expected.kinds.keys() | actual.kinds.keys()):
        want_kind, have_kind = expected.kinds.get(name), actual.kinds.get(name)
        if have_kind is None:
            problems.append(f"{want_kind} {name} is missing")
        elif want_kind is None:
            problems.append(f"unexpected {have_kind} {name}")
        elif want_kind != have_kind:
            problems.append(f"{name} is a {have_kind}, expected a {want_kind}")
        elif name in expected.elements:
            want_items = expected.elements[name]
            have_items = actual.elements.get(name, frozenset())
            extra, missing = have_items - want_items, want_items - have_items
            if extra:
                problems.append(f"{have_kind} {name} has unexpected elements {_named(set(extra))}")
            if missing:
                problems.append(f"{have_kind} {name} lacks elements {_named(set(missing))}")
    return problems
