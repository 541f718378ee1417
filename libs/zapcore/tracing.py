"""W3C trace context: accept a `traceparent` or start one, and keep it for this task."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

TRACEPARENT_METADATA_KEY = "traceparent"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """The same trace with a new span id, for the next hop."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)


_current: ContextVar[TraceContext | None] = ContextVar("zap_trace", default=None)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """A valid version-00 traceparent, or None (invalid ones are replaced, per the spec)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def new_trace() -> TraceContext:
    """A fresh, sampled trace."""
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def continue_or_start(value: str | None) -> TraceContext:
    """Continue the caller's trace with a new span, or start a new trace."""
    parent = parse_traceparent(value)
    return parent.child() if parent is not None else new_trace()


def current_trace() -> TraceContext | None:
    return _current.get()


def set_current_trace(trace: TraceContext | None) -> None:
    _current.set(trace)
