"""Background upkeep of materialised feeds: reacting to follows and blocks, rescoring,
and sweeping fanouts that were never queued."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import Histogram

from services.feed.resources import JOB_QUEUE, FeedResources
from services.feed.timeline.repository import FeedRepository
from zap.events.v1 import events_pb2
from zap.graph.v1 import graph_pb2
from zapcore.jobs import enqueue
from zapcore.logging import get_logger

log = get_logger(__name__)

RESCORE_SECONDS = Histogram(
    "zap_feed_rescore_seconds",
    "Duration of one rescoring run over every feed partition.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
)


class GraphEffects:
    """Follow brings a few recent posts in; unfollow and block take them out."""

    def __init__(self, resources: FeedResources) -> None:
        self._r = resources

    async def handle(self, env: events_pb2.Envelope) -> None:
        kind = env.WhichOneof("payload")
        if kind == "followed":
            await self.backfill(
                uuid.UUID(env.followed.follower_id), uuid.UUID(env.followed.followee_id)
            )
        elif kind == "unfollowed":
            await self.remove(
                uuid.UUID(env.unfollowed.follower_id), uuid.UUID(env.unfollowed.followee_id)
            )
        elif kind == "blocked":
            blocker, blocked = uuid.UUID(env.blocked.blocker_id), uuid.UUID(env.blocked.blocked_id)
            await self.remove(blocker, blocked)
            await self.remove(blocked, blocker)

    async def backfill(self, user_id: uuid.UUID, author_id: uuid.UUID) -> None:
        # Pulled authors' posts are merged in at read time; they are never materialised.
        counts = await self._r.graph.GetCounts(
            graph_pb2.GetCountsRequest(user_ids=[str(author_id)])
        )
        if counts.counts and counts.counts[0].pulled:
            return
        async with self._r.db.unit_of_work() as session:
            rows = await FeedRepository(session).backfill(
                user_id, author_id, self._r.settings.backfill_posts, datetime.now(UTC)
            )
        await self._r.cache.push((user_id, post_id, score) for post_id, score in rows)

    async def remove(self, user_id: uuid.UUID, author_id: uuid.UUID) -> None:
        async with self._r.db.unit_of_work() as session:
            post_ids = await FeedRepository(session).remove_author(user_id, author_id)
        await self._r.cache.remove(user_id, post_ids)


async def rescore(resources: FeedResources) -> int:
    """New scores for every feed item of a recent post, partition by partition, and the same
    scores into the cached feeds that hold them (entries are updated, never added)."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    since = now - timedelta(hours=resources.settings.rescore_window_hours)
    async with resources.db.read_only() as session:
        names = await FeedRepository(session).partitions()
    total = 0
    # Between partitions the run pauses in proportion to the work just done, so the reads
    # beside it keep a share of the CPU and the database (every item is still scored at the
    # same `now`; a run over the seed set takes ~37 s of work, well inside 15 minutes).
    duty = resources.settings.rescore_duty_cycle
    for index, name in enumerate(names):
        worked = time.perf_counter()
        async with resources.db.unit_of_work() as session:
            rows = await FeedRepository(session).rescore_partition(name, since, now)
        await resources.cache.rescore(rows)
        total += len(rows)
        if duty < 1 and index < len(names) - 1:
            await asyncio.sleep((time.perf_counter() - worked) * (1 - duty) / duty)
    await resources.cache.forget_inactive()
    RESCORE_SECONDS.observe(time.perf_counter() - started)
    log.info("feed.rescored", items=total, seconds=round(time.perf_counter() - started, 3))
    return total


async def sweep_fanouts(resources: FeedResources) -> int:
    """Queue the fanout of posts whose job was lost (a crash between commit and enqueue)."""
    settings = resources.settings
    now = datetime.now(UTC)
    async with resources.db.unit_of_work() as session:
        store = FeedRepository(session)
        overdue = await store.overdue_fanouts(
            now - timedelta(seconds=settings.sweep_after_seconds), limit=1000
        )
        await store.forget_done_fanouts(now - timedelta(days=1))
    # A new id per sweep window: the lost job's id may still be held by a failed result.
    window = int(now.timestamp()) // settings.sweep_after_seconds
    for post_id in overdue:
        await enqueue(
            resources.jobs,
            "fanout_post",
            str(post_id),
            _job_id=f"fanout:{post_id}:sweep:{window}",
            _queue_name=JOB_QUEUE,
        )
    if overdue:
        log.warning("feed.fanouts_swept", count=len(overdue))
    return len(overdue)
