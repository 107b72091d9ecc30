"""OpenAPI decoration: success and error bodies, request bodies, the ZAPI_KEY scheme."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import Schema as OpenApiSchema
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.schemas.ipds import REQUEST_MODELS as IPDS_REQUEST_MODELS
from app.schemas.requests import REQUEST_MODELS

ERROR_TEXT = {
    400: "Invalid input, or the kernel refused the change (nothing was changed)",
    404: "Farm or backend not found",
    410: "Value no longer supported",
}
INTERNAL_ERROR_TEXT = "Internal failure (a bug): the details are in the server log"
# The models of documented response bodies, by name (None: a model of DOC_MODULES, named
# only): their schemas are generated only when the OpenAPI document is (`install_openapi`).
RESPONSE_MODELS: dict[str, type[BaseModel] | None] = {}
# Where response bodies named by a string are defined.  Only the document (and the tests) read
# these ~100 models: importing them cost ~40 ms of every start of the app.
DOC_MODULES = ("app.schemas.docs", "app.schemas.v40_bodies")

# A documented body: its model, or the name of a model of DOC_MODULES.
DocModel = type[BaseModel] | str


def _schema_ref(model: DocModel) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def response_body(model: DocModel, description: str) -> dict[str, Any]:
    """An OpenAPI response whose JSON body is `model`, for a route's `responses`.  Not FastAPI's
    `{"model": ...}`: that built a pydantic field (a TypeAdapter) per response of every route,
    at import and again per inclusion (~600 of them, ~0.1 s of every start), although only the
    document reads them.  The reference and the schema are the ones FastAPI wrote."""
    name = model if isinstance(model, str) else model.__name__
    if isinstance(model, str):
        RESPONSE_MODELS.setdefault(name, None)
    else:
        known = RESPONSE_MODELS.get(name)
        assert known in (None, model), f"two response models named {name}"
        RESPONSE_MODELS[name] = model
    schema = _schema_ref(model)
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def response_models() -> list[type[BaseModel]]:
    """The documented response bodies, the named ones imported from DOC_MODULES."""
    modules = [importlib.import_module(module) for module in DOC_MODULES]
    found: list[type[BaseModel]] = []
    for name, model in RESPONSE_MODELS.items():
        named = [getattr(module, name) for module in modules if hasattr(module, name)]
        resolved = model or (named[0] if named else None)
        assert isinstance(resolved, type) and issubclass(resolved, BaseModel), name
        assert all(other is resolved for other in named), f"two models named {name}"
        found.append(resolved)
    return found


def documented(
    success: DocModel,
    *,
    status: int = 200,
    body: DocModel | None = None,
    errors: tuple[int, ...] = (404,),
    texts: dict[int, str] | None = None,
) -> dict[str, Any]:
    """`texts` overrides the descriptions of `ERROR_TEXT` for this operation."""
    responses: dict[int | str, dict[str, Any]] = {
        status: response_body(success, "Success"),
        401: response_body("UnauthorizedBody", "Missing or wrong ZAPI key"),
    }
    for code in errors:
        text = (texts or {}).get(code, ERROR_TEXT[code])
        responses[code] = response_body("ZapiErrorBody", text)
    responses[500] = response_body("ZapiErrorBody", INTERNAL_ERROR_TEXT)
    extra: dict[str, Any] | None = None
    if body is not None:
        responses[415] = response_body(
            "UnsupportedMediaBody", "Content-Type is not application/json"
        )
        ref = _schema_ref(body)
        extra = {
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}
        }
    # response_model=None: the return annotation (a dict) must not shadow the documented model.
    return {"responses": responses, "openapi_extra": extra, "response_model": None}


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                # Validation errors are ZAPI 400s, never FastAPI's 422 {"detail": ...}.
                operation.get("responses", {}).pop("422", None)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        # The response bodies (`response_body`), as FastAPI generated them: serialization
        # schemas, nested models as components of their own, passed through its OpenAPI model
        # (which drops `"default": null`), all sorted by name.
        for model in response_models():
            generated = model.model_json_schema(
                mode="serialization", ref_template="#/components/schemas/{model}"
            )
            generated_defs = {**generated.pop("$defs", {}), model.__name__: generated}
            for name, definition in generated_defs.items():
                schemas[name] = jsonable_encoder(
                    OpenApiSchema(**definition), by_alias=True, exclude_none=True
                )
        components["schemas"] = schemas = dict(sorted(schemas.items()))
        from app.schemas import docs
        from app.schemas.v40 import REQUEST_MODELS40
        from app.schemas.v40_bodies import Error40Body, InvalidJsonBody, ParamHelpBody

        extra: tuple[type[BaseModel], ...] = (
            *IPDS_REQUEST_MODELS,
            docs.ServiceCreateBody,
            docs.ServiceUpdateBody,
            docs.ServiceBackendBody,
            docs.FarmCertificateBody,
            *REQUEST_MODELS40,
            Error40Body,
            ParamHelpBody,
            InvalidJsonBody,
        )
        for model in (*REQUEST_MODELS, *extra):
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(generated.pop("$defs", {}))
            schemas[model.__name__] = generated
        components["securitySchemes"] = {
            "ZAPI_KEY": {"type": "apiKey", "in": "header", "name": "ZAPI_KEY"}
        }
        schema["security"] = [{"ZAPI_KEY": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
