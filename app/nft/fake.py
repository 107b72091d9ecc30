"""An in-memory stand-in for the kernel, for API tests and diff tests.

It interprets the subset of nftables JSON commands kernlb emits, enforcing the same
failure modes the kernel has for them (flush/delete of a missing object, deleting a
missing element, re-adding a key with another value, rules referencing missing chains or
sets) and applies a batch all-or-nothing.  Real-kernel tests use `LibNftAdapter`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from app.domain.model import HELPERS
from app.domain.ruleset import qualified
from app.nft.adapter import NftError, resolve_replacements
from app.nft.diff import KernelSet, KernelSummary
from app.nft.render import canonical

Json = Any
_REF = re.compile(r'"@([^"]+)"|"target":\s*"([^"]+)"|"ct helper":\s*"([^"]+)"')


@dataclass
class _Set:
    kind: str
    decl: dict[str, Json]
    elements: dict[str, Json] = field(default_factory=dict)
    keys: dict[str, Json] = field(default_factory=dict)  # canonical key -> key as written


@dataclass
class _State:
    tables: set[str] = field(default_factory=set)  # families
    chains: dict[str, list[Json]] = field(default_factory=dict)
    chain_decls: dict[str, dict[str, Json]] = field(default_factory=dict)
    sets: dict[str, _Set] = field(default_factory=dict)


class FakeNftAdapter:
    def __init__(self) -> None:
        self.state = _State()
        self.batches: list[list[dict[str, Json]]] = []
        self.generation_id = 1  # bumped on every commit, like the kernel's
        self._fail_with: str | None = None

    def fail_next(self, message: str = "Error: Could not process rule: Invalid argument") -> None:
        self._fail_with = message

    def apply(self, commands: list[dict[str, Json]]) -> None:
        if not commands:
            return
        if self._fail_with is not None:
            message, self._fail_with = self._fail_with, None
            raise NftError(message)
        # Handles are positions here (the kernel's are unique numbers; the diff never sees
        # either): the replacement rules of the adapter apply as they do on the kernel.
        resolved = resolve_replacements(
            commands,
            lambda family, chain: _handles(self.state, qualified(family, chain)),
        )
        work = copy.deepcopy(self.state)
        for command in resolved:
            _execute(work, command)
        self.state = work
        self.batches.append(commands)
        self.generation_id += 1

    def tamper(self, commands: list[dict[str, Json]]) -> None:
        """Someone else commits a batch (tests of drift detection)."""
        work = copy.deepcopy(self.state)
        for command in commands:
            _execute(work, command)
        self.state = work
        self.generation_id += 1

    def generation(self) -> int | None:
        return self.generation_id

    def listing(self) -> list[dict[str, Json]]:
        objects: list[dict[str, Json]] = [
            {"table": {"family": family, "name": "kernlb"}} for family in sorted(self.state.tables)
        ]
        for name, rules in self.state.chains.items():
            family, _, bare = name.partition("/")
            decl = self.state.chain_decls.get(name, {})
            objects.append({"chain": {**decl, "family": family, "table": "kernlb", "name": bare}})
            objects.extend(
                {"rule": {"family": family, "table": "kernlb", "chain": bare, "expr": expr}}
                for expr in rules
            )
        for item in self.state.sets.values():
            body = dict(item.decl)
            if item.kind in ("set", "map") and item.elements:
                body["elem"] = [
                    [item.keys[ckey], value] if item.kind == "map" else item.keys[ckey]
                    for ckey, value in item.elements.items()
                ]
            objects.append({item.kind: body})
        return objects

    def summary(self) -> KernelSummary | None:
        if not self.state.tables:
            return None
        return KernelSummary(
            tables=frozenset(self.state.tables),
            chains={name: len(rules) for name, rules in self.state.chains.items()},
            sets={
                name: KernelSet(
                    kind=s.kind,
                    type=s.decl.get("type"),
                    map=s.decl.get("map"),
                    flags=tuple(s.decl.get("flags", ())),
                    timeout=s.decl.get("timeout"),
                    elements=len(s.elements),
                    protocol=s.decl.get("protocol") if s.kind == "ct helper" else None,
                )
                for name, s in self.state.sets.items()
            },
        )

    def supported_helpers(self) -> frozenset[str]:
        return frozenset(HELPERS)

    def counters(self) -> dict[str, tuple[int, int]]:
        prefix = qualified("inet", "")
        return {
            name.removeprefix(prefix): (0, 0)
            for name, s in self.state.sets.items()
            if s.kind == "counter" and name.startswith(prefix)
        }

    def elements(self, name: str, family: str = "inet") -> dict[str, Json]:
        """Canonical key -> value of one map (tests)."""
        return dict(self.state.sets[qualified(family, name)].elements)

    def rules(self, chain: str, family: str = "inet") -> list[Json]:
        return list(self.state.chains[qualified(family, chain)])


def _execute(state: _State, command: dict[str, Json]) -> None:
    ((verb, body),) = command.items()
    ((kind, obj),) = body.items()
    family = obj["family"]
    if kind == "table":
        if verb == "add":
            state.tables.add(family)
            return
        raise NftError(f"unsupported {verb} table")
    if family not in state.tables:
        raise NftError(f"Error: No such file or directory (table {family})")
    name = qualified(family, obj.get("name") if kind != "rule" else obj.get("chain"))
    if kind == "chain":
        if verb == "add":
            state.chains.setdefault(name, [])
            state.chain_decls.setdefault(name, obj)
        elif verb == "flush":
            _need(name in state.chains, f"chain {name}")
            state.chains[name] = []
        elif verb == "delete":
            _need(name in state.chains, f"chain {name}")
            del state.chains[name]
            state.chain_decls.pop(name, None)
        return
    if kind == "counter":
        if verb == "add":
            state.sets.setdefault(name, _Set(kind, obj))
        elif verb == "delete":
            _need(name in state.sets, f"counter {name}")
            del state.sets[name]
        else:
            raise NftError(f"unsupported {verb} counter")
        return
    if kind == "ct helper":
        if verb == "add":
            existing = state.sets.get(name)
            if existing is not None and existing.decl != obj:
                raise NftError(f"Error: Could not process rule: File exists ({name})")
            state.sets[name] = _Set(kind, obj)
        elif verb == "delete":
            _need(name in state.sets, f"ct helper {name}")
            del state.sets[name]
        else:
            raise NftError(f"unsupported {verb} ct helper")
        return
    if kind in ("set", "map"):
        if verb == "add":
            existing = state.sets.get(name)
            if existing is None:
                state.sets[name] = _Set(kind, obj)
            elif existing.decl != obj or existing.decl.get("timeout") is not None:
                # Re-adding a dynamic set fails in the kernel (it gained the dynamic flag).
                raise NftError(f"Error: Could not process rule: File exists ({name})")
        elif verb == "flush":
            _need(name in state.sets, f"{kind} {name}")
            state.sets[name].elements.clear()
            state.sets[name].keys.clear()
        elif verb == "delete":
            _need(name in state.sets, f"{kind} {name}")
            del state.sets[name]
        return
    if kind == "rule" and verb == "replace":
        _need(name in state.chains, f"chain {name}")
        handle = obj["handle"]
        _need(0 <= handle < len(state.chains[name]), f"rule {handle} of {name}")
        state.chains[name][handle] = obj["expr"]
        return
    if kind == "rule":
        _need(name in state.chains, f"chain {name}")
        for ref_set, ref_chain, ref_helper in _REF.findall(canonical(obj["expr"])):
            if ref_set or ref_helper:
                ref = qualified(family, ref_set or ref_helper)
                _need(ref in state.sets, f"object {ref}")
            if ref_chain:
                _need(qualified(family, ref_chain) in state.chains, f"chain {ref_chain}")
        state.chains[name].append(obj["expr"])
        return
    if kind == "element":
        _need(name in state.sets, f"map {name}")
        target = state.sets[name]
        for item in obj["elem"]:
            if verb == "add":
                key, value = (item[0], item[1]) if isinstance(item, list) else (item, None)
                for _, chain, _ in _REF.findall(canonical(value)):
                    _need(qualified(family, chain) in state.chains, f"chain {chain}")
                ckey = canonical(key)
                if ckey in target.elements and target.elements[ckey] != value:
                    raise NftError("Error: Could not process rule: File exists")
                target.elements[ckey] = value
                target.keys[ckey] = key
            elif verb == "delete":
                ckey = canonical(item)
                _need(ckey in target.elements, f"element {ckey}")
                del target.elements[ckey]
                target.keys.pop(ckey, None)
        return
    raise NftError(f"unsupported command {verb} {kind}")


def _handles(state: _State, chain: str) -> list[int]:
    if chain not in state.chains:
        raise OSError(2, f"No such file or directory (chain {chain})")
    return list(range(len(state.chains[chain])))


def _need(condition: bool, what: str) -> None:
    if not condition:
        raise NftError(f"Error: Could not process rule: No such file or directory ({what})")
