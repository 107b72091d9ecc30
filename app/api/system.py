"""System endpoints."""

from __future__ import annotations

import platform
import socket
import time
from typing import Any

from fastapi import APIRouter

from app import __version__
from app.api.docs import documented
from app.api.http import ZapiResponse

router = APIRouter(tags=["system"], default_response_class=ZapiResponse)


@router.get(
    "/system/version",
    operation_id="getSystemVersion",
    **documented("VersionResponse", errors=()),
)
def system_version() -> dict[str, Any]:
    """Version information (ZAPI clients use it as a ping)."""
    return {
        "description": "Get version",
        "params": {
            "appliance_version": f"ZCE 5 (kernlb {__version__})",
            "hostname": socket.gethostname(),
            "kernel_version": platform.release(),
            "system_date": time.strftime("%a %b %d %H:%M:%S %Y"),
            "zevenet_version": f"kernlb-{__version__}",
        },
    }
