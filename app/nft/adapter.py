"""The only code that talks to libnftables.

Thin on purpose: apply a JSON batch, list kernlb's table.  One long-lived context; no echo
or handle output (they make every batch 10-20x slower on large rulesets).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from app.domain.model import HELPERS
from app.domain.ruleset import FAMILIES, FAMILY, TABLE, qualified
from app.nft.diff import KernelSet, KernelSummary
from app.nft.generation import GenerationReader
from app.nft.netlink_rules import RuleHandles

log = logging.getLogger(__name__)

Json = Any


class NftError(Exception):
    """The kernel (or libnftables) refused a batch; nothing of it was applied."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NftAdapter(Protocol):
    def apply(self, commands: list[dict[str, Json]]) -> None: ...

    def summary(self) -> KernelSummary | None: ...

    def listing(self) -> list[dict[str, Json]]:
        """Both kernlb tables as `nft -j list table` objects (empty when absent)."""
        ...

    def generation(self) -> int | None:
        """The ruleset generation id (bumped on every commit, by anyone); None: unknown."""
        ...

    def supported_helpers(self) -> frozenset[str]: ...

    def counters(self) -> dict[str, tuple[int, int]]: ...


def summarise_listing(objects: list[dict[str, Json]]) -> KernelSummary | None:
    """Reduce `nft -j list table` listings (of either family) to what reconciliation compares."""
    chains: dict[str, int] = {}
    sets: dict[str, KernelSet] = {}
    tables: set[str] = set()
    for item in objects:
        if "table" in item:
            tables.add(item["table"]["family"])
        elif "chain" in item:
            chains.setdefault(qualified(item["chain"]["family"], item["chain"]["name"]), 0)
        elif "rule" in item:
            name = qualified(item["rule"]["family"], item["rule"]["chain"])
            chains[name] = chains.get(name, 0) + 1
        elif "counter" in item:
            body = item["counter"]
            sets[qualified(body["family"], body["name"])] = KernelSet(kind="counter", type=None)
        elif "ct helper" in item:
            body = item["ct helper"]
            sets[qualified(body["family"], body["name"])] = KernelSet(
                kind="ct helper", type=body.get("type"), protocol=body.get("protocol")
            )
        elif "set" in item or "map" in item:
            kind = "set" if "set" in item else "map"
            body = item[kind]
            flags = body.get("flags", [])
            sets[qualified(body["family"], body["name"])] = KernelSet(
                kind=kind,
                type=body.get("type"),
                map=body.get("map"),
                flags=tuple(flags if isinstance(flags, list) else [flags]),
                timeout=body.get("timeout"),
                elements=len(body.get("elem", [])),
            )
    if not tables:
        return None
    return KernelSummary(chains=chains, sets=sets, tables=frozenset(tables))


# offsetof(struct nft_ctx, cache.genid) per libnftables version (x86-64 builds): see
# CacheKeeper.  Only versions whose layout was checked are listed; others never reuse.
CACHE_GENID_OFFSETS = {"1.0.6": 200}
CACHE_REUSE_ENV = "KERNLB_NFT_CACHE_REUSE"  # "0": never reuse libnftables' cache


def keeps_cache(commands: Iterable[dict[str, Json]], interval_sets: frozenset[str]) -> bool:
    """True when a batch changes nothing libnftables keeps in its cache.

    libnftables 1.0.6 caches tables, chains, sets (declarations), stateful objects and
    flowtables, plus the elements of interval sets; rules and the elements of other sets it
    never caches for a batch.  Flushing a chain, adding rules and adding or deleting
    elements of non-interval sets therefore leave a cache read before the batch exactly as
    valid after it.
    """
    for command in commands:
        if len(command) != 1:
            return False
        ((verb, body),) = command.items()
        if not isinstance(body, dict) or len(body) != 1:
            return False
        ((kind, obj),) = body.items()
        if verb == "flush" and kind == "chain":
            continue
        if verb in ("add", "replace") and kind == "rule":
            continue
        name = qualified(obj.get("family", FAMILY), obj.get("name", ""))
        if verb in ("add", "delete") and kind == "element" and name not in interval_sets:
            continue
        return False
    return True


class CacheKeeper:
    """Spares libnftables 1.0.6 from re-reading the whole ruleset before every batch.

    Before each batch libnftables reads every chain and set of the namespace into its cache
    (at 10,000 farms: ~730 KB of chain listings, 8-20 ms), unless the kernel's ruleset
    generation id still equals the one the cache was read at.  kernlb's own commit bumps
    that id, so every batch re-reads everything (nftables 1.1.1 learned to accept
    "cache id + 1" itself: upstream commit "cache: recycle existing cache with incremental
    updates").  This does the same from outside, under strict conditions:

    - the library is a version whose `struct nft_ctx` layout was checked (the offset of
      `cache.genid`), and the field holds the generation kernlb read just before the batch
      (so the cache describes the kernel at that generation);
    - the kernel's id moved by exactly one during the batch (kernlb's commit, nobody
      else's);
    - the batch changed nothing the cache holds (`keeps_cache`).

    Then the field is set to the new id and the next batch skips the re-read.  Anyone
    else's commit moves the id past it, and libnftables reads everything again: external
    changes and drift checks are unaffected.  `KERNLB_NFT_CACHE_REUSE=0` turns it off.
    """

    def __init__(self, context: int | None) -> None:
        self.context = context
        self.offset: int | None = None
        self.enabled = os.environ.get(CACHE_REUSE_ENV, "1") != "0" and context is not None
        self.interval_sets: set[str] = set()
        self.reused = 0  # batches after which the cache was kept (for tests and metrics)

    def library_version(self, version: str | None) -> None:
        """The version libnftables reports (JSON listing metainfo) decides the layout."""
        if version is not None and self.offset is None:
            self.offset = CACHE_GENID_OFFSETS.get(version)

    def learn(self, commands: Iterable[dict[str, Json]]) -> None:
        """Remember which sets are interval sets (their elements are cached)."""
        for command in commands:
            for kind in ("set", "map"):
                decl = command.get("add", {}).get(kind)
                if isinstance(decl, dict) and "interval" in (decl.get("flags") or ()):
                    self.interval_sets.add(qualified(decl["family"], decl["name"]))

    def learn_listing(self, objects: Iterable[dict[str, Json]]) -> None:
        for item in objects:
            body = item.get("set") or item.get("map")
            if isinstance(body, dict):
                flags = body.get("flags", [])
                if "interval" in (flags if isinstance(flags, list) else [flags]):
                    self.interval_sets.add(qualified(body["family"], body["name"]))

    def after_commit(
        self, commands: list[dict[str, Json]], before: int | None, after: int | None
    ) -> None:
        if not self.enabled or self.offset is None or self.context is None:
            return
        if before is None or after is None or after != before + 1:
            return
        if not keeps_cache(commands, frozenset(self.interval_sets)):
            return
        field = ctypes.c_uint32.from_address(self.context + self.offset)
        # 1.0.6 compares the kernel's id truncated to 16 bits with the cached one.
        if field.value not in (before, before & 0xFFFF):
            return  # not the layout we know, or the cache was read at another generation
        field.value = after & 0xFFFF
        self.reused += 1


def resolve_replacements(
    commands: list[dict[str, Json]], handles: Callable[[str, str], list[int]]
) -> list[dict[str, Json]]:
    """`replace rule` commands by position (app.nft.diff) turned into commands by handle.

    `handles(family, chain)` lists the kernel's handles of a chain's rules, in order.  A
    chain that does not hold the number of rules the diff expects (someone changed it) is
    drift: NftError, nothing applied, and the reconciler repairs it from the database.
    """
    if not any("replace" in command for command in commands):
        return commands
    known: dict[tuple[str, str], list[int]] = {}
    out: list[dict[str, Json]] = []
    for command in commands:
        rule = command.get("replace", {}).get("rule")
        if not isinstance(rule, dict) or "index" not in rule:
            out.append(command)
            continue
        where = (rule["family"], rule["chain"])
        if where not in known:
            try:
                known[where] = handles(*where)
            except OSError as exc:
                raise NftError(f"Error: reading the rules of chain {where[1]}: {exc}") from exc
        found = known[where]
        if len(found) != rule["rules"]:
            raise NftError(
                f"Error: chain {where[1]} holds {len(found)} rules, {rule['rules']} expected"
            )
        body = {k: v for k, v in rule.items() if k not in ("index", "rules")}
        body["handle"] = found[rule["index"]]
        out.append({"replace": {"rule": body}})
    return out


def nft_version() -> str | None:
    """nftables' version ("1.0.6"), from `nft --version` (libnftables comes from the same
    source package); None when it cannot be told."""
    binary = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
    if binary is None:
        return None
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v(\d+\.\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


class LibNftAdapter:
    """libnftables through the `nftables` binding (pip-nftables)."""

    def __init__(self) -> None:
        import nftables  # imported here: only this adapter may load the binding

        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)
        self._nft.set_echo_output(False)
        self._lock = threading.Lock()
        self._generation = GenerationReader()  # in this thread's namespace, as self._nft
        self._rules = RuleHandles()  # the same
        context = getattr(self._nft, "_Nftables__ctx", None)
        self.cache = CacheKeeper(context if isinstance(context, int) else None)
        self.cache.library_version(nft_version())

    def apply(self, commands: list[dict[str, Json]]) -> None:
        if not commands:
            return
        self.cache.learn(commands)
        with self._lock:
            commands = resolve_replacements(
                commands, lambda family, chain: self._rules.handles(family, TABLE, chain)
            )
            payload = {"nftables": commands}
            # The context reads JSON (its JSON output flag is on); compact text is quicker
            # to write and parse (a start-up batch at 10,000 farms is ~5 MB).
            text = json.dumps(payload, separators=(",", ":"), check_circular=False)
            before = self._generation.read()
            rc, _out, err = self._nft.cmd(text)
            if rc == 0:
                self.cache.after_commit(commands, before, self._generation.read())
        if rc != 0:
            # libnftables JSON errors carry no location: keep the batch in the log.
            log.error("nftables rejected a batch: %s", err.strip())
            log.debug("rejected batch: %s", json.dumps(payload))
            raise NftError(err.strip() or f"nftables returned {rc}")

    def supported_helpers(self) -> frozenset[str]:
        """Which conntrack helpers this kernel has, probed once at start-up.

        Each probe declares the helper in a scratch table in dry-run mode: the kernel checks
        the transaction and commits nothing, so the ruleset never changes.
        """
        import ctypes

        import nftables

        probe = nftables.Nftables()
        set_dry_run = ctypes.CDLL("libnftables.so.1").nft_ctx_set_dry_run
        set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
        set_dry_run(probe._Nftables__ctx, True)
        supported = set()
        for helper, transports in HELPERS.items():
            table = "kernlb_probe"
            commands: list[dict[str, Json]] = [
                {"add": {"table": {"family": FAMILY, "name": table}}}
            ]
            commands.extend(
                {
                    "add": {
                        "ct helper": {
                            "family": FAMILY,
                            "table": table,
                            "name": f"h-{transport}",
                            "type": helper,
                            "protocol": transport,
                            "l3proto": "inet",
                        }
                    }
                }
                for transport in transports
            )
            rc, _out, _err = probe.json_cmd({"nftables": commands})
            if rc == 0:
                supported.add(helper)
        log.info("conntrack helpers available: %s", ", ".join(sorted(supported)) or "none")
        return frozenset(supported)

    def counters(self) -> dict[str, tuple[int, int]]:
        """Named counters of the inet table: name -> (packets, bytes)."""
        cmd = {"nftables": [{"list": {"counters": {"family": FAMILY, "table": TABLE}}}]}
        with self._lock:
            rc, out, err = self._nft.json_cmd(cmd)
        if rc != 0:
            if "No such file or directory" in err:
                return {}
            raise NftError(err.strip())
        found: dict[str, tuple[int, int]] = {}
        for item in out.get("nftables", []) if isinstance(out, dict) else []:
            body = item.get("counter")
            if body is not None and body.get("table") == TABLE:
                found[body["name"]] = (int(body.get("packets", 0)), int(body.get("bytes", 0)))
        return found

    def generation(self) -> int | None:
        return self._generation.read()

    def summary(self) -> KernelSummary | None:
        return summarise_listing(self.listing())

    def listing(self) -> list[dict[str, Json]]:
        objects: list[dict[str, Json]] = []
        for family in FAMILIES:
            cmd = {"nftables": [{"list": {"table": {"family": family, "name": TABLE}}}]}
            with self._lock:
                rc, out, err = self._nft.json_cmd(cmd)
            if rc != 0:
                if "No such file or directory" in err:
                    continue
                raise NftError(err.strip())
            listed = out.get("nftables", []) if isinstance(out, dict) else []
            for item in listed:
                if "metainfo" in item:
                    self.cache.library_version(item["metainfo"].get("version"))
                else:
                    objects.append(item)
        self.cache.learn_listing(objects)
        return objects
