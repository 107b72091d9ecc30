"""`GET /metrics` (outside the ZAPI base) and the request-metrics middleware."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response, routing

from app.api.docs import response_body
from app.api.http import zapi_path
from app.metrics import (
    CONTENT_TYPE,
    METRICS_PATH,
    Metrics,
    RequestMetricsMiddleware,
    template_finder,
)

router = APIRouter(tags=["metrics"])


@router.get(
    METRICS_PATH,
    operation_id="getMetrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: response_body("UnauthorizedBody", "Missing or wrong ZAPI key"),
        500: response_body("ZapiErrorBody", "Internal failure"),
    },
)
def get_metrics(request: Request) -> Response:
    """Prometheus metrics; needs the key unless the server runs with KERNLB_METRICS_PUBLIC."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def documented_paths(app: FastAPI) -> list[str]:
    """The path templates of the OpenAPI document, in its order (the documented API routes),
    read from the routes: building the document for them cost ~0.2 s of CPU per app start."""
    iter_contexts = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x
    contexts: Any = iter_contexts(app.routes) if iter_contexts is not None else app.routes
    paths: dict[str, None] = {}
    for context in contexts:
        route = getattr(context, "original_route", context)
        if isinstance(route, routing.APIRoute) and context.include_in_schema:
            paths.setdefault(context.path_format, None)
    return list(paths)


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Serve /metrics and count every request; call it after the other middleware."""
    app.include_router(router)

    def templates() -> list[str]:
        # The v3 alias answers the same routes: its paths fall back to these templates too.
        return [zapi_path(path) for path in documented_paths(app)]

    find = template_finder(templates)
    # Added last, so outermost: requests refused by authentication are counted too.
    app.add_middleware(
        RequestMetricsMiddleware,
        metrics=metrics,
        route_label=zapi_path,
        find_template=lambda path: find(zapi_path(path)),
    )
