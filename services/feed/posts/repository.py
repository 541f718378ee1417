"""SQL for posts, likes, comments, shares and the hashtag index."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import ARRAY, Uuid, case, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feed.models import Comment, Interaction, Like, Post, PostHashtag, Share
from services.feed.timeline.ranking import SQL_SCORE_WITHOUT_AFFINITY
from zap.common.v1 import common_pb2

VISIBLE = common_pb2.VISIBILITY_VISIBLE
SHADOW_BANNED = common_pb2.VISIBILITY_SHADOW_BANNED
REMOVED = common_pb2.VISIBILITY_REMOVED
# Moderation's source ids: "decision:<id>" for a human's decision (a moderator's, on a report,
# a borderline score or an appeal), "score:<kind>:<id>:<version>" for the ML tier's score.
HUMAN_DECISION_PREFIX = "decision:"


def is_human_decision(source_id: str | None) -> bool:
    return source_id is not None and source_id.startswith(HUMAN_DECISION_PREFIX)


@dataclass(frozen=True)
class ViewedPost:
    """A post with the viewer's own state."""

    post: Post | PostRecord
    liked: bool = False
    shared: bool = False


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A post as the hot read path reads it: plain values, no ORM state."""

    id: uuid.UUID
    author_id: uuid.UUID
    content: str
    hashtags: list[str]
    mention_ids: list[uuid.UUID]
    media_ids: list[uuid.UUID]
    parent_post_id: uuid.UUID | None
    like_count: int
    comment_count: int
    share_count: int
    visibility: int
    created_at: datetime
    deleted_at: datetime | None
    version: int
    moderation_score: float | None


# The columns of PostRecord, in its order, then the viewer's own state; a NULL viewer (signed
# out) has liked and shared nothing.
VIEWED_SQL = """
SELECT p.id, p.author_id, p.content, p.hashtags, p.mention_ids, p.media_ids, p.parent_post_id,
       p.like_count, p.comment_count, p.share_count, p.visibility, p.created_at, p.deleted_at,
       p.version, p.moderation_score,
       EXISTS (SELECT 1 FROM likes l WHERE l.post_id = p.id AND l.user_id = $2) AS liked,
       EXISTS (SELECT 1 FROM shares s WHERE s.post_id = p.id AND s.user_id = $2) AS shared
FROM posts p
WHERE p.id = ANY($1::uuid[])
"""
_RECORD_COLUMNS = len(PostRecord.__slots__)

AUTHOR_TIMELINE_SQL = """
SELECT id, created_at FROM posts
WHERE author_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT $2
"""
AUTHOR_TIMELINE_BEFORE_SQL = """
SELECT id, created_at FROM posts
WHERE author_id = $1 AND deleted_at IS NULL AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC LIMIT $2
"""


class PostReads:
    """Reads of feed pages (home, explore, timelines) on asyncpg itself: the same answers as
    PostRepository.viewed at a tenth of its CPU (zapcore.db.Database.driver_reads)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._c = connection

    async def viewed(
        self, post_ids: Sequence[uuid.UUID], viewer_id: uuid.UUID | None
    ) -> dict[uuid.UUID, ViewedPost]:
        """Posts by id with the viewer's like and share state, in one round trip."""
        if not post_ids:
            return {}
        rows = await self._c.fetch(VIEWED_SQL, list(post_ids), viewer_id)
        return {
            row["id"]: ViewedPost(PostRecord(*row[:_RECORD_COLUMNS]), row["liked"], row["shared"])
            for row in rows
        }

    async def author_timeline(
        self, author_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[tuple[uuid.UUID, datetime]]:
        """(id, created_at) of an author's live posts, newest first (ix_posts_author_timeline);
        the posts themselves come from their cards."""
        if before is None:
            rows = await self._c.fetch(AUTHOR_TIMELINE_SQL, author_id, limit)
        else:
            rows = await self._c.fetch(AUTHOR_TIMELINE_BEFORE_SQL, author_id, limit, *before)
        return [(row["id"], row["created_at"]) for row in rows]


# The columns of PostRecord, in its order, as a write's RETURNING gives them.
_ROW = (
    "id, author_id, content, hashtags, mention_ids, media_ids, parent_post_id, like_count,"
    " comment_count, share_count, visibility, created_at, deleted_at, version, moderation_score"
)


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _ROW.split(","))


# The post if the user may engage with it: what `visible_to` and a block say, in SQL ($1 the
# post, $2 the user, $3 everyone blocked either way).
_TARGET = f"""
target AS (
    SELECT {_ROW} FROM posts
    WHERE id = $1 AND deleted_at IS NULL AND visibility <> {REMOVED}
      AND (visibility <> {SHADOW_BANNED} OR author_id = $2)
      AND author_id <> ALL($3::uuid[])
)"""


def _counted(column: str, delta: int) -> str:
    """The counter moves only when the edge did (`edge` has a row); the whole row as the
    change left it, version included (the trigger of migration 0005)."""
    return f"""
counted AS (
    UPDATE posts p SET {column} = greatest(0, p.{column} + {delta})
    FROM edge WHERE p.id = edge.post_id
    RETURNING {_prefixed("p")}
)"""


def _interaction(delta: int) -> str:
    """The liker's affinity to the author, for the ranking (not on one's own posts)."""
    return f"""
interaction AS (
    INSERT INTO interactions AS i (user_id, author_id, likes, comments)
    SELECT $2, target.author_id, {max(0, delta)}, 0 FROM target, edge
    WHERE target.author_id <> $2
    ON CONFLICT (user_id, author_id) DO UPDATE
    SET likes = greatest(0, i.likes + {delta}), updated_at = now()
    RETURNING i.likes, i.comments
)"""


_ANSWER = f"""
SELECT {_prefixed("target")}, {_prefixed("counted")},
       interaction.likes, interaction.comments,
       EXISTS (SELECT 1 FROM likes WHERE post_id = $1 AND user_id = $2) AS liked
FROM target LEFT JOIN counted ON true LEFT JOIN interaction ON true
"""

LIKE_SQL = f"""
WITH {_TARGET},
edge AS (
    INSERT INTO likes (post_id, user_id) SELECT id, $2 FROM target
    ON CONFLICT DO NOTHING RETURNING post_id
),
{_counted("like_count", +1)},
{_interaction(+1)}
{_ANSWER}"""

UNLIKE_SQL = f"""
WITH {_TARGET},
edge AS (
    DELETE FROM likes USING target
    WHERE likes.post_id = target.id AND likes.user_id = $2
    RETURNING likes.post_id
),
{_counted("like_count", -1)},
{_interaction(-1)}
{_ANSWER}"""

SHARE_SQL = f"""
WITH {_TARGET},
edge AS (
    INSERT INTO shares (post_id, user_id) SELECT id, $2 FROM target
    ON CONFLICT DO NOTHING RETURNING post_id
),
{_counted("share_count", +1)},
interaction AS (SELECT NULL::integer AS likes, NULL::integer AS comments WHERE false)
{_ANSWER}"""


# A new post with its hashtag index rows and its fanout debt, in one statement; a reply's
# parent must be one its author may see ($7 the parent or NULL, $9 everyone blocked either
# way). No row when the parent is not visible.
CREATE_SQL = f"""
WITH parent AS (
    SELECT 1 FROM posts
    WHERE id = $7 AND deleted_at IS NULL AND visibility <> {REMOVED}
      AND (visibility <> {SHADOW_BANNED} OR author_id = $2)
      AND author_id <> ALL($9::uuid[])
),
post AS (
    INSERT INTO posts (id, author_id, content, hashtags, mention_ids, media_ids,
                       parent_post_id, like_count, comment_count, share_count, visibility,
                       created_at)
    SELECT $1, $2, $3, $4::varchar[], $5::uuid[], $6::uuid[], $7, 0, 0, 0, {VISIBLE}, $8
    WHERE $7::uuid IS NULL OR EXISTS (SELECT 1 FROM parent)
    RETURNING {_ROW}
),
tagged AS (
    INSERT INTO post_hashtags (hashtag, post_id, created_at)
    SELECT tag, post.id, post.created_at FROM post, unnest(post.hashtags) AS tag
),
owed AS (
    INSERT INTO fanout_outbox (post_id, author_id) SELECT id, author_id FROM post
)
SELECT {_ROW} FROM post
"""


@dataclass(frozen=True, slots=True)
class Engaged:
    """What a like, unlike or share found and did, read in the statement that did it."""

    # The post as the user may see it: the changed row when the statement changed it.
    post: PostRecord
    # The row as the change committed it (its version the card's); None when nothing
    # changed: liked twice, unliked a post not liked, shared again.
    changed: PostRecord | None
    # The user's likes and comments of the author's posts after the change (the ranking's
    # affinity); None when they did not move (nothing changed, one's own post, a share).
    interaction: tuple[int, int] | None
    # Whether the user had liked the post when the statement began: what a share answers
    # with (a like or an unlike knows its own outcome).
    liked_before: bool


class PostWrites:
    """New posts, likes, unlikes and shares on asyncpg itself, each one statement: a like
    checks the post may be seen, moves the edge, and moves the counter only when the edge
    moved (zapcore.db.Database.driver_reads). The caller holds the transaction, so the
    outbox rows of the change commit with it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._c = connection

    async def like(
        self, post_id: uuid.UUID, user_id: uuid.UUID, blocked: Collection[uuid.UUID]
    ) -> Engaged | None:
        """None when the user may not see the post (or it does not exist)."""
        return await self._engage(LIKE_SQL, post_id, user_id, blocked)

    async def unlike(
        self, post_id: uuid.UUID, user_id: uuid.UUID, blocked: Collection[uuid.UUID]
    ) -> Engaged | None:
        return await self._engage(UNLIKE_SQL, post_id, user_id, blocked)

    async def share(
        self, post_id: uuid.UUID, user_id: uuid.UUID, blocked: Collection[uuid.UUID]
    ) -> Engaged | None:
        return await self._engage(SHARE_SQL, post_id, user_id, blocked)

    async def create(
        self, post: PostRecord, blocked: Collection[uuid.UUID] = ()
    ) -> PostRecord | None:
        """Insert a new post (hashtag index and fanout debt included) as committed; None
        when it is a reply to a post its author may not see."""
        row = await self._c.fetchrow(
            CREATE_SQL,
            post.id,
            post.author_id,
            post.content,
            post.hashtags,
            post.mention_ids,
            post.media_ids,
            post.parent_post_id,
            post.created_at,
            list(blocked),
        )
        return None if row is None else PostRecord(*row)

    async def _engage(
        self, sql: str, post_id: uuid.UUID, user_id: uuid.UUID, blocked: Collection[uuid.UUID]
    ) -> Engaged | None:
        row = await self._c.fetchrow(sql, post_id, user_id, list(blocked))
        if row is None:
            return None
        n = _RECORD_COLUMNS
        changed = PostRecord(*row[n : 2 * n]) if row[n] is not None else None
        likes, comments = row[2 * n], row[2 * n + 1]
        return Engaged(
            post=changed or PostRecord(*row[:n]),
            changed=changed,
            interaction=None if likes is None else (likes, comments),
            liked_before=row["liked"],
        )


_CHANGED_POSTS = "zap_feed_changed_posts"


def changed_posts(session: AsyncSession) -> dict[uuid.UUID, int]:
    """The posts a unit of work changed, each with the version its row reached: what the
    post cards must learn once it commits (cards.py)."""
    changed: dict[uuid.UUID, int] = session.info.setdefault(_CHANGED_POSTS, {})
    return changed


def visible_to(post: Post | PostRecord | Comment, viewer_id: uuid.UUID | None) -> bool:
    """Deleted and removed content is gone for everyone; shadow-banned is for its author."""
    if post.deleted_at is not None or post.visibility == REMOVED:
        return False
    if post.visibility == SHADOW_BANNED:
        return post.author_id == viewer_id
    return True


class PostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, post_id: uuid.UUID) -> Post | None:
        return await self._s.get(Post, post_id)

    async def get_for_update(self, post_id: uuid.UUID) -> Post | None:
        result = await self._s.execute(select(Post).where(Post.id == post_id).with_for_update())
        return result.scalar_one_or_none()

    async def viewed(
        self, post_ids: Sequence[uuid.UUID], viewer_id: uuid.UUID | None
    ) -> dict[uuid.UUID, ViewedPost]:
        """Posts by id with the viewer's like and share state, in one round trip."""
        if not post_ids:
            return {}
        if viewer_id is None:
            rows = (await self._s.execute(select(Post).where(Post.id.in_(post_ids)))).scalars()
            return {p.id: ViewedPost(p) for p in rows}
        liked = (
            select(Like.post_id)
            .where(Like.post_id == Post.id, Like.user_id == viewer_id)
            .exists()
            .label("liked")
        )
        shared = (
            select(Share.post_id)
            .where(Share.post_id == Post.id, Share.user_id == viewer_id)
            .exists()
            .label("shared")
        )
        result = await self._s.execute(select(Post, liked, shared).where(Post.id.in_(post_ids)))
        return {p.id: ViewedPost(p, bool(lk), bool(sh)) for p, lk, sh in result.all()}

    async def soft_delete(self, post: Post, now: datetime) -> int:
        """The version the deletion gave the row."""
        version = await self._s.scalar(
            update(Post)
            .where(Post.id == post.id)
            .values(deleted_at=now)
            .returning(Post.version)
            .execution_options(synchronize_session=False)
        )
        post.deleted_at = now
        return int(version or 0)

    async def media_still_shown(self, post: Post) -> set[uuid.UUID]:
        """The post's media that another live post of its author also carries (a media id
        may be attached to several posts; it leaves the store only with the last of them)."""
        if not post.media_ids:
            return set()
        rows = await self._s.execute(
            select(Post.media_ids).where(
                Post.author_id == post.author_id,
                Post.deleted_at.is_(None),
                Post.id != post.id,
                Post.media_ids.op("&&", is_comparison=True)(literal(post.media_ids, ARRAY(Uuid))),
            )
        )
        return {m for (media_ids,) in rows.all() for m in media_ids} & set(post.media_ids)

    async def add_comment(self, comment: Comment, post: Post) -> Comment:
        self._s.add(comment)
        await self._s.flush()
        await self._bump(post.id, Post.comment_count, +1)
        await self._interact(comment.author_id, post.author_id, comments=1)
        return comment

    async def _bump(self, post_id: uuid.UUID, column: object, delta: int) -> None:
        version = await self._s.scalar(
            update(Post)  # type: ignore[arg-type]
            .where(Post.id == post_id)
            .values({column: func.greatest(0, column + delta)})  # type: ignore[operator]
            .returning(Post.version)
            .execution_options(synchronize_session=False)
        )
        if version is not None:
            changed_posts(self._s)[post_id] = int(version)

    async def _interact(
        self, user_id: uuid.UUID, author_id: uuid.UUID, *, likes: int = 0, comments: int = 0
    ) -> None:
        if user_id == author_id:
            return
        statement = pg_insert(Interaction).values(
            user_id=user_id, author_id=author_id, likes=max(0, likes), comments=max(0, comments)
        )
        await self._s.execute(
            statement.on_conflict_do_update(
                index_elements=[Interaction.user_id, Interaction.author_id],
                set_={
                    "likes": func.greatest(0, Interaction.likes + likes),
                    "comments": func.greatest(0, Interaction.comments + comments),
                    "updated_at": func.now(),
                },
            )
        )

    # Lists: keyset pagination on (created_at, id), newest first.

    async def hashtag_posts(
        self, hashtag: str, before: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, datetime]]:
        query = select(PostHashtag.post_id, PostHashtag.created_at).where(
            PostHashtag.hashtag == hashtag
        )
        if before is not None:
            query = query.where(
                text("(post_hashtags.created_at, post_hashtags.post_id) < (:t, :i)").bindparams(
                    t=before[0], i=before[1]
                )
            )
        query = query.order_by(PostHashtag.created_at.desc(), PostHashtag.post_id.desc()).limit(
            limit
        )
        return [(row[0], row[1]) for row in (await self._s.execute(query)).all()]

    async def comments(
        self, post_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> Sequence[Comment]:
        """Oldest first, as conversations are read."""
        query = select(Comment).where(Comment.post_id == post_id, Comment.deleted_at.is_(None))
        if after is not None:
            query = query.where(
                text("(created_at, id) > (:t, :i)").bindparams(t=after[0], i=after[1])
            )
        query = query.order_by(Comment.created_at, Comment.id).limit(limit)
        return (await self._s.execute(query)).scalars().all()

    async def trending_posts(
        self, since: datetime, now: datetime, offset: int, limit: int
    ) -> Sequence[uuid.UUID]:
        rows = await self._s.execute(
            text(
                "SELECT p.id FROM posts p"
                " WHERE p.created_at > :since AND p.deleted_at IS NULL"
                " AND p.parent_post_id IS NULL AND p.visibility = :visible"
                f" ORDER BY {SQL_SCORE_WITHOUT_AFFINITY} DESC, p.id DESC"
                " OFFSET :offset LIMIT :limit"
            ),
            {"since": since, "now": now, "visible": VISIBLE, "offset": offset, "limit": limit},
        )
        return [row[0] for row in rows.all()]

    async def trending_hashtags(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        rows = await self._s.execute(
            select(PostHashtag.hashtag, func.count())
            .where(PostHashtag.created_at > since)
            .group_by(PostHashtag.hashtag)
            .order_by(func.count().desc(), PostHashtag.hashtag)
            .limit(limit)
        )
        return [(tag, int(count)) for tag, count in rows.all()]

    async def get_comment(self, comment_id: uuid.UUID) -> Comment | None:
        return await self._s.get(Comment, comment_id)

    # Moderation outcomes. A human's decision (an appeal's outcome is one too) outranks every
    # automatic score, whatever order they arrive in: a score still records its trust penalty
    # but leaves the visibility a human decided, and later decisions replace earlier ones.

    async def set_moderation(
        self,
        table: type[Post] | type[Comment],
        content_id: uuid.UUID,
        values: dict[str, object],
        source_id: str,
    ) -> int | None:
        """The content's visibility once the outcome is applied; None when it does not exist.

        `values` holds `visibility` and `moderation_source_id`, and `moderation_score` when
        the outcome carries one."""
        if not is_human_decision(source_id):
            decided = table.moderation_source_id.like(f"{HUMAN_DECISION_PREFIX}%")
            values = {
                **values,
                "visibility": case((decided, table.visibility), else_=values["visibility"]),
                "moderation_source_id": case(
                    (decided, table.moderation_source_id), else_=values["moderation_source_id"]
                ),
            }
        # One statement: a decision and a score landing at once are applied one after the
        # other on the row's lock, each judged against what the other left.
        statement = update(table).where(table.id == content_id).values(values)
        if table is Post:
            statement = statement.returning(Post.visibility, Post.version)
        else:
            statement = statement.returning(table.visibility, literal(None))
        applied = (
            await self._s.execute(statement.execution_options(synchronize_session=False))
        ).first()
        if applied is None:
            return None
        visibility, version = applied
        if version is not None:
            changed_posts(self._s)[content_id] = int(version)
        return int(visibility)

    # Everything about one user, for the GDPR export.

    async def posts_by(self, user_id: uuid.UUID) -> Sequence[Post]:
        query = select(Post).where(Post.author_id == user_id).order_by(Post.created_at)
        return (await self._s.execute(query)).scalars().all()

    async def comments_by(self, user_id: uuid.UUID) -> Sequence[Comment]:
        query = select(Comment).where(Comment.author_id == user_id).order_by(Comment.created_at)
        return (await self._s.execute(query)).scalars().all()

    async def liked_by(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._s.execute(select(Like.post_id).where(Like.user_id == user_id))
        return list(rows.scalars())

    async def shared_by(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._s.execute(select(Share.post_id).where(Share.user_id == user_id))
        return list(rows.scalars())

    async def unscored(
        self, since: datetime, until: datetime, limit: int
    ) -> list[tuple[str, uuid.UUID, uuid.UUID, str]]:
        """(kind, id, author, text) of live posts and comments the ML tier has not scored and
        no human has decided."""
        found: list[tuple[str, uuid.UUID, uuid.UUID, str]] = []
        for kind, table in (("post", Post), ("comment", Comment)):
            rows = await self._s.execute(
                select(table.id, table.author_id, table.content)
                .where(
                    table.moderation_score.is_(None),
                    table.deleted_at.is_(None),
                    # Decided by a human: a score could not change what readers see.
                    table.moderation_source_id.is_(None)
                    | table.moderation_source_id.not_like(f"{HUMAN_DECISION_PREFIX}%"),
                    table.created_at > since,
                    table.created_at < until,
                )
                .order_by(table.created_at)
                .limit(limit)
            )
            found += [(kind, r.id, r.author_id, r.content) for r in rows.all()]
        return found

    # Account deletion: everything by the user, and everything others did to their posts.

    async def forget_user(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The ids of the user's own posts, now deleted; the counters of the others' posts
        the user engaged with are in `changed_posts`."""
        own_posts = select(Post.id).where(Post.author_id == user_id).scalar_subquery()
        for table in (Like, Share):
            await self._s.execute(delete(table).where(table.post_id.in_(own_posts)))
        await self._s.execute(delete(Comment).where(Comment.post_id.in_(own_posts)))
        await self._s.execute(delete(PostHashtag).where(PostHashtag.post_id.in_(own_posts)))
        deleted = await self._s.scalars(
            delete(Post).where(Post.author_id == user_id).returning(Post.id)
        )
        own = list(deleted)
        # The user's likes, shares and comments on other people's posts, with the counters.
        for table, column in ((Like, Post.like_count), (Share, Post.share_count)):
            gone = (
                delete(table).where(table.user_id == user_id).returning(table.post_id).cte("gone")
            )
            touched = await self._s.execute(
                update(Post)
                .where(Post.id == gone.c.post_id)
                .values({column: func.greatest(0, column - 1)})
                .returning(Post.id, Post.version)
                .execution_options(synchronize_session=False)
            )
            changed_posts(self._s).update((pid, int(v)) for pid, v in touched.all())
        removed = delete(Comment).where(Comment.author_id == user_id).returning(Comment.post_id)
        per_post = Counter(row[0] for row in (await self._s.execute(removed)).all())
        for post_id, count in per_post.items():
            await self._bump(post_id, Post.comment_count, -count)
        await self._s.execute(
            delete(Interaction).where(
                (Interaction.user_id == user_id) | (Interaction.author_id == user_id)
            )
        )
        return own
