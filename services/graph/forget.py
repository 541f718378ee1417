"""Removing everything graph holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.graph.follows.repository import CountChange, CountRepository
from services.graph.relationships.repository import RelationshipRepository
from services.graph.resources import GraphResources
from zapcore.db import after_commit
from zapcore.logging import get_logger

log = get_logger(__name__)


async def forget_user(resources: GraphResources, user_id: uuid.UUID) -> None:
    """Edges both ways, blocks, mutes and the user's counts; other users' counts corrected."""
    async with resources.db.unit_of_work() as session:
        forgotten = await RelationshipRepository(session).forget_user(user_id)
        # Nobody's copy of their exclusions keeps the id; raising retries the deletion event.
        after_commit(session, lambda: _forget_exclusions(resources, user_id, forgotten.excluding))
        counts = CountRepository(session)
        changes: dict[uuid.UUID, CountChange] = {}
        for followee in forgotten.followed:
            changes[followee] = CountChange(followers=-1)
        for follower in forgotten.followers:
            previous = changes.get(follower, CountChange())
            changes[follower] = CountChange(followers=previous.followers, following=-1)
        changes.pop(user_id, None)
        await counts.apply(changes)
        await counts.forget(user_id)
    log.info(
        "graph.user_forgotten",
        user_id=str(user_id),
        edges=len(forgotten.followed) + len(forgotten.followers),
    )


async def _forget_exclusions(
    resources: GraphResources, user_id: uuid.UUID, excluding: list[uuid.UUID]
) -> None:
    await resources.exclusions.invalidate(excluding)
    await resources.exclusions.forget(user_id)
