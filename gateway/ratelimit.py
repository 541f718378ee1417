"""Request rate limits in Redis (the `limits` library, sliding-window counters)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.exceptions import RedisError

from gateway.problems import Problem
from zapcore.logging import get_logger

log = get_logger(__name__)


class RateLimiter:
    def __init__(self, storage: RedisStorage) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, rules: list[RateLimitItem], *identifiers: str) -> None:
        """Count one request against every rule; 429 with Retry-After when one is spent."""
        for rule in rules:
            try:
                allowed = await self._limiter.hit(rule, *identifiers)
                if allowed:
                    continue
                stats = await self._limiter.get_window_stats(rule, *identifiers)
            except (RedisError, OSError):
                # Redis down: serve rather than refuse everyone; /readyz reports the outage.
                log.warning("ratelimit.unavailable")
                return
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                "slow down and retry later",
                headers={"Retry-After": str(retry_after)},
            )


def rules(spec: str) -> list[RateLimitItem]:
    """Parse "600/minute;20/second" into limit items."""
    return list(parse_many(spec))
