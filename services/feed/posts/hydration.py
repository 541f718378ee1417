"""Posts for a viewer, by id: the post cards and the viewer's own state from Redis in one
round trip (cards.py, engagement.py), the database only for what Redis does not know — a
post read for the first time in a while, a post older than the viewer's entry covers, or a
viewer with no entry — and what the database answered is offered back to the cards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.feed.posts.audience import NOBODY, Audience, Exclusions
from services.feed.posts.cards import Offer, PostCards, Recalled
from services.feed.posts.converters import post_to_proto
from services.feed.posts.engagement import NOTHING, Engagement, Known, unix
from services.feed.posts.repository import PostReads
from zap.common.v1 import common_pb2
from zap.feed.v1 import feed_pb2
from zapcore.db import Database
from zapcore.redis import Batch

# Wraps the database part of a read (the home feed gives it a budget and a circuit).
Guard = Callable[[], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _unguarded() -> AsyncIterator[None]:
    yield


@dataclass
class Hydrated:
    """The posts that exist, by id, and the moderation scores of the scored ones (the
    ranking's trust factor, for the home feed's read-time re-rank); the viewer's exclusions
    when the read was asked to bring them."""

    posts: dict[uuid.UUID, feed_pb2.Post]
    moderation: dict[uuid.UUID, float]
    exclusions: Exclusions = NOBODY


@dataclass
class Cached:
    """A read from Redis alone (the database down): what it found, however old."""

    posts: dict[uuid.UUID, feed_pb2.Post]
    found: int  # posts Redis knew anything about, hidden or gone ones included


class Hydration:
    def __init__(
        self, db: Database, redis: Redis, cards: PostCards, engagement: Engagement
    ) -> None:
        self._db = db
        self._redis = redis
        self._cards = cards
        self._engagement = engagement

    async def posts(
        self,
        post_ids: Sequence[uuid.UUID],
        viewer_id: uuid.UUID | None,
        *,
        guard: Guard = _unguarded,
        audience: Audience | None = None,
    ) -> Hydrated:
        """The posts that exist (deleted ones left out), each with the viewer's own state;
        whom they may be shown to is the caller's filter (`shows`), with the exclusions
        read in the same round trip when `audience` is given."""
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return Hydrated({}, {})  # nothing to filter: no exclusions needed
        recalled, known, exclusions = await self._recall(ids, viewer_id, audience)
        found, moderation = recalled.cards, recalled.moderation
        ask = list(recalled.unknown)
        fill = viewer_id is not None and known.since is None
        if ask or fill:
            async with guard(), self._db.driver_reads() as connection:
                if viewer_id is not None and fill:
                    known = await self._engagement.fill(connection, viewer_id, known)
                if viewer_id is not None:
                    # Cards of posts older than the viewer's entry covers: their state is
                    # the database's to say.
                    ask += [
                        p for p, post in found.items() if not known.covers(unix(post.created_at))
                    ]
                rows = await PostReads(connection).viewed(ask, viewer_id) if ask else {}
            offers = []
            for post_id in ask:
                row = rows.get(post_id)
                found.pop(post_id, None)
                if row is None:
                    continue
                if row.post.deleted_at is not None:
                    offers.append(Offer(post_id, row.post.version, None))
                    continue
                post = post_to_proto(row)
                score = row.post.moderation_score
                offers.append(Offer(post_id, row.post.version, post, score))
                found[post_id] = post
                if score is None:
                    moderation.pop(post_id, None)
                else:
                    moderation[post_id] = score
            await self._cards.after_change(offers)
            asked = set(ask)
        else:
            asked = set()
        for post_id, post in found.items():
            if post_id not in asked:
                post.liked_by_viewer = post_id in known.liked
                post.shared_by_viewer = post_id in known.shared
        return Hydrated({p: found[p] for p in ids if p in found}, moderation, exclusions)

    async def cached(self, post_ids: Sequence[uuid.UUID], viewer_id: uuid.UUID | None) -> Cached:
        """The same from Redis alone, for a read the database cannot serve: cards whatever
        their age, and the viewer's state where their entry knows it (else not liked)."""
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return Cached({}, 0)
        recalled, known, _ = await self._recall(ids, viewer_id)
        posts = {**recalled.stale, **recalled.cards}
        for post_id, post in posts.items():
            post.liked_by_viewer = post_id in known.liked
            post.shared_by_viewer = post_id in known.shared
        return Cached(posts, len(posts) + len(recalled.gone))

    async def _recall(
        self, ids: list[uuid.UUID], viewer_id: uuid.UUID | None, audience: Audience | None = None
    ) -> tuple[Recalled, Known, Exclusions]:
        batch = Batch()
        cards = self._cards.queue_recall(batch, ids)
        excluded = None
        if viewer_id is not None:
            state = self._engagement.queue_read(batch, viewer_id, ids)
            if audience is not None:
                excluded = audience.queue(batch, viewer_id)
        try:
            replies = await batch.run(self._redis)
        except RedisError:
            # Redis cannot answer: everything is the database's (and graph's) to say.
            exclusions = await audience.exclusions(viewer_id) if audience else NOBODY
            return Recalled(unknown=list(ids)), NOTHING, exclusions
        recalled = self._cards.recalled(ids, replies[cards])
        if viewer_id is None:
            return recalled, NOTHING, NOBODY
        exclusions = NOBODY
        if audience is not None and excluded is not None:
            exclusions = await audience.settle(viewer_id, replies[excluded])
        return recalled, self._engagement.known(ids, replies[state]), exclusions


def shows(
    post: feed_pb2.Post, viewer_id: uuid.UUID | None, exclusions: Exclusions, *, direct: bool
) -> bool:
    """Removed content is gone for everyone, shadow-banned content is for its author, and a
    block either way hides everything; lists (not `direct` reads by link) also leave out
    muted authors."""
    if post.visibility == common_pb2.VISIBILITY_REMOVED:
        return False
    author = uuid.UUID(post.author_id)
    if author == viewer_id:
        return True
    if post.visibility == common_pb2.VISIBILITY_SHADOW_BANNED:
        return False
    return not (exclusions.blocks(author) if direct else exclusions.hides(author))
