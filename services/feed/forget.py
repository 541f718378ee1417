"""Removing everything feed holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.feed.posts.repository import PostRepository
from services.feed.resources import FeedResources
from services.feed.timeline.repository import FeedRepository
from zapcore.logging import get_logger

log = get_logger(__name__)


async def forget_user(resources: FeedResources, user_id: uuid.UUID) -> None:
    async with resources.db.unit_of_work() as session:
        feeds = FeedRepository(session)
        removed = await feeds.forget_items_by(user_id)
        await feeds.forget_feed_of(user_id)
        await PostRepository(session).forget_user(user_id)
    await resources.cache.forget(user_id, removed)
    # Trending generations name post ids; they are cheap to rank again.
    async for key in resources.redis.scan_iter(match="zap:feed:trending:*"):
        await resources.redis.delete(key)
    log.info("feed.user_forgotten", user_id=str(user_id), feed_items=len(removed))
