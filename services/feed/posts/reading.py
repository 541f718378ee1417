"""Reads: single posts, comments, timelines, explore. Everything is filtered for the viewer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from services.feed.models import Comment
from services.feed.posts.audience import Exclusions
from services.feed.posts.hydration import shows
from services.feed.posts.repository import PostReads, PostRepository, visible_to
from services.feed.posts.trending import Trending
from services.feed.resources import FeedResources
from zap.feed.v1 import feed_pb2
from zapcore.errors import InvalidArgument, NotFound
from zapcore.ids import parse_id, parse_ids
from zapcore.pagination import expired_cursor, invalid_cursor, page_limit

MAX_BATCH = 100


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str = ""
    # Served from the cache because the database could not answer (the home feed only).
    degraded: bool = False


class Reading:
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources

    async def post(
        self, post_id: str, viewer_id: uuid.UUID | None, exclusions: Exclusions | None = None
    ) -> feed_pb2.Post:
        pid = parse_id(post_id, "post_id")
        found = await self.hydrate([pid], viewer_id, exclusions, direct=True)
        if not found:
            raise NotFound("post not found", reason="post-not-found")
        return found[0]

    async def posts(
        self, post_ids: Sequence[str], viewer_id: uuid.UUID | None
    ) -> list[feed_pb2.Post]:
        if len(post_ids) > MAX_BATCH:
            raise InvalidArgument(
                f"at most {MAX_BATCH} ids", fields={"post_ids": f"at most {MAX_BATCH}"}
            )
        ids = parse_ids(list(post_ids), "post_ids")
        return await self.hydrate(ids, viewer_id, direct=True)

    async def hydrate(
        self,
        post_ids: Sequence[uuid.UUID],
        viewer_id: uuid.UUID | None,
        exclusions: Exclusions | None = None,
        *,
        direct: bool = False,
    ) -> list[feed_pb2.Post]:
        """The posts the viewer may see, in the order asked (hydration.py); the viewer's
        exclusions read with the posts unless the caller has them already."""
        audience = self._r.audience if exclusions is None else None
        hydrated = await self._r.hydration.posts(post_ids, viewer_id, audience=audience)
        found = hydrated.posts
        if exclusions is None:
            exclusions = hydrated.exclusions
        return [
            found[pid]
            for pid in post_ids
            if pid in found and shows(found[pid], viewer_id, exclusions, direct=direct)
        ]

    async def user_posts(
        self, user_id: str, viewer_id: uuid.UUID | None, cursor: str, limit: int
    ) -> Page[feed_pb2.Post]:
        author = parse_id(user_id, "user_id")
        size = page_limit(limit)
        before = self._keyset(cursor, "user-posts", author)
        exclusions = await self._r.audience.exclusions(viewer_id)
        if exclusions.blocks(author):
            return Page([])
        async with self._r.db.driver_reads() as connection:
            rows = await PostReads(connection).author_timeline(author, before, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        visible = await self.hydrate([pid for pid, _ in rows], viewer_id, exclusions, direct=True)
        next_cursor = (
            self._next_keyset("user-posts", author, rows[-1][1], rows[-1][0]) if more else ""
        )
        return Page(visible, next_cursor)

    async def hashtag(
        self, hashtag: str, viewer_id: uuid.UUID | None, cursor: str, limit: int
    ) -> Page[feed_pb2.Post]:
        tag = hashtag.strip().removeprefix("#").casefold()
        if not tag or len(tag) > 64:
            raise InvalidArgument("hashtag is not valid", fields={"hashtag": "1 to 64 characters"})
        size = page_limit(limit)
        before = self._keyset(cursor, f"tag:{tag}", None)
        async with self._r.db.read_only() as session:
            rows = await PostRepository(session).hashtag_posts(tag, before, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        visible = await self.hydrate([pid for pid, _ in rows], viewer_id)
        next_cursor = (
            self._next_keyset(f"tag:{tag}", None, rows[-1][1], rows[-1][0]) if more else ""
        )
        return Page(visible, next_cursor)

    async def trending(
        self, viewer_id: uuid.UUID | None, cursor: str, limit: int
    ) -> Page[feed_pb2.Post]:
        """The most engaging recent posts; a cursor pages through one ranked generation."""
        size = page_limit(limit)
        trending = Trending(self._r.redis, self._r.db, self._r.settings.trending_window_hours)
        if cursor:
            position = self._r.cursors.decode(cursor)
            if position.get("k") != "trending":
                raise invalid_cursor()
            generation, offset = str(position.get("g", "")), int(position.get("o", 0))
            ranked = await trending.generation(generation)
            if ranked is None:
                raise expired_cursor()
        else:
            (generation, ranked), offset = await trending.current(), 0
        ids = ranked[offset : offset + size]
        visible = await self.hydrate(ids, viewer_id)
        more = offset + size < len(ranked)
        next_cursor = (
            self._r.cursors.encode({"k": "trending", "g": generation, "o": offset + size})
            if more
            else ""
        )
        return Page(visible, next_cursor)

    async def trending_hashtags(self, limit: int) -> list[tuple[str, int]]:
        since = datetime.now(UTC) - timedelta(hours=self._r.settings.trending_window_hours)
        async with self._r.db.read_only() as session:
            return await PostRepository(session).trending_hashtags(since, page_limit(limit))

    async def comments(
        self, post_id: str, viewer_id: uuid.UUID | None, cursor: str, limit: int
    ) -> Page[Comment]:
        pid = parse_id(post_id, "post_id")
        size = page_limit(limit)
        after = self._keyset(cursor, "comments", pid)
        exclusions = await self._r.audience.exclusions(viewer_id)
        await self.post(post_id, viewer_id, exclusions)  # the post itself must be visible
        async with self._r.db.read_only() as session:
            rows = list(await PostRepository(session).comments(pid, after, size + 1))
        more = len(rows) > size
        rows = rows[:size]
        shown = [
            c
            for c in rows
            if visible_to(c, viewer_id)
            and (c.author_id == viewer_id or not exclusions.hides(c.author_id))
        ]
        next_cursor = (
            self._next_keyset("comments", pid, rows[-1].created_at, rows[-1].id) if more else ""
        )
        return Page(shown, next_cursor)

    # Keyset cursors: (created_at, id) of the last row, bound to the list they came from.

    def _keyset(
        self, cursor: str, kind: str, scope: uuid.UUID | None
    ) -> tuple[datetime, uuid.UUID] | None:
        if not cursor:
            return None
        position: dict[str, Any] = self._r.cursors.decode(cursor)
        if position.get("k") != kind or position.get("s") != (str(scope) if scope else ""):
            raise invalid_cursor()
        try:
            return datetime.fromisoformat(position["t"]), uuid.UUID(position["i"])
        except (KeyError, ValueError, TypeError):
            raise invalid_cursor() from None

    def _next_keyset(
        self, kind: str, scope: uuid.UUID | None, created_at: datetime, row_id: uuid.UUID
    ) -> str:
        return self._r.cursors.encode(
            {
                "k": kind,
                "s": str(scope) if scope else "",
                "t": created_at.isoformat(),
                "i": str(row_id),
            }
        )
