"""gRPC server bootstrap: interceptors, health, reflection, graceful shutdown.

Every ZAP service is a `GrpcServer`: the standard `grpc.health.v1` service (SERVING once
started, NOT_SERVING as soon as shutdown begins), server reflection (v1 and v1alpha, see
reflection.py), and one interceptor that binds trace id, caller identity and deadline for
the call, logs it, records metrics (and a span, when telemetry is on) and turns domain
errors into rich statuses. At shutdown, callbacks a service registered (`on_shutdown`) run
before in-flight calls drain: open streams end then, not at the grace.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from zapcore import deadlines, reflection
from zapcore.errors import ZapError
from zapcore.grpc_client import KEEPALIVE_TIME_MS
from zapcore.identity import IDENTITY_METADATA_KEY, IdentitySigner, set_current_identity
from zapcore.logging import get_logger
from zapcore.metrics import GRPC_SERVER_HANDLED, GRPC_SERVER_LATENCY, split_method
from zapcore.rpc_errors import error_from_peer, error_to_status
from zapcore.telemetry import Span, SpanKind, start_span
from zapcore.tracing import TRACEPARENT_METADATA_KEY, parse_traceparent, set_current_trace

log = get_logger(__name__)

# Probes and tooling must work without an identity; everything else needs one.
_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
# A deadline further away than this is treated as "none set".
_NO_DEADLINE = 10**6


def server_options(client_keepalive_time_ms: int = KEEPALIVE_TIME_MS) -> list[tuple[str, Any]]:
    """Server arguments that accept the keepalive pings of `grpc_client` channels."""
    return [
        # The server's own pings find clients that vanished without closing the connection.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Clients ping every `client_keepalive_time_ms`, with or without calls in flight. A
        # ping sooner than the minimum interval is a strike, and more than `max_ping_strikes`
        # end the connection (GOAWAY "too_many_pings"); the minimum sits a third below the
        # clients' interval so that timer jitter is never a strike. (gRPC ignores unknown
        # argument names silently: a misspelt one leaves the default minimum, 5 minutes.)
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", client_keepalive_time_ms * 2 // 3),
        ("grpc.http2.max_ping_strikes", 3),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


SERVER_OPTIONS = server_options()


class _Method:
    """What a method's calls share, found once per method rather than per call: its names,
    its span attributes and its metric series."""

    __slots__ = ("_labels", "handled", "latency", "name", "span_attributes", "span_name")

    def __init__(self, method: str) -> None:
        service, name = split_method(method)
        self.name = method
        self.span_name = method.lstrip("/")
        self.span_attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        self.latency = GRPC_SERVER_LATENCY.labels(service, name)
        # Filled as codes occur: a series for every code would show counts nobody made.
        self.handled: dict[grpc.StatusCode, Any] = {}
        self._labels = (service, name)

    def count(self, code: grpc.StatusCode) -> None:
        series = self.handled.get(code)
        if series is None:
            series = self.handled[code] = GRPC_SERVER_HANDLED.labels(*self._labels, code.name)
        series.inc()


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Binds trace, identity and deadline per call; logs, measures and maps errors."""

    def __init__(self, signer: IdentitySigner, default_deadline_seconds: float) -> None:
        self._signer = signer
        self._default_deadline = default_deadline_seconds
        # gRPC asks for a method's handler on every call: each is wrapped once, and the
        # wrapper reused for as long as the service hands out the same handler.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(_Method(method), handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: _Method, handler: Any) -> Any:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _wrap_unary(self, method: _Method, behaviour: Any) -> Any:
        async def unary(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            metadata = context.invocation_metadata() or ()
            call_span = _start_span(method, metadata)
            code = grpc.StatusCode.OK
            error: ZapError | None = None
            try:
                timeout = self._begin(context, metadata)
                async with asyncio.timeout(timeout):
                    return await behaviour(request, context)
            except ZapError as exc:
                error, code = exc, exc.code
            except grpc.aio.AioRpcError as exc:
                error = error_from_peer(exc)
                code = error.code
                log.warning("grpc.peer_failed", method=method.name, peer_code=exc.code().name)
            except TimeoutError:
                error = ZapError("the call ran out of time")
                error.code = code = grpc.StatusCode.DEADLINE_EXCEEDED
                error.reason, error.title = "deadline-exceeded", "Deadline exceeded"
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("grpc.unhandled_error", method=method.name)
                error = ZapError("internal error")
                error.code, error.reason, error.title = code, "internal", "Internal error"
            finally:
                self._finish(method, code, started, call_span)
            await context.abort_with_status(error_to_status(error))

        return unary

    def _wrap_stream(self, method: _Method, behaviour: Any) -> Any:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            metadata = context.invocation_metadata() or ()
            call_span = _start_span(method, metadata)
            code = grpc.StatusCode.OK
            error: ZapError | None = None
            try:
                # Streams (Subscribe, fanout batches) live as long as the caller's deadline,
                # so no default deadline is imposed on them.
                self._begin(context, metadata)
                async for item in behaviour(request, context):
                    yield item
            except ZapError as exc:
                error, code = exc, exc.code
            except grpc.aio.AioRpcError as exc:
                error = error_from_peer(exc)
                code = error.code
                log.warning("grpc.peer_failed", method=method.name, peer_code=exc.code().name)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("grpc.unhandled_error", method=method.name)
                error = ZapError("internal error")
                error.code, error.reason, error.title = code, "internal", "Internal error"
            finally:
                self._finish(method, code, started, call_span)
            if error is not None:
                await context.abort_with_status(error_to_status(error))

        return stream

    def _begin(self, context: Any, metadata: Sequence[tuple[str, str | bytes]]) -> float:
        assertion = None
        for key, value in metadata:
            if key == IDENTITY_METADATA_KEY:
                assertion = value  # the last one, as a dict of the metadata would keep
        set_current_identity(None)
        identity = self._signer.verify(_text(assertion) or "")
        set_current_identity(identity)
        remaining = context.time_remaining()
        timeout = (
            self._default_deadline
            if remaining is None or remaining > _NO_DEADLINE
            else max(remaining, 0.0)
        )
        deadlines.set_deadline(timeout)
        structlog.contextvars.bind_contextvars(
            caller=identity.service,
            user_id=str(identity.user_id) if identity.user_id else None,
        )
        return timeout

    @staticmethod
    def _finish(method: _Method, code: grpc.StatusCode, started: float, call_span: Span) -> None:
        elapsed = time.perf_counter() - started
        method.latency.observe(elapsed)
        method.count(code)
        if _calls_logged():
            log.info(
                "grpc.call",
                method=method.name,
                code=code.name,
                duration_ms=round(elapsed * 1000, 2),
            )
        call_span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            call_span.fail(code.name)
        call_span.end()


# Statuses that are the server's fault (OpenTelemetry's RPC conventions); the others are the
# caller's (not found, invalid argument...) and leave the server span unmarked.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def _calls_logged() -> bool:
    # Every call logs at info, which production and the benchmarks leave out: then not even
    # the event is built. (The stdlib caches the answer until levels change.)
    return _stdlib_log.isEnabledFor(logging.INFO)


_stdlib_log = logging.getLogger(__name__)


def _start_span(method: _Method, metadata: Sequence[tuple[str, str | bytes]]) -> Span:
    """The call's server span, continuing the caller's trace; the current trace from now on."""
    traceparent = None
    for key, value in metadata:
        if key == TRACEPARENT_METADATA_KEY:
            traceparent = _text(value)
    call_span = start_span(
        method.span_name,
        kind=SpanKind.SERVER,
        parent=parse_traceparent(traceparent),
        attributes=method.span_attributes,
    )
    set_current_trace(call_span.trace)
    return call_span


ShutdownCallback = Callable[[], Awaitable[None]]


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class GrpcServer:
    """One service's gRPC server with health, reflection and graceful shutdown."""

    def __init__(
        self,
        *,
        service_names: Iterable[str],
        signer: IdentitySigner,
        host: str,
        port: int,
        default_deadline_seconds: float = 10.0,
        shutdown_grace_seconds: float = 10.0,
        reflection_enabled: bool = True,
        options: Sequence[tuple[str, Any]] = SERVER_OPTIONS,
    ) -> None:
        self.service_names = list(service_names)
        self._address = f"{host}:{port}"
        self._grace = shutdown_grace_seconds
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(signer, default_deadline_seconds)],
            options=list(options),
        )
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if reflection_enabled:
            reflection.enable([*self.service_names, health.SERVICE_NAME], self.server)
        self.port = 0
        self._stopped = False
        self._shutdown_callbacks: list[ShutdownCallback] = []

    def on_shutdown(self, callback: ShutdownCallback) -> None:
        """Run `callback` when shutdown begins, before in-flight calls are drained.

        For what would otherwise hold the whole grace period: open server streams (end them
        so that their clients resume elsewhere), long polls.
        """
        self._shutdown_callbacks.append(callback)

    async def start(self) -> int:
        """Bind, start and report SERVING; returns the bound port (useful with port 0)."""
        self.port = self.server.add_insecure_port(self._address)
        await self.server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc.started", address=self._address, port=self.port)
        return self.port

    async def stop(self) -> None:
        """Report NOT_SERVING, run the shutdown callbacks, refuse new calls and let in-flight
        calls finish within the grace."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        for callback in self._shutdown_callbacks:
            try:
                async with asyncio.timeout(self._grace):
                    await callback()
            except Exception:
                log.exception("grpc.shutdown_callback_failed", callback=repr(callback))
        await self.server.stop(self._grace)
        log.info("grpc.stopped")

    async def serve_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then shut down gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()
