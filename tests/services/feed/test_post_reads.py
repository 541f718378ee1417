"""The hot read of a page's posts (asyncpg itself) answers exactly what the ORM read does."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from services.feed.models import Like, Post, Share
from services.feed.posts.repository import PostReads, PostRecord, PostRepository
from zap.common.v1 import common_pb2
from zapcore.db import Database
from zapcore.ids import new_id


def as_record(post: Post) -> PostRecord:
    return PostRecord(**{f.name: getattr(post, f.name) for f in dataclasses.fields(PostRecord)})


async def test_page_posts_read_on_the_driver_equal_the_orm_read(databases: dict[str, str]) -> None:
    db = Database(databases["feed"], pool_size=1)
    author, liker, sharer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parent = Post(id=new_id(), author_id=author, content="the first")
    posts = [
        parent,
        Post(
            id=new_id(),
            author_id=author,
            content="a reply with everything",
            hashtags=["one", "two"],
            mention_ids=[liker],
            media_ids=[uuid.uuid4(), uuid.uuid4()],
            parent_post_id=parent.id,
            like_count=7,
            comment_count=2,
            share_count=1,
        ),
        Post(
            id=new_id(),
            author_id=author,
            content="hidden",
            visibility=common_pb2.VISIBILITY_SHADOW_BANNED,
            deleted_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ]
    try:
        async with db.unit_of_work() as session:
            session.add_all(posts)
            await session.flush()
            session.add_all(
                [
                    Like(post_id=posts[1].id, user_id=liker),
                    Share(post_id=posts[1].id, user_id=sharer),
                ]
            )
        ids = [p.id for p in posts] + [uuid.uuid4()]  # and one that does not exist
        for viewer in (None, liker, sharer, author):
            async with db.read_only() as session:
                by_orm = await PostRepository(session).viewed(ids, viewer)
            async with db.driver_reads() as connection:
                by_driver = await PostReads(connection).viewed(ids, viewer)
            assert set(by_driver) == set(by_orm) == {p.id for p in posts}
            for post_id, expected in by_orm.items():
                found = by_driver[post_id]
                assert isinstance(expected.post, Post)
                assert found.post == as_record(expected.post)
                assert (found.liked, found.shared) == (expected.liked, expected.shared)
        assert by_driver[posts[1].id].liked is False  # the author liked nothing
    finally:
        await db.dispose()
