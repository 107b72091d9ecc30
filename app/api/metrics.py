"""`GET /metrics` (outside the ZAPI base) and the request-metrics middleware."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from app.api.http import zapi_path
from app.metrics import (
    CONTENT_TYPE,
    METRICS_PATH,
    Metrics,
    RequestMetricsMiddleware,
    template_finder,
)
from app.schemas import docs

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
        401: {"model": docs.UnauthorizedBody, "description": "Missing or wrong ZAPI key"},
        500: {"model": docs.ZapiErrorBody, "description": "Internal failure"},
    },
)
def get_metrics(request: Request) -> Response:
    """Prometheus metrics; needs the key unless the server runs with KERNLB_METRICS_PUBLIC."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """Serve /metrics and count every request; call it after the other middleware."""
    app.include_router(router)

    def templates() -> list[str]:
        # The v3 alias answers the same routes: its paths fall back to these templates too.
        return [zapi_path(path) for path in app.openapi()["paths"]]

    find = template_finder(templates)
    # Added last, so outermost: requests refused by authentication are counted too.
    app.add_middleware(
        RequestMetricsMiddleware,
        metrics=metrics,
        route_label=zapi_path,
        find_template=lambda path: find(zapi_path(path)),
    )
