"""gRPC client channels: deadlines, identity and trace on every call; safe retries.

Retries are gRPC's own retry policy, generated from the contracts: only RPCs whose
proto declares `idempotency_level` (NO_SIDE_EFFECTS or IDEMPOTENT) are retried, and only
on UNAVAILABLE, so a write that may have happened is never silently repeated.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
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

    def metadata(self, given: Any, call_span: Span) -> tuple[tuple[str, str], ...]:
        """The caller's metadata, then the signed identity and the call's traceparent."""
        identity = current_identity() or self._fallback()
        return (
            *(tuple(given) if given else ()),
            (IDENTITY_METADATA_KEY, self._signer.sign(identity)),
            # The server's span is a child of this call's span.
            (TRACEPARENT_METADATA_KEY, call_span.trace.traceparent),
        )

    def timeout(self, given: float | None) -> float:
        return deadlines.remaining(given if given is not None else self._default_timeout)

    def _decorate(
        self, details: grpc.aio.ClientCallDetails, call_span: Span
    ) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=self.timeout(details.timeout),
            metadata=grpc.aio.Metadata(*self.metadata(details.metadata, call_span)),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# Wraps one whole call (retries included) and returns its answer: a circuit breaker.
Guard = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class _UnaryUnary:
    """A unary method's calls, decorated, timed and traced by a plain coroutine.

    grpc.aio's client interceptors run each call in a task of their own and build call
    details, metadata and an intercepted call object per interceptor: more CPU than the
    call itself at the gateway. This does the same work with one coroutine around the
    undecorated call. Calling it returns a coroutine, to be awaited for the answer (what
    every caller here does; there is no call object to read metadata from).
    """

    def __init__(
        self,
        call: grpc.aio.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
        method: str,
        decorator: _CallDecorator,
        guard: Guard | None,
    ) -> None:
        self._call = call
        self._method = method
        self._service, self._name = split_method(method)
        self._decorator = decorator
        self._guard = guard
        self._latency: dict[grpc.StatusCode, Any] = {}

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Awaitable[Any]:
        def run() -> Awaitable[Any]:
            return self._timed(request, timeout, metadata, credentials, wait_for_ready, compression)

        return run() if self._guard is None else self._guard(run)

    async def _timed(
        self,
        request: Any,
        call_timeout: float | None,
        metadata: Any,
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> Any:
        started = time.perf_counter()
        call_span = _client_span(self._method)
        code = grpc.StatusCode.OK
        try:
            return await self._call(
                request,
                timeout=self._decorator.timeout(call_timeout),
                metadata=self._decorator.metadata(metadata, call_span),
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            self._series(code).observe(time.perf_counter() - started)
            _end_client_span(call_span, code)

    def _series(self, code: grpc.StatusCode) -> Any:
        # Looked up by label once per outcome, not on every call.
        series = self._latency.get(code)
        if series is None:
            series = self._latency[code] = GRPC_CLIENT_LATENCY.labels(
                self._service, self._name, code.name
            )
        return series


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


class _DecoratedChannel(grpc.aio.Channel):
    """A grpc.aio channel whose unary calls go through `_UnaryUnary`; streams keep their
    interceptor (they are few and long, so its cost per call does not matter)."""

    def __init__(self, channel: grpc.aio.Channel, decorator: _CallDecorator, guard: Guard | None):
        self._channel = channel
        self._decorator = decorator
        self._guard = guard

    async def __aenter__(self) -> _DecoratedChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._channel.close(None)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        inner = self._channel.unary_unary(
            method,
            request_serializer,
            response_deserializer,
            _registered_method,  # type: ignore[call-arg]  # the stubs predate it
        )
        return _UnaryUnary(inner, method, self._decorator, self._guard)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._channel.unary_stream(
            method,
            request_serializer,
            response_deserializer,
            _registered_method,  # type: ignore[call-arg]
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._channel.stream_unary(
            method,
            request_serializer,
            response_deserializer,
            _registered_method,  # type: ignore[call-arg]
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._channel.stream_stream(
            method,
            request_serializer,
            response_deserializer,
            _registered_method,  # type: ignore[call-arg]
        )


def open_channel(
    target: str,
    service: ServiceDescriptor,
    *,
    signer: IdentitySigner,
    caller: str,
    default_timeout: float = 5.0,
    guard: Guard | None = None,
    keepalive_time_ms: int = KEEPALIVE_TIME_MS,
) -> grpc.aio.Channel:
    """A channel to one service; calls carry identity, trace and a deadline, always.

    `guard` wraps each unary call whole, retries included (a circuit breaker).
    """
    options = [
        *channel_options(keepalive_time_ms),
        ("grpc.service_config", retry_service_config(service)),
    ]

    def fallback() -> Identity:
        return Identity(service=caller)

    decorator = _CallDecorator(signer, fallback, default_timeout)
    channel = grpc.aio.insecure_channel(
        target,
        options=options,
        interceptors=[_UnaryStreamInterceptor(signer, fallback, default_timeout)],  # type: ignore[list-item]
    )
    return _DecoratedChannel(channel, decorator, guard)
