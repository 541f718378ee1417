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
from services.feed.timeline import ranking
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


async def filled(db: Database, engagement: Engagement, redis: Redis, user: uuid.UUID) -> None:
    empty = await read(engagement, redis, user, [])
    async with db.driver_reads() as connection:
        await engagement.fill(connection, user, empty)


async def test_a_like_and_an_unlike_are_written_into_the_entry_in_place(
    db: Database, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=100, ttl_seconds=60)
    user, author = uuid.uuid4(), uuid.uuid4()
    [old_like, new_like] = await posts_of(db, [2, 1])
    await engage(db, user, [old_like], [])
    await filled(db, engagement, redis, user)

    seen = await engagement.generation(user)
    await engage(db, user, [new_like], [])
    await engagement.liked(user, seen, new_like, liked=True, affinity=(author, 3, 1))
    now = await read(engagement, redis, user, [old_like, new_like])
    assert now.since is not None  # still there: the next read needs no database
    assert now.liked == {old_like, new_like}
    assert await engagement.affinities(user, [str(author)]) == {str(author): ranking.affinity(3, 1)}

    seen = await engagement.generation(user)
    await engagement.liked(user, seen, old_like, liked=False, affinity=(author, 2, 1))
    assert (await read(engagement, redis, user, [old_like, new_like])).liked == {new_like}
    seen = await engagement.generation(user)
    await engagement.shared(user, seen, old_like)
    assert (await read(engagement, redis, user, [old_like])).shared == {old_like}


async def test_a_write_that_another_change_overtook_drops_the_entry(
    db: Database, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=100, ttl_seconds=60)
    user = uuid.uuid4()
    [post] = await posts_of(db, [1])
    await filled(db, engagement, redis, user)

    # A like and an unlike of the same post, both begun before either was written in: the
    # order their writes reach Redis need not be the order they committed in.
    like_seen = await engagement.generation(user)
    unlike_seen = await engagement.generation(user)
    await engagement.liked(user, unlike_seen, post, liked=False, affinity=None)
    await engagement.liked(user, like_seen, post, liked=True, affinity=None)
    assert (await read(engagement, redis, user, [post])).since is None  # the database decides


async def test_a_fill_that_read_before_a_written_like_is_refused(
    db: Database, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=100, ttl_seconds=60)
    user = uuid.uuid4()
    [post] = await posts_of(db, [1])
    await filled(db, engagement, redis, user)
    before = await read(engagement, redis, user, [post])  # a slow reader's generation

    seen = await engagement.generation(user)
    await engage(db, user, [post], [])
    await engagement.liked(user, seen, post, liked=True, affinity=None)
    # The slow read's fill, had it read the database before the like, would hide it.
    await db_unliked(db, user, post)
    async with db.driver_reads() as connection:
        await engagement.fill(connection, user, before)
    assert (await read(engagement, redis, user, [post])).liked == {post}


async def test_a_write_with_no_entry_leaves_none(db: Database, redis_db: tuple[str, Redis]) -> None:
    _, redis = redis_db
    engagement = Engagement(redis, window_days=1, max_entries=100, ttl_seconds=60)
    user = uuid.uuid4()
    [post] = await posts_of(db, [1])
    seen = await engagement.generation(user)
    await engagement.liked(user, seen, post, liked=True, affinity=None)
    assert (await read(engagement, redis, user, [post])).since is None


async def db_unliked(db: Database, user: uuid.UUID, post: uuid.UUID) -> None:
    """The database as the slow fill saw it: the like not there yet."""
    async with db.unit_of_work() as session:
        await session.execute(
            text("DELETE FROM likes WHERE user_id = :u AND post_id = :p"), {"u": user, "p": post}
        )
