"""Edge middleware (pure ASGI, so it costs little per request).

For every HTTP request and WebSocket: continue or start the W3C trace (one span per
request or socket, recorded when telemetry is on) and echo it as a `traceparent` response
header; resolve the client address; bind the anonymous caller identity; accept paths with
or without their trailing slash; cap the body size; log one JSON line and record latency
by route template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException

from gateway.client_ip import resolve_client_ip
from gateway.problems import Problem, render
from gateway.settings import GatewaySettings
from zapcore.identity import Identity, set_current_identity
from zapcore.logging import get_logger
from zapcore.metrics import LATENCY_BUCKETS
from zapcore.telemetry import Span, SpanKind, start_span
from zapcore.tracing import parse_traceparent, set_current_trace

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = get_logger("gateway.http")
_stdlib_log = logging.getLogger("gateway.http")

HTTP_LATENCY = Histogram(
    "zap_http_request_duration_seconds",
    "Time to answer an HTTP request at the gateway, by route template.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "zap_http_requests_total",
    "HTTP requests answered by the gateway.",
    ["method", "route", "status"],
)

_SLASHED_PREFIXES = ("/api/", "/ws/")


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body-too-large",
            "Request body too large",
            f"the body must be at most {limit} bytes",
        )


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self._max_body = settings.max_body_bytes
        self._proxies = settings.proxy_networks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        forwarded, traceparent, declared = _edge_headers(scope["headers"])
        peer = (scope.get("client") or ("0.0.0.0", 0))[0]
        client_ip = resolve_client_ip(peer, forwarded, self._proxies)
        websocket = scope["type"] == "websocket"
        method = "WS" if websocket else str(scope.get("method", ""))
        # Named by route template once routed; "GET" alone until then (paths carry ids).
        request_span = start_span(
            method,
            kind=SpanKind.SERVER,
            parent=parse_traceparent(traceparent),
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "client.address": client_ip,
            },
        )
        set_current_trace(request_span.trace)
        set_current_identity(Identity(service="gateway", client_ip=client_ip))
        path: str = scope["path"]
        if path.startswith(_SLASHED_PREFIXES) and not path.endswith("/"):
            scope = {**scope, "path": path + "/"}
        scope.setdefault("state", {})["client_ip"] = client_ip
        if websocket:
            try:
                await self.app(scope, receive, send)
            finally:
                _name_span(request_span, scope, method)
                request_span.end()
            return
        await self._http(scope, receive, send, declared, request_span)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, declared: str | None, span: Span
    ) -> None:
        traceparent = span.trace.traceparent
        started = time.perf_counter()
        status = 500
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            response = render(BodyTooLarge(self._max_body), scope["path"])
            response.headers["traceparent"] = traceparent
            await response(scope, receive, send)
            self._observe(scope, 413, started, span)
            return

        received = 0
        limit = self._max_body

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI turns any other error raised while it reads the body into a
                    # 400; an HTTPException reaches the problem renderer as it is.
                    raise HTTPException(413, BodyTooLarge(limit).detail)
            return message

        status_sent = False

        async def send_with_trace(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"traceparent", traceparent.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_trace)
        except Exception:
            # Starlette's last-resort handler answers outside this middleware, without the
            # trace header; answer here instead, in the standard shape, if nothing was sent.
            log.exception("http.unhandled_error", path=scope["path"])
            if status_sent:
                raise
            status = 500
            response = render(
                Problem(500, "internal", "Internal error", "the server failed; try again"),
                scope["path"],
            )
            response.headers["traceparent"] = traceparent
            await response(scope, receive, send)
        finally:
            self._observe(scope, status, started, span)

    @staticmethod
    def _observe(scope: Scope, status: int, started: float, span: Span) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        _name_span(span, scope, method)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.fail(str(status))
        span.end()
        latency, requests = _series(method, template, status)
        latency.observe(elapsed)
        requests.inc()
        if _stdlib_log.isEnabledFor(logging.INFO):
            # Production and the benchmarks leave info out: then not even the event is built.
            log.info(
                "http.request",
                method=method,
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


# (method, route template, status) -> its latency and count series, looked up by label once.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, template: str, status: int) -> tuple[Any, Any]:
    found = _SERIES.get((method, template, status))
    if found is None:
        labels = (method, template, str(status))
        found = _SERIES[method, template, status] = (
            HTTP_LATENCY.labels(*labels),
            HTTP_REQUESTS.labels(*labels),
        )
    return found


def _edge_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, str | None]:
    """X-Forwarded-For, traceparent and Content-Length (the last of each, as a dict would keep),
    without decoding every other header of every request."""
    forwarded = traceparent = length = None
    for key, value in headers:
        if key == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
        elif key == b"traceparent":
            traceparent = value.decode("latin-1")
        elif key == b"content-length":
            length = value.decode("latin-1")
    return forwarded, traceparent, length


def _name_span(span: Span, scope: Scope, method: str) -> None:
    template = getattr(scope.get("route"), "path", None)
    if template:
        span.set_name(f"{method} {template}")
        span.set_attribute("http.route", template)
