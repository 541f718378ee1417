"""notification's tables: notifications, each recipient's cursor, and delivery bookkeeping.

notification stores bare user, post and comment ids: they live in auth and feed, so there
are no foreign keys to them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, DateTime, Index, String, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from zapcore.db import service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()


class Notification(Base):
    """One thing to tell a recipient; repeats of the same thing are grouped into one row."""

    __tablename__ = "notifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    recipient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # follow, like, comment, mention, share, moderation (services/notification/delivery/rules.py).
    kind: Mapped[str] = mapped_column(String(16))
    # What repeats are grouped by ("like:<post id>", "follow"); empty for kinds never grouped.
    group_key: Mapped[str] = mapped_column(String(64))
    # The most recent actors first (a few); actor_count counts every distinct one.
    actor_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    actor_count: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Moderation outcomes: "removed", "shadow_banned", "approved", and why.
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The recipient's change sequence: every new or regrouped notification takes the next
    # value of RecipientSequence, under its row lock, so one recipient's cursors are
    # committed in increasing order and "everything after N" misses nothing.
    cursor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # Replay (ascending), lists (descending) and "mark read up to".
        Index("ix_notifications_recipient_cursor", "recipient_id", "cursor", unique=True),
        # Unread counts and unread-only lists touch unread rows only.
        Index(
            "ix_notifications_unread",
            "recipient_id",
            "cursor",
            postgresql_where=text("read_at IS NULL"),
        ),
        # The open group a repeat joins: the latest of its key.
        Index(
            "ix_notifications_group",
            "recipient_id",
            "group_key",
            "created_at",
            postgresql_where=text("group_key <> ''"),
        ),
        # Retention.
        Index("ix_notifications_updated", "updated_at"),
    )


class RecipientSequence(Base):
    """The last cursor given to a recipient's notifications. Its row lock serialises the
    deliveries to one recipient: grouping decisions never race, and cursors commit in order."""

    __tablename__ = "recipient_sequences"

    recipient_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    last_cursor: Mapped[int] = mapped_column(BigInteger)


class NotificationActor(Base):
    """Who already acted on what of the recipient's: a like, share or follow notifies once per
    actor (like, unlike, like again is one notification), and grouped counts stay exact."""

    __tablename__ = "notification_actors"

    recipient_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    group_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The grouped notification this actor is counted in.
    notification_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    acted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # A block takes the blocked actor out of the blocker's notifications.
        Index("ix_notification_actors_actor", "actor_id", "recipient_id"),
        Index("ix_notification_actors_acted", "acted_at"),
    )


class DeliveredEvent(Base):
    """Events already turned into a notification for a recipient: delivery is at least once,
    so a redelivered event is recognised here and changes nothing."""

    __tablename__ = "delivered_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    recipient_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_delivered_events_delivered", "delivered_at"),)
