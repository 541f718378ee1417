"""Home-feed pages without the database: what Redis keeps so that a feed database outage
(or a database too slow to answer) costs readers freshness, not their feed.

A page needs three things. Which posts, in which order: the viewer's cached feed (cache.py)
is in Redis already. Who must not be shown: blocks and mutes are graph's read model in
Redis (posts/audience.py). What each post says: the post cards (posts/cards.py), which the
normal read path keeps in Redis anyway so that it does not ask the database; a degraded
read takes a card whatever its age, with the viewer's own like/share state where their
engagement entry knows it (posts/engagement.py), else not liked. The page says it is
`degraded`.

Correctness. A degraded page filters exactly like a normal one: exclusions (if graph's
read model and graph both cannot answer, the read fails rather than show a blocked
author), removed and shadow-banned cards, and deleted posts, whose cards say they are gone;
a moderation outcome drops a card's bytes, so a hidden post is not shown from Redis either.

When. A home read gives the database one budget (connect, pool wait and queries together,
capped by the call's own deadline); a connection failure, a database refusing connections,
an overloaded or cancelled query, or the budget running out makes the read answer from
Redis instead, counted in `zap_feed_degraded_reads_total`. After a failure the process skips
the database for a moment (one read probes it again), so an outage costs each read a Redis
round trip, not a wait. A viewer with no cached feed cannot be served: UNAVAILABLE
(`feed-unavailable`), which the gateway turns into a 503 problem.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter

from zapcore.db import database_unavailable
from zapcore.errors import Unavailable
from zapcore.logging import get_logger

log = get_logger(__name__)

DEGRADED_READS = Counter(
    "zap_feed_degraded_reads_total",
    "Home-feed reads the database could not serve: answered from the cache (served) or "
    "refused because nothing was cached for the viewer (unavailable).",
    ["outcome"],
)


class DatabaseUnavailable(Exception):
    """The feed database did not answer a read in time (see `database_unavailable`)."""


def feed_unavailable(retry_after_seconds: float) -> Unavailable:
    return Unavailable(
        "your feed cannot be loaded right now; try again shortly",
        reason="feed-unavailable",
        title="Feed unavailable",
        retry_after_seconds=max(1, round(retry_after_seconds)),
    )


class DatabaseCircuit:
    """After a failed read, later reads skip the database for `retry_seconds`; then one read
    probes it while the others keep answering from the cache, until one succeeds."""

    def __init__(self, retry_seconds: float) -> None:
        self._retry_seconds = retry_seconds
        self._failing = False
        self._retry_at = 0.0

    def allows(self) -> bool:
        now = time.monotonic()
        if now < self._retry_at:
            return False
        if self._failing:
            self._retry_at = now + self._retry_seconds  # this read is the probe
        return True

    def failed(self) -> None:
        self._failing = True
        self._retry_at = time.monotonic() + self._retry_seconds

    def succeeded(self) -> None:
        self._failing = False
        self._retry_at = 0.0


class DatabaseBudget:
    """One read's use of the database: allowed by the circuit, bounded by one deadline for
    all its queries, and given up at the first failure (the rest comes from the cache)."""

    def __init__(self, circuit: DatabaseCircuit, seconds: float) -> None:
        self._circuit = circuit
        self._deadline = asyncio.get_running_loop().time() + seconds
        self.usable = circuit.allows()
        self._used = False

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Wrap database work: an unavailable database raises DatabaseUnavailable."""
        try:
            async with asyncio.timeout_at(self._deadline):
                yield
        except Exception as error:
            if not database_unavailable(error):
                raise
            self.usable = False
            self._circuit.failed()
            log.warning("feed.database_unavailable", error=repr(error)[:300])
            raise DatabaseUnavailable from error
        self._used = True

    def done(self) -> None:
        """The read finished without a database failure."""
        if self.usable and self._used:
            self._circuit.succeeded()
