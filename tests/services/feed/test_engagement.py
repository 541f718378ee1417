"""A viewer's likes and shares in Redis (services/feed/posts/engagement.py) and the post
versions that fence the post cards, against the real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from services.feed.models import Like, Post, Share
from services.feed.posts.engagement import Engagement
from zapcore.db import Database
from zapcore.ids import new_id
from zapcore.redis import Batch


@pytest.fixture
async def db(databases: dict[str, str]) -> AsyncIterator[Database]:
    database = Database(databases["feed"], pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def posts_of(db: Database, ages_hours: list[float]) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    posts = [
        Post(id=new_id(), author_id=uuid.uuid4(), content="p", created_at=now - timedelta(hours=h))
        for h in ages_hours
    ]
    async with db.unit_of_work() as session:
        session.add_all(posts)
    return [p.id for p in posts]


async def engage(db: Database, user: uuid.UUID, liked: list[uuid.UUID], shared: list[uuid.UUID]):
    async with db.unit_of_work() as session:
        session.add_all([Like(post_id=p, user_id=user) for p in liked])
        session.add_all([Share(post_id=p, user_id=user) for p in shared])


async def read(engagement: Engagement, redis: Redis, user: uuid.UUID, ids: list[uuid.UUID]):
    batch = Batch()
    state = engagement.queue_read(batch, user, ids)
    return engagement.known(ids, (await batch.run(redis))[state])


async def test_an_entry_holds_the_newest_posts_a_user_engaged_with_up_to_its_cap(
    db: Database, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=2, ttl_seconds=60)
    user = uuid.uuid4()
    # Liked: three within the window (the cap is two), one older than the window.
    liked = await posts_of(db, [1, 2, 3, 30])
    shared = await posts_of(db, [1])
    await engage(db, user, liked, shared)

    empty = await read(engagement, redis, user, liked)
    assert empty.since is None
    async with db.driver_reads() as connection:
        filled = await engagement.fill(connection, user, empty)
    again = await read(engagement, redis, user, liked + shared)
    assert again.since == pytest.approx(filled.since)
    # The cap keeps the two newest; the post at its edge may tie with one left out, so the
    # entry covers only posts newer than it, and the rest is looked up in the database.
    assert again.liked == {liked[0]}
    assert again.shared == {shared[0]}
    now = datetime.now(UTC)
    at = [(now - timedelta(hours=h, seconds=1)).timestamp() for h in (1, 2, 3)]
    assert [again.covers(t) for t in at] == [True, False, False]


async def test_a_change_during_a_fill_keeps_the_fill_from_being_written(
    db: Database, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=100, ttl_seconds=60)
    user = uuid.uuid4()
    [post] = await posts_of(db, [1])
    before = await read(engagement, redis, user, [post])  # the fill's generation, read first
    await engage(db, user, [post], [])
    await engagement.changed(user)  # the like commits while the fill reads the database
    async with db.driver_reads() as connection:
        await engagement.fill(connection, user, before)
    assert (await read(engagement, redis, user, [post])).since is None  # refused

    fresh = await read(engagement, redis, user, [post])
    async with db.driver_reads() as connection:
        await engagement.fill(connection, user, fresh)
    assert (await read(engagement, redis, user, [post])).liked == {post}


async def test_every_update_of_a_post_raises_its_version(db: Database) -> None:
    [post] = await posts_of(db, [0])
    seen = []
    for change in ("like_count = 1", "visibility = 3", "deleted_at = now()"):
        async with db.unit_of_work() as session:
            await session.execute(text(f"UPDATE posts SET {change} WHERE id = :id"), {"id": post})
            seen.append(
                await session.scalar(text("SELECT version FROM posts WHERE id = :id"), {"id": post})
            )
    assert seen == [1, 2, 3]
