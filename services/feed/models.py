"""feed's tables: posts and what hangs off them, and every user's materialised home feed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from zapcore.db import service_metadata
from zapcore.ids import new_id
from zapcore.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = service_metadata()


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    content: Mapped[str] = mapped_column(Text)
    hashtags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    mention_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    media_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    parent_post_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    like_count: Mapped[int] = mapped_column(BigInteger, default=0)
    comment_count: Mapped[int] = mapped_column(BigInteger, default=0)
    share_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # zap.common.v1.Visibility; moderation may change it at any time.
    visibility: Mapped[int] = mapped_column(SmallInteger, default=1)
    # 0..1 from the ML tier; the ranking's trust penalty. Null until scored.
    moderation_score: Mapped[float | None] = mapped_column(Float)
    # The last moderation outcome applied, so that a re-delivered one is applied once.
    moderation_source_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped by a trigger on every update (migration 0005); what post cards are fenced by.
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (
        Index(
            "ix_posts_author_timeline",
            "author_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_posts_recent",
            text("created_at DESC"),
            postgresql_where=text("deleted_at IS NULL AND parent_post_id IS NULL"),
        ),
        # What the ML tier has not scored yet (small: scoring follows within seconds).
        Index(
            "ix_posts_unscored",
            "created_at",
            postgresql_where=text("moderation_score IS NULL AND deleted_at IS NULL"),
        ),
    )


class PostHashtag(Base):
    """The hashtag index: one row per (hashtag, post), newest first per hashtag."""

    __tablename__ = "post_hashtags"

    hashtag: Mapped[str] = mapped_column(String(64), primary_key=True)
    post_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_post_hashtags_recent", "hashtag", text("created_at DESC"), text("post_id DESC")),
        Index("ix_post_hashtags_post", "post_id"),
    )


class Like(Base):
    __tablename__ = "likes"

    post_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_likes_user", "user_id", "post_id"),)


class Share(Base):
    __tablename__ = "shares"

    post_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_shares_user", "user_id", "post_id"),)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    post_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    content: Mapped[str] = mapped_column(Text)
    mention_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    visibility: Mapped[int] = mapped_column(SmallInteger, default=1)
    moderation_score: Mapped[float | None] = mapped_column(Float)
    moderation_source_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_comments_post", "post_id", "created_at", "id"),
        Index("ix_comments_author", "author_id"),
        Index(
            "ix_comments_unscored",
            "created_at",
            postgresql_where=text("moderation_score IS NULL AND deleted_at IS NULL"),
        ),
    )


class Interaction(Base):
    """How much a viewer engages with an author: the input of the ranking's affinity."""

    __tablename__ = "interactions"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # Covering: the fanout reads every follower's counters for one author, index-only.
    __table_args__ = (
        Index(
            "ix_interactions_author_user",
            "author_id",
            "user_id",
            postgresql_include=["likes", "comments"],
        ),
    )


class FeedItem(Base):
    """One post in one user's home feed, with its score for that user."""

    __tablename__ = "feed_items"
    # Two indexes only (the key and the ranking): every one more slows every fanout. Removing
    # an author from a feed (unfollow, block) scans that user's rows by the key's prefix.

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    post_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    score: Mapped[float] = mapped_column(Float)
    affinity: Mapped[float] = mapped_column(Float, default=1.0)
    # The post's creation time, copied so that rescoring stays inside the table. Not indexed:
    # rescoring scans each partition once per run, and every index slows every fanout.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_feed_items_rank", "user_id", text("score DESC"), text("post_id DESC")),
        {"postgresql_partition_by": "HASH (user_id)"},
    )


class FanoutOutbox(Base):
    """Written with the post in one transaction: a post whose fanout job was never queued
    (a crash between commit and enqueue) is found here and fanned out by the sweeper."""

    __tablename__ = "fanout_outbox"

    post_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Followers are streamed in id order; a re-run job resumes after the last one done.
    resume_after: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_fanout_outbox_pending", "created_at", postgresql_where=text("done_at IS NULL")),
    )


# Feed's events, written with the change they announce (zapcore.outbox).
EVENT_OUTBOX = outbox_table(Base.metadata)
