"""Removing what moderation holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.moderation.repository import ModerationRepository
from services.moderation.resources import ModerationResources


async def forget_user(resources: ModerationResources, user_id: uuid.UUID) -> None:
    async with resources.db.unit_of_work() as session:
        await ModerationRepository(session).forget_user(user_id)
