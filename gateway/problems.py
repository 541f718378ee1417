"""RFC 9457 problem details: the one error shape of every endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import orjson
from starlette.responses import Response

from zapcore.errors import ZapError
from zapcore.rpc_errors import CallFailure
from zapcore.tracing import current_trace

PROBLEM_TYPE_PREFIX = "urn:zap:problem:"
_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
# An upstream that failed in a way a client cannot fix is the gateway's bad upstream.
_UPSTREAM_FAILURE = 502


class Problem(Exception):
    """A problem raised at the edge itself (validation, size limits, routing)."""

    def __init__(
        self,
        status: int,
        reason: str,
        title: str,
        detail: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.title = title
        self.detail = detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def status_for(code: grpc.StatusCode, has_fields: bool) -> int:
    if code is grpc.StatusCode.INVALID_ARGUMENT and has_fields:
        return 422
    return _STATUS.get(code, _UPSTREAM_FAILURE)


def problem_from_failure(failure: CallFailure) -> Problem:
    """The problem for a failed upstream call, keeping the service's own reason and fields."""
    status = status_for(failure.code, bool(failure.fields))
    if status == _UPSTREAM_FAILURE:
        return Problem(status, "upstream-error", "Upstream error", "a service failed to answer")
    if failure.reason:
        reason, title, detail = failure.reason, failure.title, failure.message
    elif status == 503:
        reason, title, detail = "service-unavailable", "Service unavailable", "try again shortly"
    elif status == 504:
        reason, title, detail = "upstream-timeout", "Upstream timeout", "a service took too long"
    else:
        reason, title, detail = (
            failure.code.name.lower().replace("_", "-"),
            "Error",
            failure.message,
        )
    headers = {}
    if status == 429:
        headers["Retry-After"] = str(max(1, failure.retry_after_seconds))
    elif status == 503 and failure.retry_after_seconds:
        headers["Retry-After"] = str(failure.retry_after_seconds)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Problem(status, reason, title, detail, fields=failure.fields, headers=headers)


def problem_from_error(error: ZapError) -> Problem:
    """The problem for a domain error raised inside the gateway."""
    return problem_from_failure(
        CallFailure(
            code=error.code,
            message=error.detail,
            reason=error.reason,
            title=error.title,
            fields=error.fields,
            retry_after_seconds=error.retry_after_seconds,
        )
    )


def render(problem: Problem, instance: str = "") -> Response:
    """The problem+json response for a problem."""
    trace = current_trace()
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + problem.reason,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "trace_id": trace.trace_id if trace else None,
    }
    if problem.fields:
        body["errors"] = [
            {"field": name, "message": message} for name, message in problem.fields.items()
        ]
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type="application/problem+json",
        headers={"Cache-Control": "no-store", **problem.headers},
    )
