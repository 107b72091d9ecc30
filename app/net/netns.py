"""Kept for imports written before the lab module: ``enter_netns`` lives in :mod:`app.net.lab`."""

from __future__ import annotations

from app.net.lab import enter_netns

__all__ = ["enter_netns"]
