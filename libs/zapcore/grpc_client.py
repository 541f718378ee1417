"""gRPC client channels: deadlines, identity and trace on every call; safe retries.

Retries are gRPC's own retry policy, generated from the contracts: only RPCs whose
proto declares `idempotency_level` (NO_SIDE_EFFECTS or IDEMPOTENT) are retried, and only
on UNAVAILABLE, so a write that may have happened is never silently repeated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor

from zapcore import deadlines
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner, current_identity
from zapcore.metrics import GRPC_CLIENT_LATENCY, split_method
from zapcore.tracing import TRACEPARENT_METADATA_KEY, current_trace, new_trace

_IDEMPOTENT_LEVELS = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
}

# Ping idle connections every 30 s (servers accept pings every 20 s), so a half-open
# connection behind a load balancer is noticed before a call is sent into it.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
    # gRPC's reconnect backoff grows to 120 s by default: a service back from a long outage
    # would stay unreachable that long. 5 s bounds it; breakers shed the load.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]


def retry_service_config(service: ServiceDescriptor) -> str:
    """A service config that retries the service's idempotent methods on UNAVAILABLE."""
    idempotent = [
        {"service": service.full_name, "method": method.name}
        for method in service.methods
        if method.GetOptions().idempotency_level in _IDEMPOTENT_LEVELS
    ]
    config: dict[str, Any] = {"methodConfig": []}
    if idempotent:
        config["methodConfig"].append(
            {
                "name": idempotent,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        )
    return json.dumps(config)


class _CallDecorator:
    """Adds identity, trace and deadline to a call's details."""

    def __init__(
        self,
        signer: IdentitySigner,
        fallback: Callable[[], Identity],
        default_timeout: float,
    ) -> None:
        self._signer = signer
        self._fallback = fallback
        self._default_timeout = default_timeout

    def _decorate(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        identity = current_identity() or self._fallback()
        trace = current_trace() or new_trace()
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(IDENTITY_METADATA_KEY, self._signer.sign(identity))
        metadata.add(TRACEPARENT_METADATA_KEY, trace.child().traceparent)
        timeout = details.timeout if details.timeout is not None else self._default_timeout
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=deadlines.remaining(timeout),
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# grpc.aio files each interceptor under the first kind it is an instance of, so one object
# cannot serve unary and streaming calls: each kind gets its own.
class _UnaryUnaryInterceptor(_CallDecorator, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        started = time.perf_counter()
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        service, name = split_method(method)
        code = grpc.StatusCode.OK
        try:
            call = await continuation(self._decorate(details), request)
            # Awaiting here (rather than returning the call) lets us time the whole call.
            return await call
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        finally:
            GRPC_CLIENT_LATENCY.labels(service, name, code.name).observe(
                time.perf_counter() - started
            )


class _UnaryStreamInterceptor(_CallDecorator, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._decorate(details), request)


def open_channel(
    target: str,
    service: ServiceDescriptor,
    *,
    signer: IdentitySigner,
    caller: str,
    default_timeout: float = 5.0,
    outer_interceptors: Sequence[Any] = (),
) -> grpc.aio.Channel:
    """A channel to one service; calls carry identity, trace and a deadline, always.

    `outer_interceptors` wrap each call whole, retries included (a circuit breaker).
    """
    options = [*CHANNEL_OPTIONS, ("grpc.service_config", retry_service_config(service))]

    def fallback() -> Identity:
        return Identity(service=caller)

    return grpc.aio.insecure_channel(
        target,
        options=options,
        interceptors=[
            *outer_interceptors,
            _UnaryUnaryInterceptor(signer, fallback, default_timeout),  # type: ignore[list-item]
            _UnaryStreamInterceptor(signer, fallback, default_timeout),  # type: ignore[list-item]
        ],
    )
