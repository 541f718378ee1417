"""Load shapes shared by the benchmarks.

Open loop: requests start on a fixed schedule whether or not earlier ones finished, so a
slow server cannot hide its queueing (no coordinated omission). How late each request left
against its schedule is kept too (`lags_s`): a load generator starved of CPU offers less
than its nominal rate, and a level it fell behind on says so. Closed loop: N workers each
send their next request when the previous one answered (for work that is slow by design).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

Request = Callable[[int], Awaitable[httpx.Response]]
# Status recorded for a request cut off unanswered (open loop with a grace period).
CUT_OFF = 598


@dataclass
class Samples:
    latencies_s: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    seconds: float = 0.0
    # Open loop only: seconds between each request's scheduled and actual departure.
    lags_s: list[float] = field(default_factory=list)

    async def time(
        self, request: Awaitable[httpx.Response], scheduled: float | None = None
    ) -> None:
        started = time.perf_counter()
        if scheduled is not None:
            self.lags_s.append(max(0.0, started - scheduled))
        try:
            status = (await request).status_code
        except httpx.HTTPError:
            status = 599  # transport failure: counted as an error, not dropped
        except asyncio.CancelledError:
            # Cut off: an error, with the time it had waited so far (a lower bound).
            self.latencies_s.append(time.perf_counter() - started)
            self.statuses.append(CUT_OFF)
            raise
        self.latencies_s.append(time.perf_counter() - started)
        self.statuses.append(status)


async def open_loop(
    rate: float, seconds: float, request: Request, grace_s: float | None = None
) -> Samples:
    """`rate` requests a second for `seconds`. With `grace_s`, requests still unanswered
    that long after the schedule ends are cut off and recorded as errors (`CUT_OFF`), so
    an overloaded level ends instead of queueing for minutes."""
    samples = Samples()
    interval = 1.0 / rate
    tasks = []
    began = time.perf_counter()
    for index in range(int(rate * seconds)):
        scheduled = began + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(samples.time(request(index), scheduled)))
    if grace_s is None or not tasks:
        await asyncio.gather(*tasks)
    else:
        _, unanswered = await asyncio.wait(tasks, timeout=grace_s)
        for task in unanswered:
            task.cancel()
        await asyncio.gather(*unanswered, return_exceptions=True)
    samples.seconds = time.perf_counter() - began
    return samples


async def closed_loop(count: int, concurrency: int, request: Request) -> Samples:
    samples = Samples()
    numbers = iter(range(count))

    async def worker() -> None:
        for index in numbers:
            await samples.time(request(index))

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.seconds = time.perf_counter() - began
    return samples
