"""EXPLAIN (ANALYZE, BUFFERS) of every hot query, as the repositories really issue them.

    python -m scripts.seed --reset      # a data set worth explaining (stack running)
    python -m scripts.explain           # writes docs/explain.md

Each query is produced by calling the repository method itself; the SQL and parameters it
sent are captured from the driver and explained with the same parameters, inside a
transaction that is rolled back (so explaining a write changes nothing).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.accounts.repository import UserRepository
from services.auth.settings import AuthSettings
from services.feed.models import Post
from services.feed.posts.repository import AUTHOR_TIMELINE_SQL, VIEWED_SQL, PostRepository
from services.feed.settings import FeedSettings
from services.feed.timeline.repository import FeedRepository
from services.graph.follows.repository import CountRepository, FollowRepository
from services.graph.relationships.repository import RelationshipRepository
from services.graph.settings import GraphSettings
from zapcore.db import Database

Call = Callable[[AsyncSession], Awaitable[Any]]


async def explain(db: Database, title: str, why: str, call: Call) -> str:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    async with db.sessions() as session, session.begin():
        sync_engine = session.bind.sync_engine if session.bind else None
        assert sync_engine is not None
        event.listen(sync_engine, "before_cursor_execute", capture)
        try:
            await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            captured.clear()
            await call(session)
        finally:
            event.remove(sync_engine, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        plan = await _plan(session, statement, parameters)
        await session.rollback()
    return _section(title, why, statement, plan)


async def explain_sql(
    db: Database, title: str, why: str, statement: str, parameters: tuple[Any, ...]
) -> str:
    """The same for a statement the service sends on asyncpg itself (PostReads)."""
    async with db.sessions() as session, session.begin():
        plan = await _plan(session, statement, parameters)
        await session.rollback()
    return _section(title, why, statement, plan)


async def _plan(session: AsyncSession, statement: str, parameters: Any) -> str:
    connection = await session.connection()
    rows = await connection.exec_driver_sql(
        f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) {statement}", parameters
    )
    return "\n".join(row[0] for row in rows)


def _section(title: str, why: str, statement: str, plan: str) -> str:
    return f"### {title}\n\n{why}\n\n```sql\n{statement.strip()}\n```\n\n```\n{plan}\n```\n"


async def main(seed: dict[str, Any]) -> str:
    auth_db, feed_db, graph_db = (
        Database(s.database_url, pool_size=1)
        for s in (AuthSettings(), FeedSettings(), GraphSettings())
    )
    async with auth_db.read_only() as session:
        users = UserRepository(session)
        reader = await users.find_by_email(seed["readers"][0])
        giant = await users.find_by_email(seed["giant"]["email"])
        celebrity = await users.find_by_email(seed["celebrities"][0]["email"])
    if reader is None or giant is None or celebrity is None:
        raise SystemExit("seed the data set first: python -m scripts.seed --reset")
    async with feed_db.read_only() as session:
        top = await FeedRepository(session).top(reader.id, 20)
        post_ids = [pid for pid, _ in top]
        a_post = await PostRepository(session).get(post_ids[0])
        hashtag = (
            await session.execute(
                text("SELECT hashtag FROM post_hashtags GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
            )
        ).scalar_one()
        partition = (await FeedRepository(session).partitions())[0]
    async with graph_db.read_only() as session:
        followers = await FollowRepository(session).follower_ids_after(giant.id, None, 5000)
        followees = [
            e.user_id for e in await FollowRepository(session).following(reader.id, limit=100)
        ]
    now = datetime.now(UTC)
    assert a_post is not None
    post = Post(id=uuid.uuid4(), author_id=giant.id, created_at=now)

    sections = [
        "# EXPLAIN of the hot queries\n",
        f"Measured {now:%Y-%m-%d} on the seeded data set ({seed['users']} users, {seed['posts']}"
        f" posts, {seed['follows']} follows, {seed['feed_items']} feed items), PostgreSQL on the"
        " 2-core development machine. Regenerate with `python -m scripts.explain`.\n",
        "## feed",
        await explain_sql(
            feed_db,
            "A page's posts Redis does not know, with the viewer's like and share state",
            "Home, timeline and explore pages, for posts without a fresh card (posts/cards.py):"
            " primary-key lookups plus two key probes per post.",
            VIEWED_SQL,
            (post_ids, reader.id),
        ),
        await explain(
            feed_db,
            "Home feed: rebuild a cold cache from the materialised feed",
            "First read of a returning user: the ranking index, one partition.",
            lambda s: FeedRepository(s).top(reader.id, 800),
        ),
        await explain(
            feed_db,
            "Fanout: one batch of 5000 feed items",
            "The fanout worker's statement: affinity from interactions, insert into the partitions, ON CONFLICT DO NOTHING.",
            lambda s: FeedRepository(s).fan_out(post, followers, 0.287),
        ),
        await explain(
            feed_db,
            "Pull: recent posts of the followed celebrities",
            "Merged into a reader's feed at most once a minute.",
            lambda s: FeedRepository(s).recent_posts_of(
                [celebrity.id], now - timedelta(hours=72), 200
            ),
        ),
        await explain(
            feed_db,
            "Affinity of a viewer to authors",
            "Scores pulled posts for one viewer.",
            lambda s: FeedRepository(s).affinities(reader.id, followees[:50] or [celebrity.id]),
        ),
        await explain(
            feed_db,
            "Unfollow / block: take an author out of a feed",
            "The key's prefix (user_id) bounds the scan to one user's items.",
            lambda s: FeedRepository(s).remove_author(reader.id, giant.id),
        ),
        await explain(
            feed_db,
            "Rescoring: one partition, items of the last 48 hours",
            "The 15-minute cron, once per partition.",
            lambda s: FeedRepository(s).rescore_partition(
                partition, now - timedelta(hours=48), now
            ),
        ),
        await explain_sql(
            feed_db,
            "A user's timeline, newest first",
            "GET /users/{id}/posts/.",
            AUTHOR_TIMELINE_SQL,
            (giant.id, 21),
        ),
        await explain(
            feed_db,
            "Explore by hashtag",
            "GET /feed/explore/?hashtag=.",
            lambda s: PostRepository(s).hashtag_posts(hashtag, None, 21),
        ),
        await explain(
            feed_db,
            "Trending posts of the last 24 hours",
            "GET /feed/explore/ without a hashtag.",
            lambda s: PostRepository(s).trending_posts(now - timedelta(hours=24), now, 0, 21),
        ),
        await explain(
            feed_db,
            "Comments of a post, oldest first",
            "GET /posts/{id}/comments/.",
            lambda s: PostRepository(s).comments(a_post.id, None, 21),
        ),
        "## graph",
        await explain(
            graph_db,
            "Followers, newest first",
            "GET /users/{id}/followers/.",
            lambda s: FollowRepository(s).followers(giant.id, limit=21),
        ),
        await explain(
            graph_db,
            "Following, newest first",
            "GET /users/{id}/following/.",
            lambda s: FollowRepository(s).following(reader.id, limit=21),
        ),
        await explain(
            graph_db,
            "Fanout stream: the next 5000 followers in id order",
            "A range of the primary key (followee_id, follower_id).",
            lambda s: FollowRepository(s).follower_ids_after(giant.id, followers[100], 5000),
        ),
        await explain(
            graph_db,
            "Relationships of a viewer to a page of users",
            "Profile and list hydration: five key probes per user in one UNION ALL.",
            lambda s: RelationshipRepository(s).facts(reader.id, followees[:20] or [giant.id]),
        ),
        await explain(
            graph_db,
            "Exclusions of a viewer (blocks either way, mutes)",
            "Every feed read.",
            lambda s: RelationshipRepository(s).exclusions(reader.id),
        ),
        await explain(
            graph_db,
            "Pulled followees of a viewer",
            "Celebrities among the accounts a reader follows.",
            lambda s: FollowRepository(s).followees_with_followers(
                reader.id, seed["fanout_threshold"]
            ),
        ),
        await explain(
            graph_db,
            "Counts of a page of users",
            "Profiles, fanout mode.",
            lambda s: CountRepository(s).get_many(followees[:20] or [giant.id]),
        ),
        "## auth",
        await explain(
            auth_db,
            "Public profiles of a page of authors",
            "Every page the gateway hydrates.",
            lambda s: UserRepository(s).list_active([giant.id, celebrity.id, reader.id]),
        ),
        await explain(
            auth_db,
            "Login: the account of an email",
            "Case-insensitive unique index.",
            lambda s: UserRepository(s).find_by_email(seed["readers"][1]),
        ),
    ]
    for db in (auth_db, feed_db, graph_db):
        await db.dispose()
    return "\n".join(sections)


if __name__ == "__main__":
    seeded = json.loads(Path("bench-results/seed.json").read_text())
    Path("docs/explain.md").write_text(asyncio.run(main(seeded)))
    print("wrote docs/explain.md")
