"""graph's tables: follow edges, blocks, mutes and the follower counts derived from them.

graph stores bare user ids: users live in auth, so there are no foreign keys to them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from zapcore.db import service_metadata
from zapcore.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = service_metadata()


class Follow(Base):
    """follower_id follows followee_id."""

    __tablename__ = "follows"

    # The primary key leads with the followee: "every follower of X in id order" (the
    # fanout stream) is then a keyset range scan of the key itself, and relationship
    # lookups in either direction are key probes. Lists by time use the two indexes below.
    followee_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    follower_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # A user's followers, newest first: keyset on (created_at, follower_id).
        Index("ix_follows_followee_recent", "followee_id", "created_at", "follower_id"),
        # The accounts a user follows, newest first: keyset on (created_at, followee_id).
        Index("ix_follows_follower_recent", "follower_id", "created_at", "followee_id"),
    )


class Block(Base):
    """blocker_id blocked blocked_id: no follows either way while it lasts."""

    __tablename__ = "blocks"

    blocker_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # "Who blocked me?" on every follow and every feed read.
    __table_args__ = (Index("ix_blocks_blocked", "blocked_id", "blocker_id"),)


class Mute(Base):
    """muter_id does not want to see muted_id's content; follows are unaffected."""

    __tablename__ = "mutes"

    muter_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    muted_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # Account deletion removes the rows that name a user on either side.
    __table_args__ = (Index("ix_mutes_muted", "muted_id"),)


class UserCounts(Base):
    """Follower and following counts, changed in the transaction that changes an edge."""

    __tablename__ = "user_counts"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    followers: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    following: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    # "Which of the accounts I follow are above the fanout threshold?" starts from the few
    # users above it (a short range of this index), not from everyone the reader follows.
    __table_args__ = (Index("ix_user_counts_followers", "followers"),)


# Graph's events, written with the change they announce (zapcore.outbox).
EVENT_OUTBOX = outbox_table(Base.metadata)
