"""gRPC client channels: deadlines, identity and trace on every call; safe retries.

Retries are gRPC's own retry policy, generated from the contracts: only RPCs whose
proto declares `idempotency_level` (NO_SIDE_EFFECTS or IDEMPOTENT) are retried, and only
on UNAVAILABLE, so a write that may have happened is never silently repeated.
"""

from __future__ import annotations

import asyncio
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
from zapcore.telemetry import Span, SpanKind, start_span
from zapcore.tracing import TRACEPARENT_METADATA_KEY, current_trace

_IDEMPOTENT_LEVELS = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
}

# Clients ping idle connections this often, so a half-open connection behind a load
# balancer is noticed before a call is sent into it. Servers must accept pings this often
# even without calls (`grpc_server.server_options` derives its limits from this value):
# a ping sooner than a server allows is a strike, and a few strikes close the connection
# with GOAWAY "too_many_pings" (a reconnect, and the client doubles its ping interval).
KEEPALIVE_TIME_MS = 30_000


def channel_options(keepalive_time_ms: int = KEEPALIVE_TIME_MS) -> list[tuple[str, Any]]:
    """Channel arguments: keepalive pings (even without calls), retries, message size."""
    return [
        ("grpc.keepalive_time_ms", keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # 0: keep pinging an idle connection for ever (the default stops after two pings).
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 1),
        # gRPC's reconnect backoff grows to 120 s by default: a service back from a long
        # outage would stay unreachable that long. 5 s bounds it; breakers shed the load.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ]


CHANNEL_OPTIONS = channel_options()


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

    def _decorate(
        self, details: grpc.aio.ClientCallDetails, call_span: Span
    ) -> grpc.aio.ClientCallDetails:
        identity = current_identity() or self._fallback()
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(IDENTITY_METADATA_KEY, self._signer.sign(identity))
        # The server's span is a child of this call's span.
        metadata.add(TRACEPARENT_METADATA_KEY, call_span.trace.traceparent)
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
        method = _method_of(details)
        service, name = split_method(method)
        call_span = _client_span(method)
        code = grpc.StatusCode.OK
        try:
            call = await continuation(self._decorate(details, call_span), request)
            # Awaiting here (rather than returning the call) lets us time the whole call.
            return await call
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            GRPC_CLIENT_LATENCY.labels(service, name, code.name).observe(
                time.perf_counter() - started
            )
            _end_client_span(call_span, code)


class _UnaryStreamInterceptor(_CallDecorator, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        call_span = _client_span(_method_of(details))
        try:
            call = await continuation(self._decorate(details, call_span), request)
        except BaseException:
            _end_client_span(call_span, grpc.StatusCode.UNKNOWN)
            raise
        if call_span.recording:
            # The span lasts as long as the stream: it ends with the call, whoever ends it.
            call.add_done_callback(lambda done: _end_stream_span(done, call_span))
        return call


def _method_of(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def _client_span(method: str) -> Span:
    """The call's client span, a child of the current trace (or the first span of a new one)."""
    service, name = split_method(method)
    return start_span(
        method.lstrip("/"),
        kind=SpanKind.CLIENT,
        parent=current_trace(),
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )


def _end_client_span(call_span: Span, code: grpc.StatusCode) -> None:
    call_span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        call_span.fail(code.name)
    call_span.end()


_STREAM_ENDINGS: set[asyncio.Task[None]] = set()


def _end_stream_span(call: Any, call_span: Span) -> None:
    async def end() -> None:
        try:
            code = await call.code()
        except Exception:
            code = grpc.StatusCode.UNKNOWN
        _end_client_span(call_span, code)

    # The status is only awaitable, even on a finished call.
    task = asyncio.get_running_loop().create_task(end())
    _STREAM_ENDINGS.add(task)
    task.add_done_callback(_STREAM_ENDINGS.discard)


def open_channel(
    target: str,
    service: ServiceDescriptor,
    *,
    signer: IdentitySigner,
    caller: str,
    default_timeout: float = 5.0,
    outer_interceptors: Sequence[Any] = (),
    keepalive_time_ms: int = KEEPALIVE_TIME_MS,
) -> grpc.aio.Channel:
    """A channel to one service; calls carry identity, trace and a deadline, always.

    `outer_interceptors` wrap each call whole, retries included (a circuit breaker).
    """
    options = [
        *channel_options(keepalive_time_ms),
        ("grpc.service_config", retry_service_config(service)),
    ]

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
