"""Home-feed pages without the database: what Redis keeps so that a feed database outage
(or a database too slow to answer) costs readers freshness, not their feed.

A page needs three things. Which posts, in which order: the viewer's cached feed (cache.py)
is in Redis already. Who must not be shown: blocks and mutes come from graph, whose database
is not ours. What each post says: the post rows, which only the feed database has; for them
this module keeps a *post view* in Redis, the serialized `zap.feed.v1.Post` as a page shows
it, minus the viewer's own like/share state:

  zap:feed:post:{<post id>}        the Post bytes, expiring a day after they were last written
  zap:feed:post:{<post id>}:gone   set for a day and an hour when the post was taken away

Why one view per post rather than a rendered snapshot of each viewer's first page. A view
is ~400 bytes serialized, ~630 bytes of Redis memory with its key. At 10M daily users a
snapshot per viewer is ~20 x 400 bytes = ~8 KB written on every first page and held per
viewer: ~80 GB for a day's readers, mostly copies of the same popular posts. Views are
shared by every reader of a post, so memory follows the distinct posts read in the last day
(a few million: a few GB, bounded by the TTL), any page of a feed can be served (a cursor
keeps working while the database is down), and the order stays the cached ranking. The
price: counters may be minutes old, and the viewer's like/share state is unknown (false) in
a degraded page, which says so (`degraded`).

Cost on the normal read path: nothing is awaited. After a page is assembled its views are
handed to a background write (one pipelined round trip of plain SETs) that is skipped when
too many writes are already pending. Each process remembers which posts it wrote in the last
few minutes, so a hot post costs one write per process per period, not one per read: in
steady state most reads write nothing at all.

Correctness. A degraded page filters exactly like a normal one: exclusions from graph (if
graph cannot answer either, the read fails rather than show a blocked author), removed and
shadow-banned views (those are never written), and deleted or moderated posts: deleting a
post or hiding it by moderation drops its view and marks it gone, and the mark outlives any
view a read that raced the change could still write, so nothing can put it back. Account
deletion drops the views of the account's posts (cache.forget).

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
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.feed.posts.audience import Exclusions
from services.feed.timeline.cache import post_gone_key, post_view_key
from zap.common.v1 import common_pb2
from zap.feed.v1 import feed_pb2
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
POST_VIEW_WRITES = Counter(
    "zap_feed_post_view_writes_total",
    "Background writes of post views for degraded reads: written, skipped (too many "
    "pending), failed.",
    ["outcome"],
)

# A gone mark outlives every view written before it: reads that raced the deletion (and
# write their views a moment after it) finish within seconds, not an hour.
_GONE_MARGIN_SECONDS = 3600


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


def shows(view: feed_pb2.Post, viewer_id: uuid.UUID, exclusions: Exclusions) -> bool:
    """The read filter of reading.py, for a cached view (deleted ones are tombstones)."""
    author = uuid.UUID(view.author_id)
    if view.visibility == common_pb2.VISIBILITY_REMOVED:
        return False
    if author == viewer_id:
        return True
    return view.visibility != common_pb2.VISIBILITY_SHADOW_BANNED and not exclusions.hides(author)


class _RecentlyWritten:
    """Post ids this process wrote lately. Every entry lives equally long and is added at the
    end, so the oldest is always first: expiry and the size bound pop from the front."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds = seconds
        self._size = size
        self._until: OrderedDict[str, float] = OrderedDict()

    def claim(self, post_ids: Iterable[str]) -> list[str]:
        """The ids not written lately, now marked as written."""
        now = time.monotonic()
        until = self._until
        while until and next(iter(until.values())) <= now:
            until.popitem(last=False)
        fresh = [p for p in post_ids if p not in until]
        for post_id in fresh:
            until[post_id] = now + self._seconds
        while len(until) > self._size:
            until.popitem(last=False)
        return fresh

    def release(self, post_ids: Iterable[str]) -> None:
        for post_id in post_ids:
            self._until.pop(post_id, None)


class PostViews:
    """Post views in Redis: written behind normal reads, read by degraded ones."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        rewrite_seconds: float,
        memo_size: int,
        max_pending_writes: int,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._written = _RecentlyWritten(rewrite_seconds, memo_size)
        self._max_pending = max_pending_writes
        self._pending: set[asyncio.Task[None]] = set()

    def remember(self, views: Sequence[feed_pb2.Post]) -> None:
        """Write these views in the background (not awaited; best effort)."""
        by_id = {v.id: v for v in views if v.visibility == common_pb2.VISIBILITY_VISIBLE}
        fresh = self._written.claim(by_id)
        if not fresh:
            return
        if len(self._pending) >= self._max_pending:
            self._written.release(fresh)
            POST_VIEW_WRITES.labels("skipped").inc(len(fresh))
            return
        task = asyncio.create_task(self._write([by_id[p] for p in fresh]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, views: list[feed_pb2.Post]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for view in views:
                    if view.liked_by_viewer or view.shared_by_viewer or view.HasField("author"):
                        # The viewer's own state is not the next reader's, and an author's
                        # card is auth's (every read joins it afresh).
                        shared = feed_pb2.Post()
                        shared.CopyFrom(view)
                        shared.liked_by_viewer = shared.shared_by_viewer = False
                        shared.ClearField("author")
                        view = shared
                    pipe.set(post_view_key(view.id), view.SerializeToString(), ex=self._ttl)
                await pipe.execute()
        except RedisError as error:
            self._written.release(v.id for v in views)
            POST_VIEW_WRITES.labels("failed").inc(len(views))
            log.warning("feed.post_views_not_written", error=str(error))
            return
        POST_VIEW_WRITES.labels("written").inc(len(views))

    async def recall(self, post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, feed_pb2.Post]:
        """The cached views of these posts (missing, expired and gone ones left out)."""
        if not post_ids:
            return {}
        # A post's two keys share a slot; different posts do not, hence one MGET per post.
        async with self._redis.pipeline(transaction=False) as pipe:
            for post_id in post_ids:
                pipe.mget(post_view_key(post_id), post_gone_key(post_id))
            answers: list[list[bytes | None]] = await pipe.execute()
        return {
            post_id: feed_pb2.Post.FromString(data)
            for post_id, (data, gone) in zip(post_ids, answers, strict=True)
            if data is not None and gone is None
        }

    async def withdraw(self, post_ids: Sequence[uuid.UUID]) -> None:
        """Posts deleted or hidden by moderation: their views never serve again."""
        self._written.release(str(p) for p in post_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for post_id in post_ids:
                pipe.set(post_gone_key(post_id), 1, ex=self._ttl + _GONE_MARGIN_SECONDS)
                pipe.delete(post_view_key(post_id))
            await pipe.execute()

    async def close(self) -> None:
        """Let pending writes finish (briefly) before the Redis client closes."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)
