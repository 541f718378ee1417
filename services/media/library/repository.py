"""SQL for media records and their variants."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from services.media.models import Media, MediaStatus, MediaVariant


class MediaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, media: Media) -> Media:
        self._s.add(media)
        await self._s.flush()
        return media

    # Reads never see deleted media (tombstones waiting for the sweeper).

    async def get(self, media_id: uuid.UUID) -> Media | None:
        """With its variants."""
        result = await self._s.execute(
            select(Media)
            .where(Media.id == media_id, Media.deleted_at.is_(None))
            .options(selectinload(Media.variants))
        )
        return result.scalar_one_or_none()

    async def many(self, media_ids: Sequence[uuid.UUID]) -> list[Media]:
        """With their variants, in two round trips whatever the number."""
        if not media_ids:
            return []
        result = await self._s.execute(
            select(Media)
            .where(Media.id.in_(media_ids), Media.deleted_at.is_(None))
            .options(selectinload(Media.variants))
        )
        return list(result.scalars())

    async def owned_by(self, owner_id: uuid.UUID) -> list[Media]:
        result = await self._s.execute(
            select(Media)
            .where(Media.owner_id == owner_id, Media.deleted_at.is_(None))
            .options(selectinload(Media.variants))
            .order_by(Media.created_at, Media.id)
        )
        return list(result.scalars())

    # State changes are conditional on the state they leave, so two racing callers (a retried
    # completion, a re-delivered job) cannot both make the same move.

    async def start_processing(
        self, media_id: uuid.UUID, *, size_bytes: int, etag: str, now: datetime
    ) -> bool:
        result = await self._s.execute(
            update(Media)
            .where(Media.id == media_id, Media.status == MediaStatus.PENDING.value)
            .values(
                status=MediaStatus.PROCESSING.value,
                size_bytes=size_bytes,
                upload_etag=etag,
                completed_at=now,
            )
            .returning(Media.id)
        )
        return result.first() is not None

    async def fail(
        self, media_id: uuid.UUID, reason: str, *, now: datetime, from_status: Sequence[str]
    ) -> bool:
        result = await self._s.execute(
            update(Media)
            .where(Media.id == media_id, Media.status.in_(list(from_status)))
            .values(status=MediaStatus.FAILED.value, failure_reason=reason[:200], processed_at=now)
            .returning(Media.id)
        )
        return result.first() is not None

    async def finish(
        self, media_id: uuid.UUID, variants: Sequence[dict[str, Any]], *, now: datetime
    ) -> bool:
        """Processing → ready with its variants (replacing any from an earlier attempt)."""
        result = await self._s.execute(
            update(Media)
            .where(Media.id == media_id, Media.status == MediaStatus.PROCESSING.value)
            .values(status=MediaStatus.READY.value, processed_at=now)
            .returning(Media.id)
        )
        if result.first() is None:
            return False
        statement = pg_insert(MediaVariant).values([{**v, "media_id": media_id} for v in variants])
        await self._s.execute(
            statement.on_conflict_do_update(
                index_elements=[MediaVariant.media_id, MediaVariant.name],
                set_={
                    column: statement.excluded[column]
                    for column in ("key", "mime_type", "width", "height", "size_bytes")
                },
            )
        )
        return True

    # Upkeep.

    async def uncleared_uploads(self, expired_before: datetime, limit: int) -> list[Media]:
        """Media whose presigned upload has expired and whose raw key was not yet emptied;
        processing ones are left to their job."""
        result = await self._s.execute(
            select(Media)
            .where(
                Media.upload_cleared_at.is_(None),
                Media.upload_expires_at < expired_before,
                Media.status != MediaStatus.PROCESSING.value,
            )
            .order_by(Media.upload_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(result.scalars())

    async def mark_cleared(self, media_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._s.execute(
            update(Media).where(Media.id.in_(list(media_ids))).values(upload_cleared_at=now)
        )

    async def expire_pending(self, media_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self._s.execute(
            update(Media)
            .where(Media.id.in_(list(media_ids)), Media.status == MediaStatus.PENDING.value)
            .values(
                status=MediaStatus.FAILED.value,
                failure_reason="the upload was not completed in time",
                processed_at=now,
            )
        )

    async def stuck_processing(self, completed_before: datetime, limit: int) -> list[uuid.UUID]:
        result = await self._s.execute(
            select(Media.id)
            .where(
                Media.status == MediaStatus.PROCESSING.value,
                Media.completed_at < completed_before,
            )
            .order_by(Media.completed_at)
            .limit(limit)
        )
        return list(result.scalars())

    async def lock_given_up(self, completed_before: datetime, limit: int) -> list[Media]:
        """Media processing since before `completed_before`, locked (SKIP LOCKED)."""
        result = await self._s.execute(
            select(Media)
            .where(
                Media.status == MediaStatus.PROCESSING.value,
                Media.completed_at < completed_before,
            )
            .order_by(Media.completed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(result.scalars())

    # Deletion.

    async def retire(
        self, owner_id: uuid.UUID, media_ids: Sequence[uuid.UUID], *, reason: str, now: datetime
    ) -> list[Media]:
        """Mark the owner's media among `media_ids` deleted (ids of anyone else's are left
        alone) and drop their variants; the deleted rows, including any deleted before.

        Whatever state each was in, it leaves it for `failed`: a processing job that is still
        rendering cannot make it ready any more, and deletes what it wrote."""
        if not media_ids:
            return []
        result = await self._s.execute(
            update(Media)
            .where(Media.id.in_(list(media_ids)), Media.owner_id == owner_id)
            .values(
                status=MediaStatus.FAILED.value,
                failure_reason=reason[:200],
                processed_at=func.coalesce(Media.processed_at, now),
                deleted_at=func.coalesce(Media.deleted_at, now),
            )
            .returning(Media)
            .execution_options(synchronize_session=False)
        )
        retired = list(result.scalars())
        if retired:
            await self._s.execute(
                delete(MediaVariant).where(MediaVariant.media_id.in_([m.id for m in retired]))
            )
        return retired

    async def delete_retired(self, media_ids: Sequence[uuid.UUID]) -> int:
        """Remove the tombstones among `media_ids` (live media are never touched)."""
        if not media_ids:
            return 0
        result = await self._s.execute(
            delete(Media)
            .where(Media.id.in_(list(media_ids)), Media.deleted_at.is_not(None))
            .returning(Media.id)
        )
        return len(result.all())

    async def delete_owned_by(self, owner_id: uuid.UUID) -> list[uuid.UUID]:
        result = await self._s.execute(
            delete(Media).where(Media.owner_id == owner_id).returning(Media.id)
        )
        return list(result.scalars())
