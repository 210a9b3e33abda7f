"""/openapi.json built from the route table and the pydantic models in api.schemas.

Each endpoint carries an `Operation` (attached by the `@operation` decorator) naming its request
body, responses and query parameters by model; the generator walks the app's routes, so a route
that exists is documented and a body the server validates is the body the schema shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from api.schemas import ErrorOut
from controller import __version__

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"

ERROR_TEXT = {
    400: "Bad request",
    401: "Missing, invalid or expired access token",
    403: "Forbidden",
    404: "No such object",
    409: "Conflict: exists already, stale resource_version, or a state that does not allow it",
    422: "Validation failed; `detail` lists each field and rule",
    429: "Too many attempts; see Retry-After",
    503: "The container runtime cannot be reached",
    504: "The container runtime did not answer in time",
}


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    response: Any = None  # a model, list[model], or None for no body
    status: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[Query, ...] = ()
    public: bool = False
    media_type: str = "application/json"
    tags: tuple[str, ...] = field(default_factory=tuple)


def operation(op: Operation) -> Callable[[F], F]:
    def attach(fn: F) -> F:
        fn.__openapi__ = op  # type: ignore[attr-defined]
        return fn

    return attach


def _schema_of(tp: Any, models: dict[str, Any]) -> dict[str, Any]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {"$ref": REF.format(model=tp.__name__)}
    schema = TypeAdapter(tp).json_schema(ref_template=REF)
    models.update(schema.pop("$defs", {}))
    return schema


def _models(routes: list[BaseRoute]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = {ErrorOut}
    for route in routes:
        op: Operation | None = getattr(getattr(route, "endpoint", None), "__openapi__", None)
        if op is None:
            continue
        for tp in (op.body, op.response):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                found.add(tp)
    return found


def build_openapi(routes: list[BaseRoute], title: str = "Claw Pen gateway") -> dict[str, Any]:
    models = sorted(_models(routes), key=lambda m: m.__name__)
    _, top = models_json_schema(
        [
            (
                m,
                "validation" if m.__name__.endswith(("Request", "Create", "Update", "In")) else "serialization",
            )
            for m in models
        ],
        ref_template=REF,
    )
    components: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue  # WebSocket routes cannot be described in OpenAPI 3.1; the README documents them
        op: Operation | None = getattr(route.endpoint, "__openapi__", None)
        if op is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": "REST surface of Claw Pen. WebSockets (token as ?token=): "
            "/api/agents/{id}/chat and /api/agents/{id}/logs/stream; frames are in the README.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _operation(route: Route, op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "operationId": route.name}
    if op.tags:
        out["tags"] = list(op.tags)
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
        }
        for name in route.param_convertors
    ]
    params += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema, "description": q.description}
        for q in op.query
    ]
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_of(op.body, components)}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        ok["content"] = {
            op.media_type: {
                "schema": _schema_of(op.response, components)
                if op.media_type == "application/json"
                else {"type": "string"}
            }
        }
    responses: dict[str, Any] = {str(op.status): ok}
    errors = set(op.errors)
    if not op.public:
        errors.add(401)
        out["security"] = [{"bearerAuth": []}]
    if op.body is not None:
        errors.add(422)
    if route.param_convertors:
        errors.add(404)
    for code in sorted(errors):
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}},
        }
    out["responses"] = responses
    return out
