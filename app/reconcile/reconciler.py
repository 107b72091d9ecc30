"""Keeps the kernel equal to the database.

- `stage` renders the farms a request touched, from the request's own uncommitted session,
  and applies the diff against what was last applied as one batch.  If the kernel refuses,
  the caller rolls the transaction back: database and kernel stay as they were.
- `confirm` makes the staged ruleset the applied one once the database committed.
- `full_sync` (start-up, drift repair, recovery after a failed commit) rebuilds the whole
  desired state from the database and makes the kernel match it in one atomic batch.

One writer at a time: `lock` is held for the whole unit of work (validate, write, apply,
commit), so the applied state always describes the kernel.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.db import etags
from app.db.ipds import all_list_specs, farm_ipds, list_spec
from app.db.repositories import all_farm_specs, farm_rows
from app.domain.ipds import IpdsSpec, prefix_of
from app.domain.model import FarmSpec
from app.domain.rules import needs_load
from app.domain.ruleset import FAMILY, TABLE, conns_set_name, qualified, split_name
from app.errors import KernelRejected
from app.gcpause import collector_paused
from app.net.neighbours import NeighbourBook
from app.nft.adapter import NftAdapter, NftError, summarise_listing
from app.nft.bulk import BulkSplit, apply_in_steps, split_bulk
from app.nft.content import content_drift, expected_content, kernel_content
from app.nft.diff import _merged, diff, drift, expected_summary, sync
from app.nft.ipds import list_set_decl, list_set_key, list_set_name, list_set_tier
from app.nft.netlink_dump import NetlinkDumper, missing_elements
from app.nft.netlink_elements import ElementError, ElementOp, ElementWriter, address
from app.nft.render import (
    Fragment,
    ListFragment,
    Ruleset,
    SetDecl,
    ipds_on,
    list_shape,
    netdev_devices,
    render,
    render_farm,
    render_list,
    render_skeleton,
)

log = logging.getLogger(__name__)

# Above this many IPDS list sources the drift check reads the kernel over netlink instead of
# listing it through libnftables (which reads every element: tens of seconds per 1,000,000).
LARGE_LIST_SOURCES = 50_000
# List elements looked up one by one per such comparison (a full read-back is quadratic).
DRIFT_SAMPLE = 1_000


@dataclass
class ReconcileStats:
    batches: int = 0
    failures: int = 0
    full_syncs: int = 0
    repairs: int = 0
    drift_checks: int = 0
    drift_comparisons: int = 0  # checks that listed and compared the ruleset (foreign commit)
    last_success: float | None = None
    last_duration: float = 0.0
    last_error: str = ""
    bulk_elements: int = 0  # IPDS list elements applied through nfnetlink (large loads)


@dataclass
class ListChange:
    """Sources added to and removed from one IPDS list by a request."""

    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


@dataclass
class _Staged:
    """What a request applied to the kernel, for `confirm` once the database committed.

    Either the whole new state (`specs` + a `ruleset` holding every farm), or, when the
    request left the set of farms as it was, only the farms it re-rendered (`delta`): then
    `ruleset.farms` holds just those and `confirm` updates the applied dicts in place, so a
    request at 10,000 farms copies no 10,000-entry dict.
    """

    ruleset: Ruleset
    specs: dict[int, FarmSpec] = field(default_factory=dict)
    touched: frozenset[int] = frozenset()
    delta: bool = False


class Reconciler:
    def __init__(
        self,
        *,
        adapter: NftAdapter,
        session_factory: Callable[[], Session],
        clock: Callable[[], float] = time.time,
        neighbours: NeighbourBook | None = None,
        elements: ElementWriter | None = None,
        drop_invalid: bool = False,
    ) -> None:
        self.adapter = adapter
        # Large IPDS list loads go through nfnetlink (None: everything through the adapter).
        self.elements = elements
        # Cluster nodes with conntrackd: the guard chain (render.GUARD_CHAIN) in the skeleton.
        self.drop_invalid = drop_invalid
        # With a real kernel (elements given): reads kernlb's tables over netlink for drift
        # checks beside large lists.
        self.dumper = NetlinkDumper() if elements is not None else None
        self.neighbours = neighbours
        self.session_factory = session_factory
        self.clock = clock
        self.lock = threading.RLock()
        self.stats = ReconcileStats()
        self._applied: Ruleset | None = None
        self._specs: dict[int, FarmSpec] = {}
        self._staged: _Staged | None = None
        self._load: dict[int, int] = {}  # backend mark -> active connections (conntrack)
        # Farms the observation loops visit, kept up to date per change so an idle daemon
        # never walks every farm: leastconn / max_conns (load), running dsr/stateless (L2).
        self._load_farms: set[int] = set()
        self._l2_farms: set[int] = set()
        self._unreachable: frozenset[int] = frozenset()  # marks of backends unreachable at L2
        # Large lists: (generation, digest of every chain's rules and every static set's
        # elements) read at a generation kernlb wrote itself; compared after anyone else's.
        self._snapshot: tuple[int | None, dict[str, str]] | None = None
        # Ruleset generation after kernlb's last commit; `_foreign` says someone else may
        # have committed since (or it cannot be known): the next drift check compares.
        self._generation: int | None = None
        self._foreign = True
        # Of the farms the last `stage` rendered: those farmguardian checks (see stage).
        self.guarded: frozenset[int] = frozenset()

    # -- per request -----------------------------------------------------------------------

    def specs(self) -> dict[int, FarmSpec]:
        """The desired state last applied (read-only view)."""
        return self._specs

    def stage(
        self,
        session: Session,
        farm_ids: Iterable[int],
        *,
        lists: dict[int, ListChange | None] | None = None,
    ) -> None:
        with self.lock:
            if self._applied is None:
                raise RuntimeError("reconciler used before the initial sync")
            ids = set(farm_ids)
            # Plain SELECTs in the write's transaction: what it flushed, whatever the ORM
            # objects in the session hold (no refresh of each farm and its backends).  The
            # same rows give the request's answer its ETag.
            rows = farm_rows(session, ids) if ids else None
            fresh = rows.specs() if rows is not None else []
            # Which of them the health checker must check now (it skips the others unless
            # it checks them already): running, farmguardian on, as written.
            self.guarded = frozenset(
                farm["id"]
                for farm in (rows.farms if rows else ())
                if farm["running"] and farm["fg_enabled"]
            )
            if rows is not None:
                etags.record(rows)
            removed = ids - {spec.id for spec in fresh}
            attached = rows.with_ipds if rows is not None else set()
            fresh = _with_ipds(fresh, farm_ipds(session, attached) if attached else {})
            new_lists = self._stage_lists(session, lists or {})
            reshaped = {
                list_id
                for list_id in (lists or {})
                if list_shape(new_lists.get(list_id, ListFragment()))
                != list_shape(self._applied.lists.get(list_id, ListFragment()))
            }
            if reshaped:
                # A list gained or lost a prefix length: the farms using it look up other sets.
                for spec in self._specs.values():
                    if spec.id not in ids and any(r.id in reshaped for r in spec.ipds.lists):
                        ids.add(spec.id)
                        fresh.append(spec)
            fresh = self._with_shapes(fresh, new_lists)
            changed_specs = {spec.id: spec for spec in self._observe(fresh)}
            changed_farms = {i: render_farm(spec) for i, spec in changed_specs.items()}
            applied = self._applied

            def whole() -> tuple[dict[int, FarmSpec], dict[int, Fragment]]:
                """Every farm after this request (copies of the applied state)."""
                specs = {i: s for i, s in self._specs.items() if i not in removed}
                farms = {i: f for i, f in applied.farms.items() if i not in removed}
                specs.update(changed_specs)
                farms.update(changed_farms)
                return specs, farms

            # Only netdev farms decide which ingress chains exist: skip the O(farms) walk
            # over every spec unless one of the touched farms is (or was) one.
            netdev = any(
                spec.stateless or spec.ipds
                for spec in (*fresh, *(self._specs.get(i) for i in ids))
                if spec
            )
            # The common request changes farms that exist and stay: stage only those.
            delta = not netdev and all(
                (i in self._specs) == (i not in removed) == (i in applied.farms) for i in ids
            )
            if delta:
                specs, farms = changed_specs, changed_farms
                skeleton = applied.skeleton
            else:
                specs, farms = whole()
                skeleton = self._skeleton_for(specs) if netdev else applied.skeleton
            # With `delta`, `new.farms` holds the touched farms only: all `diff` compares.
            new = Ruleset(skeleton=skeleton, farms=farms, lists=new_lists)
            try:
                self._apply(diff(applied, new, farms=ids, lists=(lists or {}).keys()))
            except KernelRejected:
                # A diff fails when the kernel no longer holds what was applied (someone
                # edited or flushed it).  If so, go straight from what it holds to `new`.
                kernel = self.adapter.summary()
                problems = drift(expected_summary(applied), kernel)
                if not problems:
                    raise
                log.warning("nftables drift found while applying a change: %s", "; ".join(problems))
                self.stats.repairs += 1
                if delta:
                    specs, farms = whole()
                    new = Ruleset(skeleton=skeleton, farms=farms, lists=new_lists)
                    delta = False
                self._apply(sync(new, kernel))
            self._staged = _Staged(new, specs, frozenset(ids), delta=delta)

    def _stage_lists(
        self, session: Session, changes: dict[int, ListChange | None]
    ) -> dict[int, ListFragment]:
        """The IPDS lists after a request: deltas applied to what was applied (a 1,000,000-
        source list is not read again for one source), or read again when asked."""
        assert self._applied is not None
        lists = dict(self._applied.lists)
        for list_id, change in changes.items():
            before = lists.get(list_id)
            if change is None or before is None:
                spec = list_spec(session, list_id)
                if spec is None:
                    lists.pop(list_id, None)
                else:
                    lists[list_id] = render_list(spec)
                continue
            sets = dict(before.sets)
            members = dict(before.members)
            current = {list_set_key(split_name(name)[1])[:2]: name for name in before.sets}
            changed: dict[tuple[int, int], tuple[set[str], set[str]]] = {}
            for texts, slot in ((change.removed, 0), (change.added, 1)):
                for text in texts:
                    family, length, addr = prefix_of(text)
                    changed.setdefault((family, length), (set(), set()))[slot].add(addr)
            for (family, length), (removed, added) in changed.items():
                old_name = current.get((family, length))
                had = members.get(old_name, frozenset()) if old_name else frozenset()
                now = (had - removed) | added
                tier = list_set_tier(len(now))
                name = qualified("inet", list_set_name(list_id, family, length, tier))
                if old_name is not None and (old_name != name or not now):
                    # Emptied, or grown or shrunk past its size tier: the set goes (a new one,
                    # with every member, takes its place; the farms' rules follow).
                    sets.pop(old_name, None)
                    members.pop(old_name, None)
                if now:
                    if name not in sets:
                        sets[name] = SetDecl("set", list_set_decl(list_id, family, length, tier))
                    members[name] = frozenset(now)
            lists[list_id] = ListFragment(sets=sets, members=members)
        return lists

    def _with_shapes(
        self, specs: Iterable[FarmSpec], lists: dict[int, ListFragment]
    ) -> list[FarmSpec]:
        """Farms' list references with the (family, length) sets their lists now have."""
        out = []
        for spec in specs:
            if spec.ipds.lists:
                refs = tuple(
                    dataclasses.replace(ref, shape=list_shape(lists.get(ref.id, ListFragment())))
                    for ref in spec.ipds.lists
                )
                spec = dataclasses.replace(spec, ipds=dataclasses.replace(spec.ipds, lists=refs))
            out.append(spec)
        return out

    def confirm(self) -> None:
        with self.lock:
            staged = self._staged
            if staged is not None and staged.delta:
                assert self._applied is not None
                # Same farm ids before and after: updating in place never resizes the dicts,
                # so readers iterating `specs()` meanwhile are safe (each value is a whole spec).
                farms = self._applied.farms
                farms.update(staged.ruleset.farms)
                self._specs.update(staged.specs)
                self._applied = Ruleset(
                    skeleton=staged.ruleset.skeleton, farms=farms, lists=staged.ruleset.lists
                )
            elif staged is not None:
                self._applied = staged.ruleset
                self._specs = staged.specs
            if staged is not None:
                self._index(staged.touched)
                self._staged = None

    def _index(self, farm_ids: Iterable[int] | None = None) -> None:
        """Update which farms the observation loops visit (None: all of them)."""
        if farm_ids is None:
            self._load_farms.clear()
            self._l2_farms.clear()
            farm_ids = self._specs.keys()
        for farm_id in farm_ids:
            spec = self._specs.get(farm_id)
            if spec is not None and needs_load(spec):
                self._load_farms.add(farm_id)
            else:
                self._load_farms.discard(farm_id)
            if spec is not None and spec.stateless and spec.running:
                self._l2_farms.add(farm_id)
            else:
                self._l2_farms.discard(farm_id)

    def abandon(self) -> None:
        """The database did not commit what was staged: put the kernel back to the database."""
        with self.lock:
            staged, self._staged = self._staged, None
            if staged is not None:
                log.warning("transaction failed after the kernel accepted its batch; resyncing")
                self.full_sync()

    def sync_farms(self, farm_ids: Iterable[int]) -> None:
        """Re-render these farms from the committed database (health flips, load changes).

        Callers batch their farm ids, so a storm of changes costs one nftables batch.
        """
        ids = set(farm_ids)
        if not ids:
            return
        with self.lock, self.session_factory() as session:
            self.stage(session, ids)
            self.confirm()

    # -- observations: load (leastconn, max_conns), L2 reachability (dsr, stateless) --------

    def _skeleton_for(self, specs: dict[int, FarmSpec]) -> Fragment:
        assert self._applied is not None
        devices = netdev_devices(specs.values())
        with_ipds = ipds_on(specs.values())
        if devices == netdev_devices(self._specs.values()) and with_ipds == ipds_on(
            self._specs.values()
        ):
            return self._applied.skeleton
        return render_skeleton(devices, ipds_on=with_ipds, drop_invalid=self.drop_invalid)

    def needs_load(self) -> bool:
        return bool(self._load_farms)

    def load_marks(self) -> frozenset[int]:
        """Marks of the backends whose connection counts scheduling depends on."""
        with self.lock:
            return frozenset(
                b.mark for farm_id in self._load_farms for b in self._specs[farm_id].backends
            )

    def needs_neighbours(self) -> bool:
        return self.neighbours is not None and bool(self._l2_farms)

    def unreachable_marks(self) -> frozenset[int]:
        """Backends shown `undefined`: their farm forwards frames to them and cannot."""
        return self._unreachable

    def _observe(self, specs: list[FarmSpec]) -> list[FarmSpec]:
        """Overlay what kernlb observed (load, neighbours) on specs read from the database."""
        targets = {
            (b.ip, spec.device)
            for spec in specs
            if spec.stateless and spec.running and spec.device
            for b in spec.backends
        }
        bad = self.neighbours.unreachable(targets) if self.neighbours and targets else set()
        unreachable = set(self._unreachable)
        out = []
        for spec in specs:
            if spec.stateless and spec.running and spec.device:
                device = spec.device
                backends = []
                for b in spec.backends:
                    reachable = (b.ip, device) not in bad
                    (unreachable.discard if reachable else unreachable.add)(b.mark)
                    backends.append(dataclasses.replace(b, l2_reachable=reachable))
                spec = dataclasses.replace(spec, backends=tuple(backends))
            elif needs_load(spec):
                backends = [
                    dataclasses.replace(b, connections=self._load.get(b.mark, 0))
                    for b in spec.backends
                ]
                spec = dataclasses.replace(spec, backends=tuple(backends))
            out.append(spec)
        self._unreachable = frozenset(unreachable)
        return out

    def update_load(self, connections: dict[int, int]) -> int:
        """New connection counts: re-render farms whose scheduling depends on load."""
        with self.lock:
            before = self._full_backends()
            self._load = dict(connections)
            after = self._full_backends()
            # The kernel's max_conns cap (`ct count`) remembers the connections it refused:
            # the client's retry (same addresses and ports) lands on another backend and keeps
            # counting against the full one until it closes.  When a backend drops back under
            # its cap, restart its farm's count (kernlb's own count keeps it from over-filling
            # until the next refresh).
            reset = {farm_id for mark, farm_id in before.items() if mark not in after}
            return self._reobserve(self._load_farms, reset_counts=reset)

    def update_neighbours(self) -> int:
        """Re-check L2 reachability of dsr/stateless backends; re-render farms that changed."""
        with self.lock:
            return self._reobserve(self._l2_farms)

    def _full_backends(self) -> dict[int, int]:
        """Backend mark -> farm id, for backends at their max_conns by kernlb's count."""
        specs = (self._specs[farm_id] for farm_id in self._load_farms)  # max_conns: in there
        return {
            b.mark: spec.id
            for spec in specs
            if spec.running and not spec.stateless
            for b in spec.backends
            if b.max_conns and self._load.get(b.mark, 0) >= b.max_conns
        }

    def _reobserve(self, farm_ids: Iterable[int], *, reset_counts: Iterable[int] = ()) -> int:
        if self._applied is None:
            return 0
        chosen = [self._specs[i] for i in sorted(farm_ids) if i in self._specs]
        flushes: list[dict[str, object]] = [
            {"flush": {"set": {"family": FAMILY, "table": TABLE, "name": conns_set_name(f)}}}
            for f in sorted(set(reset_counts))
            if qualified(FAMILY, conns_set_name(f)) in self._applied.farms.get(f, Fragment()).sets
        ]
        if flushes:
            self._apply(flushes)
        if not chosen:
            return 0
        specs = dict(self._specs)
        farms = dict(self._applied.farms)
        changed = 0
        for spec in self._observe(chosen):
            fragment = render_farm(spec)
            specs[spec.id] = spec
            if fragment != farms.get(spec.id):
                farms[spec.id] = fragment
                changed += 1
        if changed:
            new = Ruleset(skeleton=self._applied.skeleton, farms=farms, lists=self._applied.lists)
            self._apply(diff(self._applied, new, farms=[spec.id for spec in chosen]))
            self._applied = new
        self._specs = specs
        return changed

    # -- whole state -----------------------------------------------------------------------

    def full_sync(self, *, trust_applied: bool = False) -> None:
        """Make the kernel hold the whole database.

        `trust_applied` (a cluster follower catching up): if nobody committed since kernlb's
        last batch, the kernel holds what kernlb applied, so the batch is the diff from it
        instead of a sync against a listing, which with large IPDS lists costs tens of
        seconds (libnftables reads every element) and would reload every list element.
        """
        with self.lock, self.session_factory() as session, collector_paused():
            list_specs = all_list_specs(session)
            shapes = {spec.id: render_list(spec) for spec in list_specs}
            farms = self._observe(
                self._with_shapes(_with_ipds(all_farm_specs(session), farm_ipds(session)), shapes)
            )
            ruleset = render(farms, list_specs, drop_invalid=self.drop_invalid)
            listed_at = self.adapter.generation()
            trusted = (
                trust_applied
                and self._applied is not None
                and not self._foreign
                and listed_at is not None
                and listed_at == self._generation
            )
            if trusted:
                assert self._applied is not None
                batch = diff(self._applied, ruleset)
            else:
                # The sync batch rewrites every chain and static map: after it the kernel
                # holds exactly `ruleset`, unless someone committed between listing and batch.
                batch = sync(ruleset, self.adapter.summary())
            self._generation, self._foreign = listed_at, False
            try:
                self._apply(batch)
            except KernelRejected:
                self._foreign = True
                raise
            self._applied = ruleset
            self._specs = {f.id: f for f in farms}
            self._index()
            self.stats.full_syncs += 1
            # The rendered state lives as long as the process: keep the collector off it.
            # Frozen while the collector is still off: enabling it first would start a full
            # collection of these ~300,000 objects (0.1-0.25 s at 10,000 farms) right away.
            gc.freeze()

    def check_drift(self) -> list[str]:
        """Compare the kernel with what was applied; repair from the database on any drift.

        Cheap when nobody else committed: one generation-id request.  Otherwise both kernlb
        tables are listed and compared object by object (rules, static elements).
        """
        with self.lock:
            if self._applied is None:
                self.full_sync()
                return []
            self.stats.drift_checks += 1
            current = self.adapter.generation()
            unchanged = current is not None and current == self._generation and not self._foreign
            sources = sum(
                len(m) for lst in self._applied.lists.values() for m in lst.members.values()
            )
            if sources > LARGE_LIST_SOURCES:
                if self.dumper is not None:
                    return self._check_drift_over_netlink(current, unchanged=unchanged)
                if not unchanged:
                    log.warning("drift comparison skipped: IPDS lists hold %d sources", sources)
                return []
            if unchanged:
                return []  # nobody else committed since kernlb's last batch
            self.stats.drift_comparisons += 1
            problems = self.differences(self._applied, self.adapter.listing())
            self._settle(problems, current)
            return problems

    def _settle(self, problems: list[str], current: int | None) -> None:
        """After a comparison: repair drift from the database, or trust this generation."""
        if problems:
            log.warning(
                "nftables drift (%d difference(s)), repairing from the database: %s",
                len(problems),
                "; ".join(problems),
            )
            self.stats.repairs += 1
            self._snapshot = None
            self.full_sync()
        else:
            self._generation, self._foreign = current, current is None

    def _check_drift_over_netlink(self, current: int | None, *, unchanged: bool) -> list[str]:
        """The drift check beside large IPDS lists, without libnftables' listing.

        Structure (chains, rule counts, sets, maps, objects, element counts of static maps)
        against what kernlb applied; the content of rules and static maps against a digest
        read at a generation kernlb wrote itself; each list set by looking up a random
        sample of its sources (a full read-back costs tens of seconds per 1,000,000).
        """
        assert self._applied is not None and self.dumper is not None
        lists = {
            name: members
            for lst in self._applied.lists.values()
            for name, members in lst.members.items()
        }
        static = [
            name
            for name, decl in _merged(self._applied).sets.items()
            if decl.kind in ("set", "map") and not decl.dynamic
        ]
        if unchanged:
            if self._snapshot is None or self._snapshot[0] != current:
                self._snapshot = (current, self.dumper.dump(static).content_digest())
            return []
        self.stats.drift_comparisons += 1
        dump = self.dumper.dump(static)
        expected = expected_summary(self._applied)
        for name in lists:  # list set elements are sampled below, not counted
            if name in expected.sets:
                expected.sets[name] = dataclasses.replace(expected.sets[name], elements=0)
        problems = drift(expected, dump.summary())
        digest = dump.content_digest()
        if self._snapshot is not None:
            before = self._snapshot[1]
            problems += [
                f"{what} changed"
                for what in sorted(before.keys() & digest.keys())
                if before[what] != digest[what]
            ]
        for name, members in sorted(lists.items()):
            if name not in dump.sets:
                continue  # reported as missing
            family, bare = split_name(name)
            sample = random.sample(list(members), min(DRIFT_SAMPLE, len(members)))
            absent = missing_elements(family, bare, [address(text) for text in sample])
            if absent:
                problems.append(f"set {name} lacks {absent} of {len(sample)} sampled sources")
        self._settle(problems, current)
        if not problems:
            self._snapshot = (current, digest)
        return problems

    @staticmethod
    def differences(expected: Ruleset, listing: list[dict[str, object]]) -> list[str]:
        """What differs between a ruleset and a kernel listing: structure, then content."""
        found = drift(expected_summary(expected), summarise_listing(listing))
        found += content_drift(expected_content(expected), kernel_content(listing))
        return list(dict.fromkeys(found))

    def render_all(self) -> Ruleset:
        with self.session_factory() as session:
            list_specs = all_list_specs(session)
            shapes = {spec.id: render_list(spec) for spec in list_specs}
            farms = self._with_shapes(
                _with_ipds(all_farm_specs(session), farm_ipds(session)), shapes
            )
            return render(farms, list_specs, drop_invalid=self.drop_invalid)

    def apply_batch(self, batch: list[dict[str, object]]) -> None:
        """Apply one batch as the reconciler does (for tools and benchmarks)."""
        with self.lock:
            self._apply(batch)

    def _apply(self, batch: list[dict[str, object]]) -> None:
        if not batch:
            return  # e.g. a farm whose change does not alter its rules (farmguardian settings)
        started = time.perf_counter()
        before = self.adapter.generation()
        if before is None or before != self._generation:
            self._foreign = True  # someone committed since kernlb's last batch
        split = split_bulk(batch) if self.elements is not None else None
        try:
            if split is None:
                self.adapter.apply(batch)
                after = self.adapter.generation()
                if after is None or before is None or after - before != 1:
                    self._foreign = True  # another commit slipped in around this one
                self._generation = after
            else:
                self._generation = before
                self._apply_in_steps(split)
        except (NftError, ElementError) as exc:
            self.stats.failures += 1
            self.stats.last_error = exc.message if isinstance(exc, NftError) else str(exc)
            raise KernelRejected(
                f"The kernel rejected the change: {self.stats.last_error}"
            ) from exc
        self.stats.batches += 1
        self.stats.last_duration = time.perf_counter() - started
        self.stats.last_success = self.clock()

    def _apply_in_steps(self, split: BulkSplit) -> None:
        """A large IPDS list load: its elements through nfnetlink (see app.nft.bulk)."""
        elements = self.elements
        assert elements is not None

        def step(apply: Callable[[], None]) -> None:
            apply()
            now = self.adapter.generation()
            if now is None or self._generation is None or now - self._generation not in (0, 1):
                self._foreign = True  # someone else committed between two of the steps
            self._generation = now

        def write(ops: list[ElementOp]) -> None:
            # Gated on the generation kernlb saw after its own last step.
            step(lambda: elements.write(ops, generation=self._generation))

        def undo_failed(reason: str) -> None:
            log.error(
                "rolling back a large list load failed (%s); the drift check repairs it", reason
            )
            self._foreign = True

        log.info("applying %d IPDS list elements through nfnetlink", split.count)
        apply_in_steps(
            split,
            apply=lambda commands: step(lambda: self.adapter.apply(commands)),
            write=write,
            undo_failed=undo_failed,
        )
        self.stats.bulk_elements += split.count


def _with_ipds(specs: list[FarmSpec], ipds: dict[int, IpdsSpec]) -> list[FarmSpec]:
    """Attach each farm's IPDS lists and rules (kept in their own tables) to its spec."""
    if not ipds:
        return specs
    return [
        dataclasses.replace(spec, ipds=ipds[spec.id]) if spec.id in ipds else spec for spec in specs
    ]
