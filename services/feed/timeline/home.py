"""The home feed read path: cache first, database when cold, pulled authors merged in.

Pages follow a (score, post id) bound in the viewer's cached feed (see cache.py for why
that neither skips nor repeats). The recent posts of the above-threshold authors a viewer
follows are scored and merged into their cached feed at most once a minute, on a first
page; while the viewer is paging, merging only adds new posts and never moves old ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from services.feed.posts.audience import exclusions_for
from services.feed.posts.reading import Page, Reading
from services.feed.posts.repository import ViewedPost
from services.feed.resources import FeedResources
from services.feed.timeline import ranking
from services.feed.timeline.cache import Entry, feed_key
from services.feed.timeline.repository import FeedRepository
from zap.graph.v1 import graph_pb2
from zapcore.pagination import expired_cursor, invalid_cursor, page_limit

# Hidden entries (blocked, muted, removed) are skipped; at most this many chunks per page.
_MAX_CHUNKS = 4
PULL_REFRESH_SECONDS = 60


class HomeFeed:
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources

    async def read(
        self, viewer_id: uuid.UUID, cursor: str, limit: int
    ) -> Page[tuple[ViewedPost, float]]:
        size = page_limit(limit)
        exclusions_task = asyncio.create_task(exclusions_for(self._r.graph, viewer_id))
        try:
            if cursor:
                started, epoch, after = self._decode(cursor)
                key = await self._r.cache.source(viewer_id, epoch)
                if key is None:
                    raise expired_cursor()
            else:
                started, after = int(time.time()), None
                await self._prepare(viewer_id)
                epoch, key = await self._r.cache.epoch(viewer_id), feed_key(viewer_id)
            exclusions = await exclusions_task
        finally:
            if not exclusions_task.done():
                exclusions_task.cancel()

        reading = Reading(self._r)
        shown: list[tuple[ViewedPost, float]] = []
        exhausted = False
        for _ in range(_MAX_CHUNKS):
            wanted = size - len(shown)
            entries = await self._r.cache.page(key, after, wanted)
            exhausted = len(entries) < wanted
            if not entries:
                break
            visible = {
                v.post.id: v
                for v in await reading.hydrate([pid for pid, _ in entries], viewer_id, exclusions)
            }
            after = (entries[-1][0], entries[-1][1])
            shown.extend((visible[pid], score) for pid, score in entries if pid in visible)
            if len(shown) == size or exhausted:
                break
        if exhausted or after is None:
            return Page(shown, "")
        await self._r.cache.mark_paging(viewer_id)
        post_id, score = after
        next_cursor = self._r.cursors.encode(
            {"k": "home", "t": started, "e": epoch, "s": score, "i": str(post_id)}
        )
        return Page(shown, next_cursor)

    def _decode(self, cursor: str) -> tuple[int, int, Entry]:
        position = self._r.cursors.decode(cursor)
        try:
            if position["k"] != "home":
                raise invalid_cursor()
            started, epoch = int(position["t"]), int(position["e"])
            after = (uuid.UUID(position["i"]), float(position["s"]))
        except (KeyError, TypeError, ValueError):
            raise invalid_cursor() from None
        if time.time() - started > self._r.settings.paging_ttl_seconds:
            raise expired_cursor()
        return started, epoch, after

    async def _prepare(self, viewer_id: uuid.UUID) -> None:
        """Make sure the cached feed exists, and merge pulled authors in when due."""
        if not await self._r.cache.touch(viewer_id):
            await self.rebuild(viewer_id)
        if await self._r.cache.claim_pull_refresh(viewer_id, PULL_REFRESH_SECONDS):
            pulled = await self._pulled(viewer_id)
            paging = await self._r.cache.is_paging(viewer_id)
            await self._r.cache.fill(viewer_id, pulled, replace=not paging)

    async def rebuild(self, viewer_id: uuid.UUID) -> None:
        """A returning user's cache, from their materialised feed in the database."""
        await self._r.cache.begin_rebuild(viewer_id)
        async with self._r.db.read_only() as session:
            top = await FeedRepository(session).top(viewer_id, self._r.settings.cache_size)
        await self._r.cache.fill(viewer_id, top)

    async def _pulled(self, viewer_id: uuid.UUID) -> list[Entry]:
        """Recent posts of the followed authors whose posts are not pushed, scored now."""
        answer = await self._r.graph.ListPulledFollowees(
            graph_pb2.ListPulledFolloweesRequest(user_id=str(viewer_id))
        )
        authors = [uuid.UUID(a) for a in answer.user_ids]
        if not authors:
            return []
        now = datetime.now(UTC)
        since = now - timedelta(hours=self._r.settings.pull_window_hours)
        async with self._r.db.read_only() as session:
            repository = FeedRepository(session)
            posts = await repository.recent_posts_of(
                authors, since, self._r.settings.pull_max_posts
            )
            affinity = await repository.affinities(viewer_id, authors)
        return [
            (
                post.id,
                ranking.score(
                    likes=post.like_count,
                    comments=post.comment_count,
                    shares=post.share_count,
                    created_at=post.created_at,
                    now=now,
                    affinity_value=affinity.get(post.author_id, 1.0),
                    moderation_score=post.moderation_score,
                ),
            )
            for post in posts
        ]
