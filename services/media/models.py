"""media's tables: uploaded media objects and the variants made from them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from zapcore.db import service_metadata
from zapcore.ids import new_id


class Base(DeclarativeBase):
    metadata = service_metadata()


class MediaStatus(StrEnum):
    PENDING = "pending"  # presigned, waiting for the upload and the completion call
    PROCESSING = "processing"  # checked and queued; the worker makes the variants
    READY = "ready"
    FAILED = "failed"  # refused; its objects were deleted


class Media(Base):
    __tablename__ = "media"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Where the client uploads the raw file: uploads/<owner>/<id>, chosen by the server.
    upload_key: Mapped[str] = mapped_column(String(200))
    # What the client declared at presign (the policy holds the store to it).
    mime_type: Mapped[str] = mapped_column(String(32))
    declared_size_bytes: Mapped[int] = mapped_column(BigInteger)
    # What was really stored, read from the store at completion.
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    upload_etag: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=MediaStatus.PENDING.value)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    upload_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the raw upload key is known to be empty for good (its presigned POST expired
    # and whatever was sent to it is deleted): the raw file may carry EXIF/GPS.
    upload_cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the media was deleted (with the post that showed it): its objects are gone and
    # every read treats it as unknown; the row only waits, as a tombstone, until its raw
    # upload key can no longer receive a file, and the sweeper then empties it for good.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    variants: Mapped[list[MediaVariant]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'processing', 'ready', 'failed')", name="status_known"
        ),
        Index("ix_media_owner", "owner_id", text("created_at DESC")),
        # The sweeper's work list: raw uploads that may still hold a file.
        Index(
            "ix_media_uncleared_uploads",
            "upload_expires_at",
            postgresql_where=text("upload_cleared_at IS NULL"),
        ),
        Index(
            "ix_media_processing",
            "completed_at",
            postgresql_where=text("status = 'processing'"),
        ),
    )


class MediaVariant(Base):
    """One re-encoded rendition (thumbnail, medium, original) stored at media/<owner>/<id>/."""

    __tablename__ = "media_variants"

    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    mime_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
