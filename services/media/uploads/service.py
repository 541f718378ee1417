"""Presign and complete: how an upload gets into the store and into processing."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from redis.exceptions import RedisError

from services.media.formats import KIND_OF_MIME, MIME_TYPES
from services.media.library.errors import media_not_found
from services.media.library.repository import MediaRepository
from services.media.models import Media, MediaStatus
from services.media.object_store import (
    ObjectChanged,
    ObjectMissing,
    PresignedPost,
    StoredObject,
    store_unavailable,
    upload_key,
)
from services.media.resources import JOB_QUEUE, MediaResources
from services.media.uploads.rules import (
    UploadRefused,
    allowed_kind,
    check_declared_size,
    check_head,
    check_stored,
)
from zapcore.db import after_commit
from zapcore.errors import FailedPrecondition, InvalidArgument, RateLimited
from zapcore.ids import new_id, parse_id
from zapcore.jobs import enqueue as enqueue_job
from zapcore.logging import get_logger

log = get_logger(__name__)

# Enough for every header Pillow reads before the pixels of an ordinary image.
HEAD_BYTES = 64 * 1024
# The presign counters' namespace in the rate limiter (keyed by it and the user id).
PRESIGN_LIMIT_NAMESPACE = "media-presign"


def process_job_id(media_id: uuid.UUID) -> str:
    return f"media:process:{media_id}"


class Uploads:
    def __init__(self, resources: MediaResources) -> None:
        self._r = resources

    async def presign(
        self, owner_id: uuid.UUID, mime_type: str, file_size_bytes: int
    ) -> tuple[Media, PresignedPost]:
        settings = self._r.settings
        kind = allowed_kind(mime_type, settings)
        check_declared_size(kind, file_size_bytes, settings)
        await self._count_presign(owner_id)
        media_id, now = new_id(), datetime.now(UTC)
        key = upload_key(owner_id, media_id)
        media = Media(
            id=media_id,
            owner_id=owner_id,
            upload_key=key,
            mime_type=MIME_TYPES[kind],
            declared_size_bytes=file_size_bytes,
            status=MediaStatus.PENDING.value,
            created_at=now,
            upload_expires_at=now + timedelta(seconds=settings.presign_expiry_seconds),
            variants=[],
        )
        # Recorded before it is signed: no key can receive a file without a row that names it
        # (the sweeper empties what the row names once the upload has expired).
        async with self._r.db.unit_of_work() as session:
            await MediaRepository(session).add(media)
        try:
            upload = await self._r.store.presigned_post(
                key,
                content_type=MIME_TYPES[kind],
                max_bytes=file_size_bytes,
                expires_in=settings.presign_expiry_seconds,
            )
        except (BotoCoreError, ClientError) as error:
            raise store_unavailable(error) from None
        return media, upload

    async def complete(self, owner_id: uuid.UUID, media_id: str) -> Media:
        """Check the stored upload and queue its processing; idempotent."""
        mid = parse_id(media_id, "media_id")
        media = await self._owned(owner_id, mid)
        if media.status in (MediaStatus.PROCESSING, MediaStatus.READY):
            return media
        if media.status == MediaStatus.FAILED:
            raise FailedPrecondition(
                f"this upload was refused: {media.failure_reason}", reason="media-failed"
            )
        kind = KIND_OF_MIME[media.mime_type]
        try:
            stored = await self._r.store.head(media.upload_key)
            head = await self._r.store.read(
                media.upload_key, etag=stored.etag, max_bytes=HEAD_BYTES, first_bytes=HEAD_BYTES
            )
        except ObjectMissing:
            raise await self._nothing_uploaded(media) from None
        except ObjectChanged:
            # Uploaded again between our two reads: the client should complete once it is done.
            raise FailedPrecondition(
                "the upload changed while it was checked; complete it again",
                reason="upload-changed",
            ) from None
        except (BotoCoreError, ClientError, OSError) as error:
            raise store_unavailable(error) from None
        try:
            check_stored(kind, media.declared_size_bytes, stored, self._r.settings.max_bytes(kind))
            check_head(kind, head, self._r.render_spec.limits)
        except UploadRefused as refused:
            raise await self._refuse(media, refused) from None
        return await self._start_processing(media, stored)

    async def _owned(self, owner_id: uuid.UUID, media_id: uuid.UUID) -> Media:
        async with self._r.db.read_only() as session:
            media = await MediaRepository(session).get(media_id)
        if media is None or media.owner_id != owner_id:
            raise media_not_found()
        return media

    async def _start_processing(self, media: Media, stored: StoredObject) -> Media:
        async with self._r.db.unit_of_work() as session:
            started = await MediaRepository(session).start_processing(
                media.id, size_bytes=stored.size, etag=stored.etag, now=datetime.now(UTC)
            )
            if started:
                media_id = media.id

                async def enqueue() -> None:
                    await enqueue_job(
                        self._r.jobs,
                        "process_media",
                        str(media_id),
                        _job_id=process_job_id(media_id),
                        _queue_name=JOB_QUEUE,
                    )

                after_commit(session, enqueue)
        # Whoever won the race, the answer is the media as it is now.
        return await self._owned(media.owner_id, media.id)

    async def _refuse(self, media: Media, refused: UploadRefused) -> InvalidArgument:
        """Delete the object, record the failure, and say why (nothing is left behind)."""
        log.info("media.upload_refused", media_id=str(media.id), reason=refused.reason)
        try:
            await self._r.store.delete([media.upload_key])
        except (BotoCoreError, ClientError, OSError) as error:
            # The sweeper deletes it once the presigned upload has expired.
            log.warning("media.delete_failed", media_id=str(media.id), error=str(error)[:200])
        async with self._r.db.unit_of_work() as session:
            await MediaRepository(session).fail(
                media.id,
                refused.detail,
                now=datetime.now(UTC),
                from_status=[MediaStatus.PENDING.value],
            )
        return InvalidArgument(
            f"the upload was refused: {refused.detail}",
            reason=refused.reason,
            fields={"file": refused.detail},
        )

    async def _nothing_uploaded(self, media: Media) -> FailedPrecondition:
        grace = timedelta(seconds=self._r.settings.stale_upload_grace_seconds)
        if datetime.now(UTC) <= media.upload_expires_at + grace:
            return FailedPrecondition(
                "nothing has been uploaded for this media yet: send the file with the "
                "presigned upload, then complete it",
                reason="upload-missing",
            )
        async with self._r.db.unit_of_work() as session:
            await MediaRepository(session).expire_pending([media.id], datetime.now(UTC))
        return FailedPrecondition(
            "the presigned upload expired before a file was sent; ask for a new one",
            reason="upload-expired",
        )

    async def _count_presign(self, owner_id: uuid.UUID) -> None:
        limiter, user = self._r.limiter, str(owner_id)
        for rule in self._r.presign_rules:
            try:
                if await limiter.hit(rule, PRESIGN_LIMIT_NAMESPACE, user):
                    continue
                stats = await limiter.get_window_stats(rule, PRESIGN_LIMIT_NAMESPACE, user)
            except (RedisError, OSError):
                log.warning("media.ratelimit_unavailable")
                return
            raise RateLimited(
                "too many uploads; try again later",
                retry_after_seconds=max(1, math.ceil(stats.reset_time - time.time())),
            )
