"""ZAPI v4.0 plumbing: the route class that renders 4.0 errors, the body parser, the
catch-all 404 and the OpenAPI decoration of 4.0 operations."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from app.api.docs import DocModel, documented, response_body
from app.api.http import ZapiResponse, zapi_path
from app.errors import NotFound, UnsupportedMediaType, ZapiError
from app.schemas.v40 import DOCUMENTATION, InvalidJson


def error_body(exc: ZapiError) -> dict[str, Any]:
    """4.0's `httpErrorResponse` adds the documentation link; the help, 401, 415 and
    malformed-JSON answers are written without it."""
    body = exc.body()
    if "error" in body and "description" in body:
        body["documentation"] = DOCUMENTATION
    return body


class V40Route(APIRoute):
    """Renders the ZapiErrors of 4.0 routes (and of their dependencies) the 4.0 way."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ZapiError as exc:
                return ZapiResponse(error_body(exc), exc.status_code)

        return answer


def new_router(tag: str) -> APIRouter:
    return APIRouter(tags=[tag], default_response_class=ZapiResponse, route_class=V40Route)


async def json_body(request: Request) -> dict[str, Any]:
    """A 4.0 POST/PUT body: `application/json` holding a JSON object; empty means `{}` (which
    the checker answers with the parameter help)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType()
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson() from None
    if not isinstance(value, dict):
        raise InvalidJson()
    return value


Body40 = Annotated[dict[str, Any], Depends(json_body)]

fallback = new_router("v4.0")


@fallback.api_route(
    "/{path:path}",
    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
    include_in_schema=False,
)
def not_found(request: Request) -> None:
    """Any other 4.0 path (e.g. `PUT /farms/NAME/fg`, gone in 4.0; the EE-only endpoints)."""
    raise NotFound(
        f"Request not found: {zapi_path(request.url.path)}", description="Request not found"
    )


def documented40(
    success: DocModel,
    *,
    status: int = 200,
    body: DocModel | None = None,
    errors: tuple[int, ...] = (404,),
    texts: dict[int, str] | None = None,
) -> dict[str, Any]:
    """`documented` with 4.0's error body (`documentation` added) and, for bodies, the
    parameter-help answer an empty body gets."""
    texts = dict(texts or {})
    if body is not None and 400 not in errors:
        errors = (*errors, 400)
    spec = documented(success, status=status, body=body, errors=errors, texts=texts)
    responses = spec["responses"]
    for code in errors:
        responses[code] = response_body("Error40Body", responses[code]["description"])
    if body is not None:
        text = responses[400]["description"]
        responses[400] = {
            "description": (
                f"{text}; an empty body gets the parameter help (ParamHelpBody), "
                "malformed JSON its own answer (InvalidJsonBody)"
            ),
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/Error40Body"},
                            {"$ref": "#/components/schemas/ParamHelpBody"},
                            {"$ref": "#/components/schemas/InvalidJsonBody"},
                        ]
                    }
                }
            },
        }
    return spec
