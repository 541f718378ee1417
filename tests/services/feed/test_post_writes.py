"""Likes, unlikes and shares as one statement each on asyncpg (PostWrites), against the real
PostgreSQL: what moves, what does not, and which posts a user may not touch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.feed.models import Post
from services.feed.posts.repository import REMOVED, SHADOW_BANNED, Engaged, PostWrites
from zapcore.db import Database
from zapcore.ids import new_id


@pytest.fixture
async def db(databases: dict[str, str]) -> AsyncIterator[Database]:
    database = Database(databases["feed"], pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()


async def a_post(db: Database, author: uuid.UUID | None = None, **columns: object) -> uuid.UUID:
    post = Post(
        id=new_id(),
        author_id=author or uuid.uuid4(),
        content="p",
        created_at=datetime.now(UTC),
        **columns,
    )
    async with db.unit_of_work() as session:
        session.add(post)
    return post.id


async def in_database(db: Database, post_id: uuid.UUID) -> tuple[int, int, int]:
    async with db.driver_reads() as connection:
        row = await connection.fetchrow(
            "SELECT like_count, share_count, version FROM posts WHERE id = $1", post_id
        )
    assert row is not None
    return row["like_count"], row["share_count"], row["version"]


async def interaction(db: Database, user: uuid.UUID, author: uuid.UUID) -> int | None:
    async with db.driver_reads() as connection:
        likes = await connection.fetchval(
            "SELECT likes FROM interactions WHERE user_id = $1 AND author_id = $2", user, author
        )
    return likes  # type: ignore[no-any-return]


async def like(db: Database, post_id: uuid.UUID, user: uuid.UUID, *, blocked=()) -> Engaged | None:
    async with db.driver_unit_of_work() as connection:
        return await PostWrites(connection).like(post_id, user, blocked)


async def unlike(db: Database, post_id: uuid.UUID, user: uuid.UUID) -> Engaged | None:
    async with db.driver_unit_of_work() as connection:
        return await PostWrites(connection).unlike(post_id, user, ())


async def share(db: Database, post_id: uuid.UUID, user: uuid.UUID) -> Engaged | None:
    async with db.driver_unit_of_work() as connection:
        return await PostWrites(connection).share(post_id, user, ())


async def test_liking_twice_counts_once_and_the_changed_row_is_the_committed_one(
    db: Database,
) -> None:
    author, fan = uuid.uuid4(), uuid.uuid4()
    post_id = await a_post(db, author)

    first = await like(db, post_id, fan)
    assert first is not None
    assert first.changed is not None
    assert first.post.like_count == 1
    # The card is offered from this row: it must be the row the database holds now.
    assert (first.changed.like_count, 0, first.changed.version) == await in_database(db, post_id)
    assert first.interaction == (1, 0)
    assert await interaction(db, fan, author) == 1

    again = await like(db, post_id, fan)
    assert again is not None
    assert (again.changed, again.interaction, again.post.like_count) == (None, None, 1)
    assert await in_database(db, post_id) == (1, 0, first.changed.version)
    assert await interaction(db, fan, author) == 1


async def test_unliking_takes_the_like_back_once_and_a_post_not_liked_is_left_alone(
    db: Database,
) -> None:
    author, fan, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post_id = await a_post(db, author)
    await like(db, post_id, fan)

    nothing = await unlike(db, post_id, stranger)
    assert nothing is not None
    assert nothing.changed is None
    assert nothing.post.like_count == 1

    taken = await unlike(db, post_id, fan)
    assert taken is not None
    assert taken.changed is not None
    assert (taken.post.like_count, taken.interaction) == (0, (0, 0))
    assert (await in_database(db, post_id))[0] == 0
    assert (await unlike(db, post_id, fan)).changed is None  # type: ignore[union-attr]
    assert (await in_database(db, post_id))[0] == 0


async def test_ones_own_post_moves_no_affinity(db: Database) -> None:
    author = uuid.uuid4()
    post_id = await a_post(db, author)
    own = await like(db, post_id, author)
    assert own is not None
    assert own.changed is not None
    assert own.interaction is None
    assert await interaction(db, author, author) is None


@pytest.mark.parametrize(
    "columns",
    [
        {"deleted_at": datetime.now(UTC)},
        {"visibility": REMOVED},
        {"visibility": SHADOW_BANNED},
    ],
    ids=["deleted", "removed", "shadow-banned"],
)
async def test_a_post_the_user_may_not_see_is_not_touched(
    db: Database, columns: dict[str, object]
) -> None:
    fan = uuid.uuid4()
    post_id = await a_post(db, **columns)
    before = await in_database(db, post_id)
    assert await like(db, post_id, fan) is None
    assert await share(db, post_id, fan) is None
    assert await unlike(db, post_id, fan) is None
    assert await in_database(db, post_id) == before


async def test_a_missing_post_and_a_blocked_author_are_alike(db: Database) -> None:
    author, fan = uuid.uuid4(), uuid.uuid4()
    post_id = await a_post(db, author)
    assert await like(db, uuid.uuid4(), fan) is None
    assert await like(db, post_id, fan, blocked=[uuid.uuid4(), author]) is None
    assert (await in_database(db, post_id))[0] == 0
    assert await like(db, post_id, fan, blocked=[uuid.uuid4()]) is not None


async def test_a_shadow_banned_author_still_engages_with_their_own_post(db: Database) -> None:
    author = uuid.uuid4()
    post_id = await a_post(db, author, visibility=SHADOW_BANNED)
    assert (await like(db, post_id, author)).changed is not None  # type: ignore[union-attr]
    assert (await share(db, post_id, author)).changed is not None  # type: ignore[union-attr]


async def test_sharing_twice_counts_once_and_answers_with_the_users_like(db: Database) -> None:
    fan = uuid.uuid4()
    post_id = await a_post(db)
    await like(db, post_id, fan)

    shared = await share(db, post_id, fan)
    assert shared is not None
    assert shared.changed is not None
    assert (shared.post.share_count, shared.post.like_count, shared.liked_before) == (1, 1, True)
    assert shared.interaction is None
    again = await share(db, post_id, fan)
    assert again is not None
    assert again.changed is None
    assert (again.post.share_count, again.liked_before) == (1, True)
    assert (await in_database(db, post_id))[1] == 1


async def test_a_change_rolled_back_leaves_nothing(db: Database) -> None:
    fan = uuid.uuid4()
    post_id = await a_post(db)

    async def like_then_fail() -> None:
        async with db.driver_unit_of_work() as connection:
            await PostWrites(connection).like(post_id, fan, ())
            raise RuntimeError("the outbox row could not be written")

    with pytest.raises(RuntimeError):
        await like_then_fail()
    assert await in_database(db, post_id) == (0, 0, 0)
