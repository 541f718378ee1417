"""SQL for materialised home feeds (feed_items), the fanout outbox and rescoring."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.feed.models import FanoutOutbox, FeedItem, Post
from services.feed.posts.repository import VISIBLE
from services.feed.timeline.ranking import SQL_AFFINITY, SQL_SCORE_WITHOUT_AFFINITY


@dataclass(frozen=True)
class Written:
    user_id: uuid.UUID
    score: float
    inserted: bool


# One statement per batch of followers. A re-run batch inserts nothing (the primary key is
# (user_id, post_id)) but still answers every follower with its score, so the cache push
# after it is complete even when the first run died between the database and Redis.
_FAN_OUT = text(
    f"""
    WITH wanted AS (
        SELECT f.user_id, :base * {SQL_AFFINITY} AS score, {SQL_AFFINITY} AS affinity
        FROM unnest(CAST(:user_ids AS uuid[])) AS f(user_id)
        LEFT JOIN interactions i ON i.user_id = f.user_id AND i.author_id = :author_id
    ), inserted AS (
        INSERT INTO feed_items (user_id, post_id, author_id, score, affinity, created_at)
        SELECT user_id, :post_id, :author_id, score, affinity, :created_at FROM wanted
        ON CONFLICT (user_id, post_id) DO NOTHING
        RETURNING user_id
    )
    SELECT w.user_id, w.score, (n.user_id IS NOT NULL) AS inserted
    FROM wanted w LEFT JOIN inserted n ON n.user_id = w.user_id
    """
)

# A follow's recent posts; one already in the feed (its fanout came first) keeps its score,
# since only the rescoring may move a cached entry (with its paging snapshot, cache.py).
_BACKFILL = text(
    f"""
    INSERT INTO feed_items (user_id, post_id, author_id, score, affinity, created_at)
    SELECT :user_id, p.id, p.author_id,
           {SQL_SCORE_WITHOUT_AFFINITY} * {SQL_AFFINITY}, {SQL_AFFINITY}, p.created_at
    FROM posts p
    LEFT JOIN interactions i ON i.user_id = :user_id AND i.author_id = p.author_id
    WHERE p.author_id = :author_id AND p.deleted_at IS NULL AND p.visibility = :visible
      AND p.parent_post_id IS NULL
    ORDER BY p.created_at DESC
    LIMIT :limit
    ON CONFLICT (user_id, post_id) DO NOTHING
    RETURNING post_id, score
    """
)

_RESCORE_PARTITION = """
    UPDATE {partition} f
    SET affinity = r.affinity, score = r.base * r.affinity
    FROM (
        SELECT g.user_id, g.post_id, {affinity} AS affinity, {base} AS base
        FROM {partition} g
        JOIN posts p ON p.id = g.post_id
        LEFT JOIN interactions i ON i.user_id = g.user_id AND i.author_id = g.author_id
        WHERE g.created_at > :since
    ) r
    WHERE f.user_id = r.user_id AND f.post_id = r.post_id
    RETURNING f.user_id, f.post_id, f.score
"""


class FeedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def fan_out(
        self, post: Post, user_ids: Sequence[uuid.UUID], base_score: float
    ) -> list[Written]:
        if not user_ids:
            return []
        # A lost commit is redone by the job's re-run (the outbox still owes the fanout), so
        # these transactions need not wait for the WAL flush.
        await self._s.execute(text("SET LOCAL synchronous_commit TO OFF"))
        rows = await self._s.execute(
            _FAN_OUT,
            {
                "post_id": post.id,
                "author_id": post.author_id,
                "base": base_score,
                "created_at": post.created_at,
                "user_ids": list(user_ids),
            },
        )
        return [Written(r.user_id, float(r.score), bool(r.inserted)) for r in rows.all()]

    async def backfill(
        self, user_id: uuid.UUID, author_id: uuid.UUID, limit: int, now: datetime
    ) -> list[tuple[uuid.UUID, float]]:
        rows = await self._s.execute(
            _BACKFILL,
            {
                "user_id": user_id,
                "author_id": author_id,
                "limit": limit,
                "now": now,
                "visible": VISIBLE,
            },
        )
        return [(r.post_id, float(r.score)) for r in rows.all()]

    async def remove_author(self, user_id: uuid.UUID, author_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._s.execute(
            delete(FeedItem)
            .where(FeedItem.user_id == user_id, FeedItem.author_id == author_id)
            .returning(FeedItem.post_id)
        )
        return [row[0] for row in rows.all()]

    async def top(self, user_id: uuid.UUID, limit: int) -> list[tuple[uuid.UUID, float]]:
        rows = await self._s.execute(
            select(FeedItem.post_id, FeedItem.score)
            .where(FeedItem.user_id == user_id)
            # Ties go to the newest post (ids are UUIDv7), as in the Redis sorted set.
            .order_by(FeedItem.score.desc(), FeedItem.post_id.desc())
            .limit(limit)
        )
        return [(r.post_id, float(r.score)) for r in rows.all()]

    async def partitions(self) -> list[str]:
        rows = await self._s.execute(
            text(
                "SELECT inhrelid::regclass::text FROM pg_inherits"
                " WHERE inhparent = 'feed_items'::regclass ORDER BY 1"
            )
        )
        return [str(name) for name in rows.scalars()]

    async def rescore_partition(
        self, partition: str, since: datetime, now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
        statement = _RESCORE_PARTITION.format(
            partition=partition, affinity=SQL_AFFINITY, base=SQL_SCORE_WITHOUT_AFFINITY
        )
        rows = await self._s.execute(text(statement), {"since": since, "now": now})
        return [(r.user_id, r.post_id, float(r.score)) for r in rows.all()]

    async def affinities(
        self, user_id: uuid.UUID, author_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, float]:
        if not author_ids:
            return {}
        rows = await self._s.execute(
            text(
                f"SELECT a.author_id, {SQL_AFFINITY} AS affinity"
                " FROM unnest(CAST(:authors AS uuid[])) AS a(author_id)"
                " LEFT JOIN interactions i ON i.user_id = :user_id AND i.author_id = a.author_id"
            ),
            {"user_id": user_id, "authors": list(author_ids)},
        )
        return {r.author_id: float(r.affinity) for r in rows.all()}

    async def recent_posts_of(
        self, author_ids: Sequence[uuid.UUID], since: datetime, limit: int
    ) -> Sequence[Post]:
        if not author_ids:
            return []
        rows = await self._s.execute(
            select(Post)
            .where(
                Post.author_id.in_(author_ids),
                Post.created_at > since,
                Post.deleted_at.is_(None),
                Post.parent_post_id.is_(None),
            )
            .order_by(Post.created_at.desc())
            .limit(limit)
        )
        return rows.scalars().all()

    # The outbox: a post's fanout is owed until done_at is set.

    async def outbox_entry(self, post_id: uuid.UUID) -> FanoutOutbox | None:
        return await self._s.get(FanoutOutbox, post_id)

    async def fanout_progress(self, post_id: uuid.UUID, after: uuid.UUID) -> None:
        await self._s.execute(
            update(FanoutOutbox).where(FanoutOutbox.post_id == post_id).values(resume_after=after)
        )

    async def fanout_done(self, post_id: uuid.UUID, now: datetime) -> None:
        await self._s.execute(
            update(FanoutOutbox).where(FanoutOutbox.post_id == post_id).values(done_at=now)
        )

    async def overdue_fanouts(self, older_than: datetime, limit: int) -> list[uuid.UUID]:
        rows = await self._s.execute(
            select(FanoutOutbox.post_id)
            .where(FanoutOutbox.done_at.is_(None), FanoutOutbox.created_at < older_than)
            .order_by(FanoutOutbox.created_at)
            .limit(limit)
        )
        return [row[0] for row in rows.all()]

    async def forget_done_fanouts(self, older_than: datetime) -> int:
        result = await self._s.execute(
            delete(FanoutOutbox).where(
                FanoutOutbox.done_at.is_not(None), FanoutOutbox.done_at < older_than
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # Account deletion.

    async def forget_feed_of(self, user_id: uuid.UUID) -> None:
        await self._s.execute(delete(FeedItem).where(FeedItem.user_id == user_id))

    async def forget_items_by(self, author_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Take an author's posts out of every feed; (reader, post) of each removed item.

        feed_items has no author index (it would slow every fanout); deletions are rare and
        run in the worker, so they scan.
        """
        rows = await self._s.execute(
            delete(FeedItem)
            .where(FeedItem.author_id == author_id)
            .returning(FeedItem.user_id, FeedItem.post_id)
        )
        await self._s.execute(delete(FanoutOutbox).where(FanoutOutbox.author_id == author_id))
        return [(r.user_id, r.post_id) for r in rows.all()]
