"""Assertions on the gateway's one error shape (RFC 9457 problem details)."""

from __future__ import annotations

import re
from typing import Any

import httpx

PROBLEM_KEYS = {"type", "title", "status", "detail", "trace_id"}
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def trace_id_of(response: httpx.Response) -> str:
    """The trace id of the response's `traceparent` header (which must be valid W3C)."""
    match = _TRACEPARENT.match(response.headers.get("traceparent", ""))
    assert match, f"no valid traceparent header: {response.headers.get('traceparent')!r}"
    return match.group(1)


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    reason: str | None = None,
    fields: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check the status and the problem shape; `fields` must be named in `errors`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["type"].startswith("urn:zap:problem:")
    assert body["title"]
    assert body["detail"]
    assert body["trace_id"] == trace_id_of(response)
    if reason is not None:
        assert body["type"] == f"urn:zap:problem:{reason}", body
    if fields:
        named = {error["field"] for error in body.get("errors", [])}
        assert set(fields) <= named, body
        assert all(error["message"] for error in body["errors"])
    return body
