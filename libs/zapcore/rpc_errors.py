"""ZapError <-> gRPC status with a zap.common.v1.ErrorDetail in its details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from zap.common.v1 import common_pb2
from zapcore.errors import Unavailable, ZapError

_DETAILS_KEY = "grpc-status-details-bin"


def error_to_status(error: ZapError) -> grpc.Status:
    """The status a server aborts with for a domain error."""
    detail = common_pb2.ErrorDetail(
        reason=error.reason,
        title=error.title,
        field_violations=[
            common_pb2.FieldViolation(field=name, description=text)
            for name, text in error.fields.items()
        ],
        retry_after_seconds=error.retry_after_seconds,
    )
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(code=error.code.value[0], message=error.detail, details=[packed])
    return rpc_status.to_status(status)


@dataclass(frozen=True, slots=True)
class CallFailure:
    """What a caller learns from a failed call, whether or not the server sent details."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    title: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    retry_after_seconds: int = 0


def failure_from_rpc_error(error: grpc.aio.AioRpcError) -> CallFailure:
    """Decode a failed call's status and, when present, its ErrorDetail."""
    code = error.code()
    message = error.details() or ""
    trailing: Any = error.trailing_metadata() or ()
    for key, value in trailing:
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for packed in status.details:
            detail = common_pb2.ErrorDetail()
            if packed.Unpack(detail):
                return CallFailure(
                    code=code,
                    message=status.message or message,
                    reason=detail.reason,
                    title=detail.title,
                    fields={v.field: v.description for v in detail.field_violations},
                    retry_after_seconds=detail.retry_after_seconds,
                )
    return CallFailure(code=code, message=message)


_PEER_OUTAGE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)
_PEER_FAULT = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)


def error_from_peer(error: grpc.aio.AioRpcError) -> ZapError:
    """What a failed call to another service means for our own caller.

    A peer that is down or slow makes us unavailable (the caller may retry); a peer's own
    bug stays internal; anything else (not found, invalid, denied) is passed on as it is.
    """
    failure = failure_from_rpc_error(error)
    if failure.code in _PEER_OUTAGE:
        result: ZapError = Unavailable(
            "a service this call depends on is unavailable; try again shortly",
            reason="dependency-unavailable",
        )
        return result
    result = ZapError(
        failure.message or "a service this call depends on failed",
        reason=failure.reason or ("internal" if failure.code in _PEER_FAULT else "error"),
        title=failure.title or None,
        fields=failure.fields,
        retry_after_seconds=failure.retry_after_seconds,
    )
    result.code = grpc.StatusCode.INTERNAL if failure.code in _PEER_FAULT else failure.code
    return result
