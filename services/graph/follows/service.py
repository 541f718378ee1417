"""Reading the follow graph: follower lists, counts, the fanout stream and pulled authors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.graph.follows import keyset
from services.graph.follows.repository import CountRepository, Edge, FollowRepository
from services.graph.relationships.rules import check_batch
from zapcore.errors import InvalidArgument
from zapcore.pagination import CursorCodec, page_limit

DEFAULT_STREAM_BATCH = 1000
MAX_STREAM_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Counts:
    user_id: uuid.UUID
    followers: int
    following: int
    # At or above the fanout threshold: the author's posts are pulled at read time.
    pulled: bool


@dataclass(frozen=True, slots=True)
class EdgePage:
    edges: list[Edge]
    # Empty when this is the last page.
    next_cursor: str


def stream_batch_size(requested: int) -> int:
    """The batch size of a follower stream (0 means the default)."""
    if requested == 0:
        return DEFAULT_STREAM_BATCH
    if not 1 <= requested <= MAX_STREAM_BATCH:
        raise InvalidArgument(
            f"batch_size must be between 1 and {MAX_STREAM_BATCH}",
            fields={"batch_size": f"must be between 1 and {MAX_STREAM_BATCH}"},
        )
    return requested


class FollowService:
    def __init__(self, session: AsyncSession, *, fanout_threshold: int) -> None:
        self._follows = FollowRepository(session)
        self._counts = CountRepository(session)
        self._threshold = fanout_threshold

    async def followers(
        self, user_id: uuid.UUID, cursor: str, limit: int, codec: CursorCodec
    ) -> EdgePage:
        size = page_limit(limit)
        before = keyset.decode(codec, user_id, cursor)
        # One extra row tells whether another page follows, without a count.
        edges = await self._follows.followers(user_id, before=before, limit=size + 1)
        return _page(edges, size, codec, user_id)

    async def following(
        self, user_id: uuid.UUID, cursor: str, limit: int, codec: CursorCodec
    ) -> EdgePage:
        size = page_limit(limit)
        before = keyset.decode(codec, user_id, cursor)
        edges = await self._follows.following(user_id, before=before, limit=size + 1)
        return _page(edges, size, codec, user_id)

    async def counts(self, user_ids: list[uuid.UUID]) -> list[Counts]:
        """Counts in request order; users nobody follows (or unknown ids) count zero."""
        check_batch(user_ids, "user_ids")
        rows = await self._counts.get_many(list(dict.fromkeys(user_ids)))
        answer = []
        for user_id in user_ids:
            row = rows.get(user_id)
            followers, following = (row.followers, row.following) if row else (0, 0)
            answer.append(Counts(user_id, followers, following, followers >= self._threshold))
        return answer

    async def follower_batch(
        self, user_id: uuid.UUID, after: uuid.UUID | None, size: int
    ) -> list[uuid.UUID]:
        return await self._follows.follower_ids_after(user_id, after, size)

    async def pulled_followees(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        return await self._follows.followees_with_followers(user_id, self._threshold)

    async def all_followers(self, user_id: uuid.UUID) -> list[Edge]:
        return await self._follows.followers(user_id)

    async def all_following(self, user_id: uuid.UUID) -> list[Edge]:
        return await self._follows.following(user_id)


def _page(edges: list[Edge], size: int, codec: CursorCodec, owner: uuid.UUID) -> EdgePage:
    if len(edges) <= size:
        return EdgePage(edges, "")
    shown = edges[:size]
    return EdgePage(shown, keyset.encode(codec, owner, shown[-1]))
