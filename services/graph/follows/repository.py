"""SQL for follower lists, the fanout stream and follower counts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.graph.models import Follow, UserCounts


@dataclass(frozen=True, slots=True)
class Edge:
    """The other end of a follow edge and when it was made."""

    user_id: uuid.UUID
    followed_at: datetime


@dataclass(frozen=True, slots=True)
class CountChange:
    followers: int = 0
    following: int = 0


@dataclass(frozen=True, slots=True)
class CountRow:
    followers: int
    following: int


class FollowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def followers(
        self, user_id: uuid.UUID, *, before: Edge | None = None, limit: int | None = None
    ) -> list[Edge]:
        """Followers of a user, newest first, strictly after the keyset position `before`."""
        query = (
            select(Follow.follower_id, Follow.created_at)
            .where(Follow.followee_id == user_id)
            .order_by(Follow.created_at.desc(), Follow.follower_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(
                tuple_(Follow.created_at, Follow.follower_id) < (before.followed_at, before.user_id)
            )
        result = await self._session.execute(query)
        return [Edge(row.follower_id, row.created_at) for row in result]

    async def following(
        self, user_id: uuid.UUID, *, before: Edge | None = None, limit: int | None = None
    ) -> list[Edge]:
        """Accounts a user follows, newest first, strictly after the keyset position `before`."""
        query = (
            select(Follow.followee_id, Follow.created_at)
            .where(Follow.follower_id == user_id)
            .order_by(Follow.created_at.desc(), Follow.followee_id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(
                tuple_(Follow.created_at, Follow.followee_id) < (before.followed_at, before.user_id)
            )
        result = await self._session.execute(query)
        return [Edge(row.followee_id, row.created_at) for row in result]

    async def follower_ids_after(
        self, user_id: uuid.UUID, after: uuid.UUID | None, limit: int
    ) -> list[uuid.UUID]:
        """Up to `limit` follower ids greater than `after`, in id order (a primary-key range)."""
        query = (
            select(Follow.follower_id)
            .where(Follow.followee_id == user_id)
            .order_by(Follow.follower_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Follow.follower_id > after)
        return list((await self._session.execute(query)).scalars())

    async def followees_with_followers(self, user_id: uuid.UUID, at_least: int) -> list[uuid.UUID]:
        """The accounts a user follows that have at least `at_least` followers."""
        query = (
            select(Follow.followee_id)
            .join(UserCounts, UserCounts.user_id == Follow.followee_id)
            .where(Follow.follower_id == user_id, UserCounts.followers >= at_least)
            .order_by(Follow.followee_id)
        )
        return list((await self._session.execute(query)).scalars())


class CountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def apply(self, changes: Mapping[uuid.UUID, CountChange]) -> None:
        """Add the changes to each user's counts in one statement.

        Rows are locked in user-id order, so two transactions that touch the same two users
        (A follows B while B follows A) take the locks in the same order and cannot
        deadlock. `x = x + delta` under the row lock keeps the counts exact.
        """
        rows = [
            {"user_id": user_id, "followers": change.followers, "following": change.following}
            for user_id, change in sorted(changes.items())
            if change.followers or change.following
        ]
        if not rows:
            return
        statement = insert(UserCounts).values(rows)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[UserCounts.user_id],
                set_={
                    "followers": UserCounts.followers + statement.excluded.followers,
                    "following": UserCounts.following + statement.excluded.following,
                },
            )
        )

    async def get_many(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CountRow]:
        if not user_ids:
            return {}
        result = await self._session.execute(
            select(UserCounts.user_id, UserCounts.followers, UserCounts.following).where(
                UserCounts.user_id.in_(list(user_ids))
            )
        )
        return {row.user_id: CountRow(row.followers, row.following) for row in result}

    async def forget(self, user_id: uuid.UUID) -> None:
        await self._session.execute(delete(UserCounts).where(UserCounts.user_id == user_id))
