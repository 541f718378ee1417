"""The OpenAPI document, with the one error shape every route answers with.

FastAPI documents only the success response and its own 422 (as application/json with its
default body). Every error here is an RFC 9457 problem (application/problem+json, see
problems.py), so each operation lists the problem statuses a client must be ready for, and
`default` covers the rest (502, 504...). Generated clients and schema-driven fuzzers then
see what the gateway really sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, the body of every error.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:zap:problem:validation-error"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "trace_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_API_PROBLEMS = {
    "400": "Malformed request (bad JSON, an id or cursor that is not one)",
    "401": "Missing, expired or revoked access token",
    "403": "Not allowed for this user",
    "404": "No such object, or not visible to this user",
    "409": "Conflicts with the current state",
    "413": "Request body too large",
    "422": "Some fields are invalid (`errors` names them)",
    "429": "Rate limited (see Retry-After)",
    "503": "A service is unavailable (see Retry-After when given)",
}
_OPS_PROBLEMS = {"503": "Not ready"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


def with_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Document the problem responses of every operation in an OpenAPI document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, item in document.get("paths", {}).items():
        problems = _API_PROBLEMS if path.startswith("/api/") else _OPS_PROBLEMS
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status, description in problems.items():
                # FastAPI's own 422 describes its default body, which the gateway never sends.
                if status == "422" or status not in responses:
                    responses[status] = _problem(description)
            responses["default"] = _problem("Any other error")
    return document


def install(app: FastAPI) -> None:
    """Serve the problem-aware document at /openapi.json (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
