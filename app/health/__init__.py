"""Farmguardian: health checks that take failed backends out of rotation and bring them back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.health.checker import POLL_SECONDS, HealthChecker
from app.health.monitor import FarmCheck
from app.health.probes import Prober, run_check
from app.health.recorder import CheckLoader, HealthRecorder
from app.reconcile.uow import UnitOfWork

__all__ = ["HealthChecker", "Prober", "create_checker"]


def create_checker(
    uow: UnitOfWork,
    *,
    plugin_dir: Path,
    prober: Prober | None = None,
    poll: float = POLL_SECONDS,
) -> HealthChecker:
    loader = CheckLoader(uow.session_factory, plugin_dir=plugin_dir)
    recorder = HealthRecorder(uow)

    async def load() -> list[FarmCheck]:
        return await asyncio.to_thread(loader)

    async def load_farms(farm_ids: frozenset[int]) -> list[FarmCheck]:
        return await asyncio.to_thread(loader.farms, farm_ids)

    return HealthChecker(
        load=load,
        sink=recorder.record,
        prober=prober if prober is not None else run_check,
        on_stop=recorder.idle,
        poll=poll,
        load_farms=load_farms,
    )
