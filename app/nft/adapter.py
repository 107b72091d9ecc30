"""The only code that talks to libnftables.

Thin on purpose: apply a JSON batch, list kernlb's table.  One long-lived context; no echo
or handle output (they make every batch 10-20x slower on large rulesets).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from app.domain.model import HELPERS
from app.domain.ruleset import FAMILIES, FAMILY, TABLE, qualified
from app.nft.diff import KernelSet, KernelSummary
from app.nft.generation import ruleset_generation

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


class LibNftAdapter:
    """libnftables through the `nftables` binding (pip-nftables)."""

    def __init__(self) -> None:
        import nftables  # imported here: only this adapter may load the binding

        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)
        self._nft.set_echo_output(False)
        self._lock = threading.Lock()

    def apply(self, commands: list[dict[str, Json]]) -> None:
        if not commands:
            return
        payload = {"nftables": commands}
        with self._lock:
            rc, _out, err = self._nft.json_cmd(payload)
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
        return ruleset_generation()

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
            objects.extend(item for item in listed if "metainfo" not in item)
        return objects
