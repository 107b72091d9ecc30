"""Feeds conntrack connection counts to the reconciler for leastconn and max_conns farms."""

from __future__ import annotations

import asyncio
import logging

from app.reconcile.reconciler import Reconciler
from app.stats.conntrack import ConnectionCounter

log = logging.getLogger(__name__)


async def follow_load(reconciler: Reconciler, counter: ConnectionCounter, interval: float) -> None:
    """Every `interval` seconds, while some farm needs it, re-read the per-backend load and
    the L2 reachability of dsr/stateless backends."""
    while True:
        await asyncio.sleep(interval)
        if reconciler.needs_neighbours():
            try:
                await asyncio.to_thread(reconciler.update_neighbours)
            except Exception:
                log.exception("checking neighbours failed")
        if not reconciler.needs_load():
            continue
        try:
            counts = await asyncio.to_thread(counter.count_by_mark)
            active = {mark: c.active for mark, c in counts.items()}
            changed = await asyncio.to_thread(reconciler.update_load, active)
            if changed:
                log.debug("load changed the scheduling of %d farm(s)", changed)
        except Exception:  # keep following; the next round retries
            log.exception("reading connection counts failed")
