"""Removing everything feed holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.feed.posts.cards import GONE_FOREVER, Offer
from services.feed.posts.repository import PostRepository, changed_posts
from services.feed.resources import FeedResources
from services.feed.timeline.repository import FeedRepository
from zapcore.logging import get_logger

log = get_logger(__name__)


async def forget_user(resources: FeedResources, user_id: uuid.UUID) -> None:
    async with resources.db.unit_of_work() as session:
        feeds = FeedRepository(session)
        removed = await feeds.forget_items_by(user_id)
        await feeds.forget_feed_of(user_id)
        own_posts = await PostRepository(session).forget_user(user_id)
        counted = changed_posts(session)
    await resources.cache.forget(user_id, removed)
    gone = [Offer(post_id, GONE_FOREVER, None) for post_id in own_posts]
    await resources.cards.after_change(gone, counted, strict=True)
    await resources.engagement.forget(user_id)
    # Trending generations name post ids; they are cheap to rank again.
    async for key in resources.redis.scan_iter(match="zap:feed:trending:*"):
        await resources.redis.delete(key)
    log.info("feed.user_forgotten", user_id=str(user_id), feed_items=len(removed))
