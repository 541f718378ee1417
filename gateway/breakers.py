"""A circuit breaker per upstream service: when one keeps failing, fail fast.

After `threshold` calls in a row end UNAVAILABLE (without a reason the service gave) or
DEADLINE_EXCEEDED, the upstream's circuit opens and its calls answer 503 at once, with
Retry-After, instead of each one waiting out its deadline (a dead service would otherwise
hold every gateway request that touches it for the whole budget). After `reset_seconds` calls are let through again (half
open): one that succeeds closes the circuit, one that fails opens it for another period.
Any other answer, errors included (NOT_FOUND, INVALID_ARGUMENT...), proves the upstream
alive. The open circuit raises the same AioRpcError a dead service gives, so every caller
keeps handling one kind of failure.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from prometheus_client import Counter, Gauge
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from zapcore.errors import Unavailable
from zapcore.rpc_errors import error_to_status, failure_from_rpc_error

log = structlog.get_logger("gateway.breakers")

_TRIPPING = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_STATES = {"closed": 0, "opened": 1, "half-opened": 2}

CIRCUIT_STATE = Gauge(
    "zap_circuit_breaker_state",
    "Circuit of each upstream at this gateway: 0 closed, 1 open, 2 half open.",
    ["upstream"],
)
CIRCUIT_REJECTED = Counter(
    "zap_circuit_breaker_rejected_total",
    "Calls answered at once because the upstream's circuit was open.",
    ["upstream"],
)


def _proves_alive(error: BaseException) -> bool:
    """Whether a failed call still shows the upstream answering.

    UNAVAILABLE with a ZAP error detail was decided by the service itself (its database is
    down and nothing is cached for this reader, a dependency is down): it answered, and
    other calls (a degraded feed from its cache) may well succeed, so it does not count.
    """
    if not isinstance(error, grpc.aio.AioRpcError):
        return False
    return error.code() not in _TRIPPING or bool(failure_from_rpc_error(error).reason)


def circuit_open_error(upstream: str, retry_after: float) -> grpc.aio.AioRpcError:
    """What a call to an upstream whose circuit is open fails with."""
    status = error_to_status(
        Unavailable(
            f"the {upstream} service is failing; try again shortly",
            reason="upstream-circuit-open",
            retry_after_seconds=max(1, math.ceil(retry_after)),
        )
    )
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
        debug_error_string="",
    )


class Breakers:
    """The gateway's circuits, one per upstream, in this process's memory."""

    def __init__(self, threshold: int, reset_seconds: float) -> None:
        self.reset_seconds = reset_seconds
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=reset_seconds,
            # First match wins: a tripping RPC error counts; nothing else does (a cancelled
            # request or a bug in the gateway says nothing about the upstream).
            exclude=[(grpc.aio.AioRpcError, _proves_alive), BaseException],
        )
        self._factory.add_listener(self._on_event)

    def guard(self, upstream: str) -> Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]:
        """What wraps each call to `upstream` (`open_channel`'s guard)."""
        CIRCUIT_STATE.labels(upstream).set(0)
        return functools.partial(self.call, upstream)

    async def call(self, upstream: str, run: Callable[[], Awaitable[Any]]) -> Any:
        breaker = await self._factory.get_breaker(upstream)
        try:
            async with breaker:
                return await run()
        except OpenedState as opened:
            CIRCUIT_REJECTED.labels(upstream).inc()
            left = opened.opened_at + self.reset_seconds - time.time()
            raise circuit_open_error(upstream, left) from None

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            CIRCUIT_STATE.labels(name).set(_STATES.get(event.state, 0))
            log.warning("upstream.circuit", upstream=name, state=event.state)
