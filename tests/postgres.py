"""The tests' throw-away PostgreSQL: it lives in app (`kernlb demo --cluster` starts one too)."""

from __future__ import annotations

from app.db.throwaway_postgres import ThrowawayPostgres, postgres_bin_dir, unavailable_reason

__all__ = ["ThrowawayPostgres", "postgres_bin_dir", "unavailable_reason"]
