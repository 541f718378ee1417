"""One error model: domain errors carry their gRPC code; the edge renders RFC 9457 problems.

Services raise these; the server interceptor turns them into a gRPC status with a
`zap.common.v1.ErrorDetail` in its details; the gateway turns that status into problem JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc


class ZapError(Exception):
    """Base of every error a client may see; subclasses fix the code and default reason."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = "error"
    title: str = "Error"

    def __init__(
        self,
        detail: str,
        *,
        reason: str | None = None,
        title: str | None = None,
        fields: Mapping[str, str] | None = None,
        retry_after_seconds: int = 0,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason
        if title is not None:
            self.title = title
        self.fields = dict(fields or {})
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(ZapError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "invalid-argument"
    title = "Invalid request"


class NotFound(ZapError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "not-found"
    title = "Not found"


class AlreadyExists(ZapError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "already-exists"
    title = "Already exists"


class FailedPrecondition(ZapError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "failed-precondition"
    title = "Not allowed in the current state"


class Unauthenticated(ZapError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(ZapError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "permission-denied"
    title = "Permission denied"


class RateLimited(ZapError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "rate-limited"
    title = "Too many requests"


class Unavailable(ZapError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "unavailable"
    title = "Temporarily unavailable"
