"""Shared dependencies: the services, reached through the application state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.api.http import json_object
from app.services.backends import BackendService
from app.services.farmguardian import FarmGuardianService
from app.services.farms import FarmService


def farm_service(request: Request) -> FarmService:
    service: FarmService = request.app.state.farms
    return service


def backend_service(request: Request) -> BackendService:
    service: BackendService = request.app.state.backends
    return service


def farmguardian_service(request: Request) -> FarmGuardianService:
    service: FarmGuardianService = request.app.state.farmguardian
    return service


FarmsDep = Annotated[FarmService, Depends(farm_service)]
BackendsDep = Annotated[BackendService, Depends(backend_service)]
FarmGuardianDep = Annotated[FarmGuardianService, Depends(farmguardian_service)]
BodyDep = Annotated[dict[str, Any], Depends(json_object)]
