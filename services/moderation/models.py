"""moderation's tables: ML scores, the review queue, user reports, decisions and appeals.

Content lives in feed; moderation keeps the ids, a copy of the text it judged (for the
reviewer), and the author's id (so it can tell them, and forget them on deletion).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy import text as sql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from zapcore.db import service_metadata
from zapcore.ids import new_id
from zapcore.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = service_metadata()


class ItemStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DECIDED = "decided"


class ItemSource(StrEnum):
    SCORE = "score"
    REPORTS = "reports"
    APPEAL = "appeal"


class Action(StrEnum):
    APPROVE = "approve"
    REMOVE = "remove"
    SHADOW_BAN = "shadow_ban"


class Score(Base):
    """The ML tier's verdict on one version of one post or comment (once per version)."""

    __tablename__ = "scores"

    content_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_scores_author", "author_id"),)


class QueueItem(Base):
    """Content waiting for a human: borderline scores, reported content, appeals."""

    __tablename__ = "queue_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    content_kind: Mapped[str] = mapped_column(String(16))
    content_id: Mapped[uuid.UUID] = mapped_column()
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.OPEN)
    score: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64), default="")
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    # Many distinct reporters move an item to the front of the queue.
    escalated: Mapped[bool] = mapped_column(default=False)
    text: Mapped[str] = mapped_column(Text, default="")
    claimed_by: Mapped[uuid.UUID | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # At most one undecided item per piece of content: new reports join it.
        Index(
            "uq_queue_items_open_content",
            "content_kind",
            "content_id",
            unique=True,
            postgresql_where=sql("status <> 'decided'"),
        ),
        Index("ix_queue_items_queue", "status", sql("escalated DESC"), "created_at", "id"),
        Index("ix_queue_items_author", "author_id"),
    )


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reporter_id: Mapped[uuid.UUID | None] = mapped_column()
    content_kind: Mapped[str] = mapped_column(String(16))
    content_id: Mapped[uuid.UUID] = mapped_column()
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("reporter_id", "content_kind", "content_id"),
        Index("ix_reports_content", "content_kind", "content_id"),
        Index("ix_reports_author", "author_id"),
    )


class Decision(Base):
    """The decision log: who (or which model) did what to which content, and why."""

    __tablename__ = "decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    item_id: Mapped[uuid.UUID | None] = mapped_column()
    content_kind: Mapped[str] = mapped_column(String(16))
    content_id: Mapped[uuid.UUID] = mapped_column()
    # Set to NULL when the author's account is deleted: the log is kept, anonymised.
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))
    moderator_id: Mapped[uuid.UUID | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    model_version: Mapped[str] = mapped_column(String(64), default="")
    score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    automatic: Mapped[bool] = mapped_column(default=False)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_decisions_content", "content_kind", "content_id", "decided_at"),
        Index("ix_decisions_author", "author_id"),
    )


class Appeal(Base):
    """An author contests a decision, once."""

    __tablename__ = "appeals"

    decision_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    author_id: Mapped[uuid.UUID | None] = mapped_column()
    text: Mapped[str] = mapped_column(Text, default="")
    item_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# Moderation's events (decisions), written with the decision (zapcore.outbox).
EVENT_OUTBOX = outbox_table(Base.metadata)
