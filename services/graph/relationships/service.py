"""Relationship rules: follow, block and mute (and their undoing), and how users relate.

Every write is idempotent: repeating it changes nothing, announces nothing and answers the
same relationship. Counts change only when an edge was really inserted or deleted, in the
same transaction, and events are written with it (an outbox) and published once it commits.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace

from google.protobuf.message import Message
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from services.graph.follows.repository import CountChange, CountRepository
from services.graph.relationships.repository import Kind, RelationshipRepository
from services.graph.relationships.rules import (
    Exclusions,
    Relationship,
    check_batch,
    pair_lock_key,
    refuse_self,
)
from zap.events.v1 import events_pb2
from zapcore.db import after_commit
from zapcore.errors import FailedPrecondition, Unavailable
from zapcore.events import GRAPH
from zapcore.exclusions import ExclusionsCache
from zapcore.logging import get_logger
from zapcore.outbox import Outbox

log = get_logger(__name__)


class RelationshipService:
    def __init__(self, session: AsyncSession, outbox: Outbox, exclusions: ExclusionsCache) -> None:
        self._session = session
        self._edges = RelationshipRepository(session)
        self._counts = CountRepository(session)
        self._outbox = outbox
        self._exclusions = exclusions

    async def follow(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "follow")
        # Serialise with a concurrent Block of the same pair (see pair_lock_key).
        await self._edges.lock_pair(pair_lock_key(viewer, target))
        relationship = await self.relationship(viewer, target)
        if relationship.blocking:
            raise FailedPrecondition(
                "you block this user; unblock them before following", reason="blocked"
            )
        if relationship.blocked_by:
            raise FailedPrecondition("this user has blocked you", reason="blocked")
        if await self._edges.add_follow(viewer, target):
            await self._counts.apply(
                {viewer: CountChange(following=1), target: CountChange(followers=1)}
            )
            await self._announce(
                events_pb2.Followed(follower_id=str(viewer), followee_id=str(target))
            )
        return replace(relationship, following=True)

    async def unfollow(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "unfollow")
        # No pair lock needed: a concurrent delete of the same row waits for this one and
        # then finds nothing, so the counts are decremented once.
        if await self._edges.remove_follow(viewer, target):
            await self._counts.apply(
                {viewer: CountChange(following=-1), target: CountChange(followers=-1)}
            )
            await self._announce(
                events_pb2.Unfollowed(follower_id=str(viewer), followee_id=str(target))
            )
        return await self.relationship(viewer, target)

    async def block(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "block")
        self._refresh_exclusions(viewer, target)
        await self._edges.lock_pair(pair_lock_key(viewer, target))
        created = await self._edges.add_block(viewer, target)
        removed = await self._edges.remove_follows_between(viewer, target)
        followers: Counter[uuid.UUID] = Counter()
        following: Counter[uuid.UUID] = Counter()
        for follower, followee in removed:
            following[follower] -= 1
            followers[followee] -= 1
            # Consumers that keep follow-derived state (feeds) see the edge go as usual.
            await self._announce(
                events_pb2.Unfollowed(follower_id=str(follower), followee_id=str(followee))
            )
        await self._counts.apply(
            {
                user_id: CountChange(followers=followers[user_id], following=following[user_id])
                for user_id in followers.keys() | following.keys()
            }
        )
        if created:
            await self._announce(events_pb2.Blocked(blocker_id=str(viewer), blocked_id=str(target)))
        return await self.relationship(viewer, target)

    async def unblock(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "unblock")
        self._refresh_exclusions(viewer, target)
        # Follows removed by the block stay removed: unblocking restores nothing.
        await self._edges.remove_block(viewer, target)
        return await self.relationship(viewer, target)

    async def mute(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "mute")
        self._refresh_exclusions(viewer, target)
        await self._edges.add_mute(viewer, target)
        return await self.relationship(viewer, target)

    async def unmute(self, viewer: uuid.UUID, target: uuid.UUID) -> Relationship:
        refuse_self(viewer, target, "unmute")
        self._refresh_exclusions(viewer, target)
        await self._edges.remove_mute(viewer, target)
        return await self.relationship(viewer, target)

    async def relationship(self, viewer: uuid.UUID, user_id: uuid.UUID) -> Relationship:
        return (await self.relationships(viewer, [user_id]))[0]

    async def relationships(
        self, viewer: uuid.UUID, user_ids: list[uuid.UUID]
    ) -> list[Relationship]:
        """One relationship per requested id, in request order (duplicates repeated)."""
        check_batch(user_ids, "user_ids")
        facts = await self._edges.facts(viewer, list(dict.fromkeys(user_ids)))
        return [
            Relationship(
                user_id=user_id,
                following=user_id in facts[Kind.FOLLOWING],
                followed_by=user_id in facts[Kind.FOLLOWED_BY],
                blocking=user_id in facts[Kind.BLOCKING],
                blocked_by=user_id in facts[Kind.BLOCKED_BY],
                muting=user_id in facts[Kind.MUTING],
            )
            for user_id in user_ids
        ]

    async def exclusions(self, viewer: uuid.UUID) -> Exclusions:
        found = await self._edges.exclusions(viewer)
        return Exclusions(
            blocking=found[Kind.BLOCKING],
            blocked_by=found[Kind.BLOCKED_BY],
            muted=found[Kind.MUTING],
        )

    def _refresh_exclusions(self, *user_ids: uuid.UUID) -> None:
        """Once committed, readers' copies of both users' exclusions go, before the caller
        hears back: the change holds on either user's very next read. Done on a repeat too,
        so retrying a call whose first try could not reach Redis repairs the copies."""

        async def invalidate() -> None:
            try:
                await self._exclusions.invalidate(user_ids)
            except RedisError as error:
                raise Unavailable(
                    "the change is saved but feeds could not be updated; try again",
                    reason="cache-unavailable",
                ) from error

        after_commit(self._session, invalidate)

    async def _announce(self, payload: Message) -> None:
        """Announce `payload` on the graph topic, written with this transaction (outbox)."""
        await self._outbox.stage(self._session, GRAPH, payload)
