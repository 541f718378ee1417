"""The home feed read path: cache first, database when cold, pulled authors merged in.

Pages follow a (score, post id) bound in the viewer's cached feed (see cache.py for why
that neither skips nor repeats). The recent posts of the above-threshold authors a viewer
follows are scored and merged into their cached feed at most once a minute, on a first
page; while the viewer is paging, merging only adds new posts and never moves old ones.

When the database is down or too slow, a page is assembled from Redis alone and marked
degraded (degraded.py); reading that way never touches the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.feed.posts.audience import Exclusions
from services.feed.posts.hydration import shows
from services.feed.posts.reading import Page
from services.feed.resources import FeedResources
from services.feed.timeline import ranking
from services.feed.timeline.cache import Entry, FeedCache, Opening, feed_key
from services.feed.timeline.degraded import (
    DEGRADED_READS,
    DatabaseBudget,
    DatabaseCircuit,
    DatabaseUnavailable,
    feed_unavailable,
)
from services.feed.timeline.repository import FeedRepository
from zap.feed.v1 import feed_pb2
from zap.graph.v1 import graph_pb2
from zapcore.deadlines import remaining
from zapcore.pagination import expired_cursor, invalid_cursor, page_limit
from zapcore.redis import Batch

# Hidden entries (blocked, muted, removed) are skipped; at most this many chunks per page.
_MAX_CHUNKS = 4
PULL_REFRESH_SECONDS = 60
# Of the call's own time, this much is kept for answering from the cache.
_CACHE_RESERVE_SECONDS = 0.1

# The posts of a chunk of entries the viewer may see, by id (from the database or cache).
Hydrate = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, feed_pb2.Post]]]


@dataclass
class _Collected:
    shown: list[feed_pb2.FeedEntry] = field(default_factory=list)
    # The last cached entry looked at: where the next page starts.
    after: Entry | None = None
    exhausted: bool = False  # the cached feed has nothing after `after`
    seen: int = 0  # cached entries looked at, shown or not


class HomeFeed:
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources
        self._circuit = DatabaseCircuit(resources.settings.home_db_retry_seconds)

    async def read(self, viewer_id: uuid.UUID, cursor: str, limit: int) -> Page[feed_pb2.FeedEntry]:
        size = page_limit(limit)
        # The first chunk of entries when it was read already (a first page's opening).
        first: list[Entry] | None = None
        database = DatabaseBudget(self._circuit, self._budget())
        if cursor:
            started, epoch, start = self._decode(cursor)
            key, exclusions = await self._resume(viewer_id, epoch)
        else:
            started, start, key = int(time.time()), None, feed_key(viewer_id)
            opening, exclusions = await self._open(viewer_id, size)
            epoch, first = opening.epoch, opening.first
            if await self._prepare(viewer_id, opening, database):
                # Rebuilt or merged into: what the opening read is out of date.
                epoch, first = await self._r.cache.epoch(viewer_id), None

        collected: _Collected | None = None
        rerank: _FreshViews | None = None
        if database.usable:
            fresh = _FreshViews(self._r, viewer_id, exclusions, database)
            try:
                collected = await self._collect(key, start, size, fresh, first)
            except DatabaseUnavailable:
                collected = None
            else:
                database.done()
                if start is None and self._r.settings.home_rerank_candidates:
                    rerank = fresh
        degraded = collected is None
        if collected is None:
            cached = _CachedViews(self._r, viewer_id, exclusions)
            collected = await self._collect(key, start, size, cached, first)
            if collected.seen and not cached.found and start is None:
                # The feed has posts but none of them is cached: an empty page would lie.
                DEGRADED_READS.labels("unavailable").inc()
                raise feed_unavailable(self._r.settings.home_db_retry_seconds)
            DEGRADED_READS.labels("served").inc()
        after = collected.after
        more = not (collected.exhausted or after is None)
        shown = await self._finished(viewer_id, collected.shown, rerank, paging=more)
        if not more or after is None:
            return Page(shown, "", degraded=degraded)
        post_id, score = after
        next_cursor = self._r.cursors.encode(
            {"k": "home", "t": started, "e": epoch, "s": score, "i": str(post_id)}
        )
        return Page(shown, next_cursor, degraded=degraded)

    async def _open(self, viewer_id: uuid.UUID, size: int) -> tuple[Opening, Exclusions]:
        """A first page's opening (cache.py) and the viewer's exclusions, in one round trip."""
        batch = Batch()
        opening = self._r.cache.queue_opening(batch, viewer_id, size, PULL_REFRESH_SECONDS)
        excluded = self._r.audience.queue(batch, viewer_id)
        replies = await batch.run(self._r.redis)
        return FeedCache.opened(replies[opening]), await self._r.audience.settle(
            viewer_id, replies[excluded]
        )

    async def _resume(self, viewer_id: uuid.UUID, epoch: int) -> tuple[str, Exclusions]:
        """The key a later page reads and the viewer's exclusions, in one round trip (two
        when the cursor's epoch has passed and its snapshot is looked for)."""
        batch = Batch()
        current = self._r.cache.queue_epoch(batch, viewer_id)
        excluded = self._r.audience.queue(batch, viewer_id)
        replies = await batch.run(self._r.redis)
        key = await self._r.cache.source(viewer_id, epoch, replies[current])
        if key is None:
            raise expired_cursor()
        return key, await self._r.audience.settle(viewer_id, replies[excluded])

    async def _finished(
        self,
        viewer_id: uuid.UUID,
        entries: list[feed_pb2.FeedEntry],
        rerank: _FreshViews | None,
        *,
        paging: bool,
    ) -> list[feed_pb2.FeedEntry]:
        """The page as shown, after one more round trip for what it still needs: the
        authors' cards and the posts' images, the viewer's affinities (for the re-rank), the
        paging mark. An entry whose author's account is gone is left out, so it vanishes
        from every read at once."""
        batch = Batch()
        posts = [entry.post for entry in entries]
        presented = self._r.presentation.queue(batch, posts)
        head = entries[: self._r.settings.home_rerank_candidates] if rerank else []
        head_authors = list({entry.post.author_id for entry in head})
        affinity = (
            self._r.engagement.queue_affinities(batch, viewer_id, head_authors) if head else None
        )
        if paging:
            self._r.cache.queue_mark_paging(batch, viewer_id)
        replies = await batch.run(self._r.redis)
        if rerank is not None and affinity is not None:
            affinities = self._r.engagement.affinities_read(head_authors, replies[affinity])
            if affinities is not None:
                entries = _reranked(entries, head, affinities, rerank.moderation)
        await self._r.presentation.finish(presented, replies, posts)
        return [entry for entry in entries if entry.post.HasField("author")]

    async def _collect(
        self,
        key: str,
        after: Entry | None,
        size: int,
        hydrate: Hydrate,
        first: list[Entry] | None = None,
    ) -> _Collected:
        """Up to `size` visible entries after `after`, a chunk of the cached feed at a time
        (the first chunk given when it was read already)."""
        collected = _Collected()
        for chunk in range(_MAX_CHUNKS):
            wanted = size - len(collected.shown)
            if chunk == 0 and first is not None:
                entries = first
            else:
                entries = await self._r.cache.page(key, after, wanted)
            collected.exhausted = len(entries) < wanted
            if not entries:
                break
            collected.seen += len(entries)
            visible = await hydrate([pid for pid, _ in entries])
            after = collected.after = entries[-1]
            collected.shown.extend(
                feed_pb2.FeedEntry(post=visible[pid], score=score)
                for pid, score in entries
                if pid in visible
            )
            if len(collected.shown) == size or collected.exhausted:
                break
        return collected

    def _budget(self) -> float:
        """The database's share of this read: the setting, within the call's deadline."""
        budget = self._r.settings.home_db_budget_seconds
        return max(0.0, remaining(budget + _CACHE_RESERVE_SECONDS) - _CACHE_RESERVE_SECONDS)

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

    async def _prepare(
        self, viewer_id: uuid.UUID, opening: Opening, database: DatabaseBudget
    ) -> bool:
        """Make sure the cached feed exists, and merge pulled authors in when due; True when
        either changed the feed. Without the database a cached feed is read as it is, and a
        missing one cannot be served."""
        changed = False
        if not opening.built:
            try:
                if not database.usable:
                    raise DatabaseUnavailable
                await self.rebuild(viewer_id, database)
            except DatabaseUnavailable:
                DEGRADED_READS.labels("unavailable").inc()
                raise feed_unavailable(self._r.settings.home_db_retry_seconds) from None
            changed = True
        if opening.pull_due:
            if not database.usable:
                await self._r.cache.release_pull_refresh(viewer_id)  # the next read tries
                return changed
            try:
                pulled = await self._pulled(viewer_id, database)
            except DatabaseUnavailable:
                await self._r.cache.release_pull_refresh(viewer_id)
                return changed
            if pulled:
                paging = await self._r.cache.is_paging(viewer_id)
                await self._r.cache.fill(viewer_id, pulled, replace=not paging)
                changed = True
        return changed

    async def rebuild(self, viewer_id: uuid.UUID, database: DatabaseBudget) -> None:
        """A returning user's cache, from their materialised feed in the database."""
        await self._r.cache.begin_rebuild(viewer_id)
        try:
            async with database.guard(), self._r.db.read_only() as session:
                top = await FeedRepository(session).top(viewer_id, self._r.settings.cache_size)
        except BaseException:
            await self._r.cache.abandon_rebuild(viewer_id)
            raise
        await self._r.cache.fill(viewer_id, top)

    async def _pulled(self, viewer_id: uuid.UUID, database: DatabaseBudget) -> list[Entry]:
        """Recent posts of the followed authors whose posts are not pushed, scored now."""
        answer = await self._r.graph.ListPulledFollowees(
            graph_pb2.ListPulledFolloweesRequest(user_id=str(viewer_id))
        )
        authors = [uuid.UUID(a) for a in answer.user_ids]
        if not authors:
            return []
        now = datetime.now(UTC)
        since = now - timedelta(hours=self._r.settings.pull_window_hours)
        async with database.guard(), self._r.db.read_only() as session:
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


def _reranked(
    entries: list[feed_pb2.FeedEntry],
    head: list[feed_pb2.FeedEntry],
    affinity: dict[str, float],
    moderation: dict[str, float],
) -> list[feed_pb2.FeedEntry]:
    """A first page's top entries (`head`) scored again with the same formula and their
    current counts (the cached scores are as of the last rescoring), and ordered by that.
    Only the shown entries move among themselves, so the next page still starts after the
    last cached entry looked at: paging neither skips nor repeats. Without the viewer's
    affinities in Redis, the cached order stands (the caller does not call this)."""
    now = datetime.now(UTC)
    for entry in head:
        post = entry.post
        entry.score = ranking.score(
            likes=post.like_count,
            comments=post.comment_count,
            shares=post.share_count,
            # fromtimestamp is C; Timestamp.ToDatetime is Python, per entry.
            created_at=datetime.fromtimestamp(post.created_at.seconds, UTC),
            now=now,
            affinity_value=affinity[post.author_id],
            moderation_score=moderation.get(post.id),
        )
    head.sort(key=lambda e: (e.score, e.post.id), reverse=True)
    return head + entries[len(head) :]


class _FreshViews:
    """Hydrates entries through the post cards, asking the database (within the read's
    budget) about what Redis does not know; keeps the posts' moderation scores."""

    def __init__(
        self,
        resources: FeedResources,
        viewer_id: uuid.UUID,
        exclusions: Exclusions,
        database: DatabaseBudget,
    ):
        self._r = resources
        self._viewer_id = viewer_id
        self._exclusions = exclusions
        self._database = database
        # By the post's id as the entries carry it (a string).
        self.moderation: dict[str, float] = {}

    async def __call__(self, post_ids: list[uuid.UUID]) -> dict[uuid.UUID, feed_pb2.Post]:
        found = await self._r.hydration.posts(post_ids, self._viewer_id, guard=self._database.guard)
        self.moderation.update((str(pid), score) for pid, score in found.moderation.items())
        return {
            pid: post
            for pid, post in found.posts.items()
            if shows(post, self._viewer_id, self._exclusions, direct=False)
        }


class _CachedViews:
    """Hydrates entries from Redis alone (the post cards, whatever their age), filtered for
    the viewer; counts how many posts Redis knew at all (hidden or gone ones included)."""

    def __init__(self, resources: FeedResources, viewer_id: uuid.UUID, exclusions: Exclusions):
        self._r = resources
        self._viewer_id = viewer_id
        self._exclusions = exclusions
        self.found = 0

    async def __call__(self, post_ids: list[uuid.UUID]) -> dict[uuid.UUID, feed_pb2.Post]:
        cached = await self._r.hydration.cached(post_ids, self._viewer_id)
        self.found += cached.found
        return {
            pid: post
            for pid, post in cached.posts.items()
            if shows(post, self._viewer_id, self._exclusions, direct=False)
        }
