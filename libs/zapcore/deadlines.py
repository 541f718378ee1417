"""The deadline of the call being handled, so downstream calls never outlive it."""

from __future__ import annotations

import time
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("zap_deadline", default=None)


def set_deadline(timeout_seconds: float | None) -> None:
    """Bind the current call's deadline, given the time it has left."""
    _deadline.set(None if timeout_seconds is None else time.monotonic() + timeout_seconds)


def remaining(default: float) -> float:
    """Seconds left for a downstream call: the default, capped by the current deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.0, min(default, deadline - time.monotonic()))
