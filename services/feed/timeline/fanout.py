"""Push fanout: a post into the materialised feed of every follower, in idempotent batches.

Runs in the feed worker (arq, at least once). Each batch is one INSERT ... ON CONFLICT and
one pipelined round of cache pushes, and records how far it got, so a job that dies
half-way resumes after the last finished batch and a duplicated job writes nothing twice.
Authors above the fanout threshold are not pushed at all: readers pull their posts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from services.feed.models import Post
from services.feed.posts.repository import REMOVED, PostRepository
from services.feed.resources import FeedResources
from services.feed.timeline import ranking
from services.feed.timeline.repository import FeedRepository, Written
from zap.graph.v1 import graph_pb2
from zapcore.logging import get_logger

log = get_logger(__name__)

FEED_ITEMS_WRITTEN = Counter(
    "zap_feed_items_written_total", "Feed items written by push fanout (new rows only)."
)
FANOUT_LAG = Histogram(
    "zap_feed_fanout_lag_seconds",
    "From a post's creation to the end of its fanout.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
FANOUT_BATCH_SECONDS = Histogram(
    "zap_feed_fanout_batch_seconds", "Time to insert one batch of feed items into the database."
)


def _new(rows: list[Written]) -> int:
    return sum(1 for row in rows if row.inserted)


class Fanout:
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources

    async def run(self, post_id: uuid.UUID) -> int:
        """Fan one post out; returns the number of feed items newly written."""
        async with self._r.db.read_only() as session:
            post = await PostRepository(session).get(post_id)
            owed = await FeedRepository(session).outbox_entry(post_id)
        if post is None or owed is None or owed.done_at is not None:
            return 0
        if post.deleted_at is not None or post.visibility == REMOVED:
            await self._finish(post)
            return 0
        # Scored as of the post's creation: every run of the job computes the same score, and
        # queue lag does not sink a post. Decay with age comes from the 15-minute rescoring,
        # which evaluates every recent item at one common time.
        base = ranking.engagement_score(
            post.like_count, post.comment_count, post.share_count, post.created_at, post.created_at
        ) * ranking.trust_factor(post.moderation_score)

        written = 0
        if owed.resume_after is None:
            # Authors see their own posts at once, whatever their follower count.
            rows = await self._insert(post, [post.author_id], base, confirmed=None)
            await self._push(post, rows)
            written += _new(rows)
        if not await self._is_pulled(post.author_id):
            written += await self._followers(post, base, owed.resume_after)
        await self._finish(post)
        FANOUT_LAG.observe((datetime.now(UTC) - post.created_at).total_seconds())
        log.info("feed.fanout_done", post_id=str(post.id), written=written)
        return written

    async def _followers(self, post: Post, base: float, resume_after: uuid.UUID | None) -> int:
        """Batch k is pushed to Redis while batch k+1 is inserted. The recorded progress only
        ever names a batch whose push has finished, so a re-run never leaves a cache short."""
        stream = self._r.graph.StreamFollowers(
            graph_pb2.StreamFollowersRequest(
                user_id=str(post.author_id),
                after_user_id=str(resume_after or ""),
                batch_size=self._r.settings.fanout_batch_size,
            ),
            timeout=3600,
        )
        written = 0
        confirmed: uuid.UUID | None = None
        pushing: tuple[asyncio.Task[None], uuid.UUID] | None = None
        try:
            async for batch in stream:
                followers = [uuid.UUID(u) for u in batch.follower_ids]
                if not followers:
                    continue
                rows = await self._insert(post, followers, base, confirmed=confirmed)
                written += _new(rows)
                if pushing is not None:
                    await pushing[0]
                    confirmed = pushing[1]
                pushing = (asyncio.create_task(self._push(post, rows)), followers[-1])
            if pushing is not None:
                await pushing[0]
        finally:
            if pushing is not None and not pushing[0].done():
                pushing[0].cancel()
        return written

    async def _is_pulled(self, author_id: uuid.UUID) -> bool:
        answer = await self._r.graph.GetCounts(
            graph_pb2.GetCountsRequest(user_ids=[str(author_id)])
        )
        return bool(answer.counts and answer.counts[0].pulled)

    async def _insert(
        self, post: Post, user_ids: list[uuid.UUID], base: float, *, confirmed: uuid.UUID | None
    ) -> list[Written]:
        started = time.perf_counter()
        async with self._r.db.unit_of_work() as session:
            store = FeedRepository(session)
            rows = await store.fan_out(post, user_ids, base)
            if confirmed is not None:
                await store.fanout_progress(post.id, confirmed)
        FEED_ITEMS_WRITTEN.inc(_new(rows))
        FANOUT_BATCH_SECONDS.observe(time.perf_counter() - started)
        return rows

    async def _push(self, post: Post, rows: list[Written]) -> None:
        await self._r.cache.push((row.user_id, post.id, row.score) for row in rows)

    async def _finish(self, post: Post) -> None:
        async with self._r.db.unit_of_work() as session:
            await FeedRepository(session).fanout_done(post.id, datetime.now(UTC))
