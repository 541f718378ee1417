"""Removing everything graph holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.graph.follows.repository import CountChange, CountRepository
from services.graph.relationships.repository import RelationshipRepository
from services.graph.resources import GraphResources
from zapcore.logging import get_logger

log = get_logger(__name__)


async def forget_user(resources: GraphResources, user_id: uuid.UUID) -> None:
    """Edges both ways, blocks, mutes and the user's counts; other users' counts corrected."""
    async with resources.db.unit_of_work() as session:
        followed, followers = await RelationshipRepository(session).forget_user(user_id)
        counts = CountRepository(session)
        changes: dict[uuid.UUID, CountChange] = {}
        for followee in followed:
            changes[followee] = CountChange(followers=-1)
        for follower in followers:
            previous = changes.get(follower, CountChange())
            changes[follower] = CountChange(followers=previous.followers, following=-1)
        changes.pop(user_id, None)
        await counts.apply(changes)
        await counts.forget(user_id)
    log.info("graph.user_forgotten", user_id=str(user_id), edges=len(followed) + len(followers))
