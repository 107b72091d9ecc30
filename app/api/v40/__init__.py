"""ZAPI v4.0 (`/zapi/v4.0/zapi.cgi`) for l4xnat farms (zapi40-l4.md).

The 4.0 routers translate 4.0 bodies (checked by app/schemas/v40.py) into the same service calls
v3.1 makes, and present the answers in 4.0's shapes.  Only the envelope differs here: errors
carry `documentation`, malformed JSON has its own answer, and an unknown path is the 4.0
"Request not found".
"""

from __future__ import annotations

from fastapi import FastAPI

from app.api import discovery
from app.api.http import BASE_V40
from app.api.v40 import backends, farms, fg, interfaces, stats
from app.api.v40.base import fallback


def install(app: FastAPI) -> None:
    """Mount every 4.0 router under `/zapi/v4.0/zapi.cgi` (the catch-all last)."""
    for router in (
        discovery.router40,
        farms.router,
        backends.router,
        fg.router,
        stats.router,
        interfaces.router,
        fallback,
    ):
        app.include_router(router, prefix=BASE_V40)
