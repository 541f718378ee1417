"""The OpenAPI document as generated clients need it: errors, security, headers, short ids.

FastAPI documents only the success response and its own 422 (as application/json with its
default body). Every error here is an RFC 9457 problem (application/problem+json, see
problems.py), so each operation lists the problem statuses a client must be ready for, and
`default` covers the rest (502, 504...). Generated clients and schema-driven fuzzers then
see what the gateway really sends.

It also says what FastAPI cannot see from the route signatures: which operations take a
bearer token (the routes that depend on the caller, found as gateway.deps finds them), the
headers the middleware reads and writes (`Idempotency-Key`, `Idempotent-Replayed`,
`Retry-After`, `Zap-Degraded`), and operation ids short enough to be a generated client's
method names (`get_home_feed`, not `home_api_v1_feed_home__get`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from gateway.deps import current_user, optional_user
from gateway.routes.feed import DEGRADED_HEADER

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
    "400": "Malformed request (the body is not JSON, a bad Idempotency-Key) or refused whole",
    "401": "Missing, expired or revoked access token",
    "403": "Not allowed for this user",
    "404": "No such object, or not visible to this user",
    "409": "Conflicts with the current state",
    "413": "Request body too large",
    "422": "Some fields are invalid (`errors` names them): an id that is not a UUID, a cursor "
    "not issued for this list or expired, a value out of range",
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


# Operation id by route function name, where the name alone would make a vague client
# method (`home`, `comments`, `follow`...). Other routes keep their function's name. These
# are the SDK's method names: renaming one breaks every generated client.
_OPERATION_IDS = {
    "home": "get_home_feed",
    "explore": "explore_posts",
    "trending_hashtags": "list_trending_hashtags",
    "me": "get_me",
    "update_me": "update_me",
    "delete_me": "delete_me",
    "export_me": "export_me",
    "presign": "presign_upload",
    "complete": "complete_upload",
    "queue": "list_moderation_queue",
    "claim": "claim_queue_item",
    "decide": "decide_queue_item",
    "appeal": "appeal_decision",
    "mark_read": "mark_notifications_read",
    "unread_count": "get_unread_count",
    "like": "like_post",
    "unlike": "unlike_post",
    "comment": "create_comment",
    "comments": "list_comments",
    "share": "share_post",
    "user_posts": "list_user_posts",
    "by_username": "get_profile_by_username",
    "profile": "get_profile",
    "follow": "follow_user",
    "unfollow": "unfollow_user",
    "block": "block_user",
    "unblock": "unblock_user",
    "mute": "mute_user",
    "unmute": "unmute_user",
    "followers": "list_followers",
    "following": "list_following",
    "_jwks": "get_jwks",
}
# The same function on a second path needs an id of its own.
_OPERATION_IDS_BY_PATH = {"/.well-known/jwks.json": "get_well_known_jwks"}

BEARER_SCHEME = "bearer"
_BEARER: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The `access` token from `POST /api/v1/auth/login/` (or `/refresh/`).",
}
_HEADERS: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key`, not a new one.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    DEGRADED_HEADER: {
        "description": "`true` when the page was served from the cache while the feed "
        "database is unavailable (the body says `degraded` too).",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry safely: a repeat with the same key, method, path and body within "
    "24 hours gets the first answer (`Idempotent-Replayed: true`) instead of acting twice; "
    "the same key with another body is a 422, and a repeat while the first still runs a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
# Operations whose 200 may come from the cache, marked with DEGRADED_HEADER.
_DEGRADABLE = {"get_home_feed"}


def operation_id(route: APIRoute) -> str:
    """The operation id of a route: its function's name, or the clearer one listed above."""
    return _OPERATION_IDS_BY_PATH.get(route.path) or _OPERATION_IDS.get(route.name, route.name)


def _add_header(response: dict[str, Any], name: str) -> None:
    response.setdefault("headers", {})[name] = {"$ref": f"#/components/headers/{name}"}


def _authentication(dependant: Dependant) -> str | None:
    """`required` when the route depends on the signed-in caller, `optional` when only on
    a caller if one signs in, else None."""
    calls = {sub.call for sub in _all_dependencies(dependant)}
    if current_user in calls:
        return "required"
    if optional_user in calls:
        return "optional"
    return None


def _all_dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _all_dependencies(sub)


def _operations(
    document: dict[str, Any], routes: Sequence[BaseRoute]
) -> Iterator[tuple[str, str, Dependant, dict[str, Any]]]:
    """(path, method, dependencies, operation) of each documented operation, with routes
    seen as mounted (their router's prefix and dependencies included)."""
    for route in iter_route_contexts(routes):
        path = route.path_format
        if not isinstance(route.original_route, APIRoute) or path is None:
            continue
        item = document["paths"].get(path, {})
        for method in sorted(route.methods or ()):
            operation = item.get(method.lower())
            if operation is not None:
                yield path, method, route.dependant, operation


def with_client_details(document: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Document the bearer scheme, the edge's headers and unique operation ids."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = _BEARER
    components.setdefault("headers", {}).update(_HEADERS)
    seen: dict[str, str] = {}
    for path, method, dependant, operation in _operations(document, routes):
        where = f"{method} {path}"
        ident = operation["operationId"]
        if ident in seen:
            raise ValueError(f"operation id {ident!r} of {where} is {seen[ident]}'s too")
        seen[ident] = where
        authentication = _authentication(dependant)
        if authentication is not None:
            # An empty requirement: the operation answers without a token too.
            operation["security"] = [{BEARER_SCHEME: []}] + (
                [{}] if authentication == "optional" else []
            )
        responses: dict[str, Any] = operation["responses"]
        # The idempotency middleware acts on signed-in POSTs to the API; its 409 (the first
        # request with the key still running) says when to retry.
        idempotent = method == "POST" and authentication and path.startswith("/api/v1/")
        for status in ("409", "429", "503") if idempotent else ("429", "503"):
            if status in responses:
                _add_header(responses[status], "Retry-After")
        if idempotent:
            operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
            for status, response in responses.items():
                if status.startswith("2"):
                    _add_header(response, "Idempotent-Replayed")
        if ident in _DEGRADABLE:
            _add_header(responses["200"], DEGRADED_HEADER)
    return document


def install(app: FastAPI) -> None:
    """Serve the client-ready document at /openapi.json (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            app.openapi_schema = with_client_details(with_problems(document), app.routes)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
