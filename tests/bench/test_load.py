"""Open-loop load: an overloaded level ends, and what it could not answer counts as errors."""

from __future__ import annotations

import asyncio
import time

import httpx

from scripts.bench.load import CUT_OFF, open_loop


async def test_requests_unanswered_after_the_grace_period_are_cut_off_as_errors() -> None:
    async def answer(index: int) -> httpx.Response:
        # Every other request hangs, as on a server that has fallen far behind.
        await asyncio.sleep(0.01 if index % 2 else 60)
        return httpx.Response(200)

    began = time.perf_counter()
    samples = await open_loop(20, 0.5, answer, grace_s=0.3)

    assert time.perf_counter() - began < 2
    assert len(samples.statuses) == 10
    assert samples.statuses.count(CUT_OFF) == 5
    assert samples.statuses.count(200) == 5
    # The generator kept to its schedule, and says how late it was.
    assert len(samples.lags_s) == 10
    assert max(samples.lags_s) < 0.1
