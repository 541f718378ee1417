"""Waiting for asynchronous effects (fanout, events) without timing assertions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Call `probe` until `accept` holds for its answer; fail with the last answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer = await probe()
        if accept(answer):
            return answer
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last: {answer!r}")
        await asyncio.sleep(interval)
