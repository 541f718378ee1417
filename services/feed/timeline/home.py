"""The home feed read path: cache first, database when cold, pulled authors merged in.

The first page freezes the viewer's ranked feed into a snapshot (the cached entries plus
the recent posts of the above-threshold authors they follow, scored now); later pages read
the same snapshot by offset. Rescoring and new posts therefore never make a page skip or
repeat an entry; a reader sees them on their next first page.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from services.feed.posts.audience import exclusions_for
from services.feed.posts.reading import Page, Reading
from services.feed.posts.repository import ViewedPost
from services.feed.resources import FeedResources
from services.feed.timeline import ranking
from services.feed.timeline.repository import FeedRepository
from zap.graph.v1 import graph_pb2
from zapcore.errors import InvalidArgument
from zapcore.pagination import page_limit

# Hidden entries (blocked, muted, removed) are skipped; at most this many chunks per page.
_MAX_CHUNKS = 4


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
                snapshot_id, offset, total = await self._resume(viewer_id, cursor)
            else:
                snapshot_id, total = await self._snapshot(viewer_id)
                offset = 0
            exclusions = await exclusions_task
        finally:
            if not exclusions_task.done():
                exclusions_task.cancel()

        reading = Reading(self._r)
        shown: list[tuple[ViewedPost, float]] = []
        for _ in range(_MAX_CHUNKS):
            if offset >= total or len(shown) == size:
                break
            entries = await self._r.cache.page(viewer_id, snapshot_id, offset, size - len(shown))
            if not entries:
                offset = total
                break
            visible = {
                v.post.id: v
                for v in await reading.hydrate([pid for pid, _ in entries], viewer_id, exclusions)
            }
            offset += len(entries)
            shown.extend((visible[pid], score) for pid, score in entries if pid in visible)
        next_cursor = (
            self._r.cursors.encode({"k": "home", "s": snapshot_id, "o": offset, "n": total})
            if offset < total
            else ""
        )
        return Page(shown, next_cursor)

    async def _resume(self, viewer_id: uuid.UUID, cursor: str) -> tuple[str, int, int]:
        position = self._r.cursors.decode(cursor)
        try:
            if position["k"] != "home":
                raise KeyError("k")
            snapshot_id, offset, total = str(position["s"]), int(position["o"]), int(position["n"])
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                "cursor is not valid for this list",
                reason="invalid-cursor",
                fields={"cursor": "not a cursor issued for this list"},
            ) from None
        if not await self._r.cache.snapshot_exists(viewer_id, snapshot_id):
            raise InvalidArgument(
                "this feed cursor has expired; start again from the first page",
                reason="cursor-expired",
                fields={"cursor": "expired"},
            )
        return snapshot_id, offset, total

    async def _snapshot(self, viewer_id: uuid.UUID) -> tuple[str, int]:
        if not await self._r.cache.touch(viewer_id):
            await self.rebuild(viewer_id)
        pulled = await self._pulled(viewer_id)
        return await self._r.cache.snapshot(viewer_id, pulled)

    async def rebuild(self, viewer_id: uuid.UUID) -> None:
        """A returning user's cache, from their materialised feed in the database."""
        await self._r.cache.begin_rebuild(viewer_id)
        async with self._r.db.read_only() as session:
            top = await FeedRepository(session).top(viewer_id, self._r.settings.cache_size)
        await self._r.cache.fill(viewer_id, top)

    async def _pulled(self, viewer_id: uuid.UUID) -> list[tuple[uuid.UUID, float]]:
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
            store = FeedRepository(session)
            posts = await store.recent_posts_of(authors, since, self._r.settings.pull_max_posts)
            affinity = await store.affinities(viewer_id, authors)
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
