"""SQL for the edges between two users: follows, blocks and mutes, and lookups across them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, delete, func, literal, or_, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.graph.models import Block, Follow, Mute


class Kind(StrEnum):
    """How another user relates to the viewer, one row per fact."""

    FOLLOWING = "following"
    FOLLOWED_BY = "followed_by"
    BLOCKING = "blocking"
    BLOCKED_BY = "blocked_by"
    MUTING = "muting"


class RelationshipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_pair(self, key: int) -> None:
        """Serialise writes on one pair of users until this transaction ends."""
        await self._session.execute(select(func.pg_advisory_xact_lock(key)))

    # --- follows -----------------------------------------------------------------------

    async def add_follow(self, follower_id: uuid.UUID, followee_id: uuid.UUID) -> bool:
        """Insert the edge; True only when it did not exist before."""
        result = await self._session.execute(
            insert(Follow)
            .values(follower_id=follower_id, followee_id=followee_id)
            .on_conflict_do_nothing(index_elements=[Follow.followee_id, Follow.follower_id])
            .returning(Follow.follower_id)
        )
        return result.first() is not None

    async def remove_follow(self, follower_id: uuid.UUID, followee_id: uuid.UUID) -> bool:
        """Delete the edge; True only when there was one."""
        result = await self._session.execute(
            delete(Follow)
            .where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
            .returning(Follow.follower_id)
        )
        return result.first() is not None

    async def remove_follows_between(
        self, a: uuid.UUID, b: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Delete the edges a→b and b→a; the (follower, followee) pairs that existed."""
        result = await self._session.execute(
            delete(Follow)
            .where(
                or_(
                    and_(Follow.follower_id == a, Follow.followee_id == b),
                    and_(Follow.follower_id == b, Follow.followee_id == a),
                )
            )
            .returning(Follow.follower_id, Follow.followee_id)
        )
        return [(row.follower_id, row.followee_id) for row in result]

    # --- blocks and mutes ----------------------------------------------------------------

    async def add_block(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            insert(Block)
            .values(blocker_id=blocker_id, blocked_id=blocked_id)
            .on_conflict_do_nothing(index_elements=[Block.blocker_id, Block.blocked_id])
            .returning(Block.blocker_id)
        )
        return result.first() is not None

    async def remove_block(self, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            delete(Block)
            .where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
            .returning(Block.blocker_id)
        )
        return result.first() is not None

    async def add_mute(self, muter_id: uuid.UUID, muted_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            insert(Mute)
            .values(muter_id=muter_id, muted_id=muted_id)
            .on_conflict_do_nothing(index_elements=[Mute.muter_id, Mute.muted_id])
            .returning(Mute.muter_id)
        )
        return result.first() is not None

    async def remove_mute(self, muter_id: uuid.UUID, muted_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            delete(Mute)
            .where(Mute.muter_id == muter_id, Mute.muted_id == muted_id)
            .returning(Mute.muter_id)
        )
        return result.first() is not None

    # --- lookups -------------------------------------------------------------------------

    async def facts(
        self, viewer_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
    ) -> dict[Kind, set[uuid.UUID]]:
        """Which of `user_ids` the viewer follows, is followed by, blocks... in one round trip."""
        found: dict[Kind, set[uuid.UUID]] = {kind: set() for kind in Kind}
        if not user_ids:
            return found
        ids = list(user_ids)
        query = union_all(
            _fact(Kind.FOLLOWING, Follow.followee_id, Follow.follower_id == viewer_id, ids),
            _fact(Kind.FOLLOWED_BY, Follow.follower_id, Follow.followee_id == viewer_id, ids),
            _fact(Kind.BLOCKING, Block.blocked_id, Block.blocker_id == viewer_id, ids),
            _fact(Kind.BLOCKED_BY, Block.blocker_id, Block.blocked_id == viewer_id, ids),
            _fact(Kind.MUTING, Mute.muted_id, Mute.muter_id == viewer_id, ids),
        )
        for row in await self._session.execute(query):
            found[Kind(row.kind)].add(row.user_id)
        return found

    async def exclusions(self, viewer_id: uuid.UUID) -> dict[Kind, list[uuid.UUID]]:
        """Everyone the viewer blocks, who blocks the viewer, and whom the viewer mutes."""
        query = union_all(
            _fact(Kind.BLOCKING, Block.blocked_id, Block.blocker_id == viewer_id),
            _fact(Kind.BLOCKED_BY, Block.blocker_id, Block.blocked_id == viewer_id),
            _fact(Kind.MUTING, Mute.muted_id, Mute.muter_id == viewer_id),
        )
        found: dict[Kind, list[uuid.UUID]] = {
            Kind.BLOCKING: [],
            Kind.BLOCKED_BY: [],
            Kind.MUTING: [],
        }
        for row in await self._session.execute(query):
            found[Kind(row.kind)].append(row.user_id)
        return found

    # --- account deletion -----------------------------------------------------------------

    async def forget_user(self, user_id: uuid.UUID) -> ForgottenEdges:
        """Remove every edge that names the user."""
        followed = await self._session.execute(
            delete(Follow).where(Follow.follower_id == user_id).returning(Follow.followee_id)
        )
        followers = await self._session.execute(
            delete(Follow).where(Follow.followee_id == user_id).returning(Follow.follower_id)
        )
        blocks = await self._session.execute(
            delete(Block)
            .where((Block.blocker_id == user_id) | (Block.blocked_id == user_id))
            .returning(Block.blocker_id, Block.blocked_id)
        )
        mutes = await self._session.execute(
            delete(Mute)
            .where((Mute.muter_id == user_id) | (Mute.muted_id == user_id))
            .returning(Mute.muter_id, Mute.muted_id)
        )
        excluding = {u for row in (*blocks.all(), *mutes.all()) for u in row} - {user_id}
        return ForgottenEdges(
            followed=list(followed.scalars()),
            followers=list(followers.scalars()),
            excluding=sorted(excluding),
        )


@dataclass(frozen=True)
class ForgottenEdges:
    followed: list[uuid.UUID]  # the accounts the user followed
    followers: list[uuid.UUID]
    # Everyone on the other side of one of the user's blocks or mutes.
    excluding: list[uuid.UUID]


def _fact(
    kind: Kind,
    other: InstrumentedAttribute[uuid.UUID],
    viewer_side: ColumnElement[bool],
    among: list[uuid.UUID] | None = None,
) -> Select[str, uuid.UUID]:
    query = select(literal(kind.value).label("kind"), other.label("user_id")).where(viewer_side)
    if among is not None:
        query = query.where(other.in_(among))
    return query
