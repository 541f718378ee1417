"""The processing job: download the checked upload, render clean variants, store them.

Idempotent: a job for media that is no longer processing does nothing; a re-run after a
crash overwrites the same variant keys with the same bytes. Whatever the outcome, the raw
upload (which may carry EXIF/GPS) is deleted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from arq import Retry
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from services.media.formats import EXTENSIONS, KIND_OF_MIME
from services.media.library.repository import MediaRepository
from services.media.models import Media, MediaStatus
from services.media.object_store import ObjectChanged, ObjectMissing, ObjectTooLarge, variant_key
from services.media.processing.images import OUTPUT_KIND, VARIANT_ORDER, ImageRejected
from services.media.processing.pool import RenderPool
from services.media.resources import MediaResources
from zapcore.db import database_unavailable
from zapcore.logging import get_logger

log = get_logger(__name__)

CANNOT_PROCESS = "the image could not be processed; upload it again"

# Transient failures (of the store or of the database) are retried this many times, a little
# later each time; past them, the upkeep queues the media again, until it gives up on it.
MAX_TRIES = 5
_TRANSIENT = (BotoCoreError, ClientError, OSError)


def transient(error: BaseException) -> bool:
    """Whether a failure may pass by itself (the store or the database down, unreachable,
    overloaded, too slow), rather than being a bug or a bad file."""
    return database_unavailable(error, also=_TRANSIENT)


class Processing:
    def __init__(self, resources: MediaResources, renderer: RenderPool) -> None:
        self._r = resources
        self._renderer = renderer

    async def run(self, media_id: uuid.UUID, *, attempt: int = 1) -> str:
        """The outcome: "ready", "failed", "skipped" or "deferred" (to the upkeep)."""
        try:
            async with self._r.db.read_only() as session:
                media = await MediaRepository(session).get(media_id)
            if media is None or media.status != MediaStatus.PROCESSING:
                return "skipped"
            return await self._process(media)
        except Exception as error:
            if not transient(error):
                raise  # the job fails; the upkeep queues it again, then gives up on it
            if attempt >= MAX_TRIES:
                # Still processing: the upkeep queues it again in a few minutes, and fails it
                # with a reason once it has tried for processing_give_up_after_seconds.
                log.error("media.processing_deferred", media_id=str(media_id), error=str(error))
                return "deferred"
            log.warning("media.processing_retry", media_id=str(media_id), error=str(error)[:200])
            raise Retry(defer=attempt * 5) from error

    async def _process(self, media: Media) -> str:
        kind = KIND_OF_MIME[media.mime_type]
        try:
            data = await self._r.store.read(
                media.upload_key,
                etag=media.upload_etag or "",
                max_bytes=self._r.settings.max_bytes(kind),
            )
        except (ObjectMissing, ObjectChanged):
            return await self.fail(media, "the upload was replaced or removed after completion")
        except ObjectTooLarge:
            return await self.fail(media, "the uploaded file is larger than allowed")
        try:
            rendered = await self._renderer.render(data, kind)
        except ImageRejected as rejected:
            log.info("media.image_rejected", media_id=str(media.id), reason=rejected.reason)
            return await self.fail(media, rejected.detail)
        del data
        keys = [variant_key(media.owner_id, media.id, v.name, v.extension) for v in rendered]
        await asyncio.gather(
            *(
                self._r.store.put(key, v.data, content_type=v.mime_type)
                for key, v in zip(keys, rendered, strict=True)
            )
        )
        rows = [
            {
                "name": v.name,
                "key": key,
                "mime_type": v.mime_type,
                "width": v.width,
                "height": v.height,
                "size_bytes": len(v.data),
            }
            for key, v in zip(keys, rendered, strict=True)
        ]
        async with self._r.db.unit_of_work() as session:
            finished = await MediaRepository(session).finish(media.id, rows, now=datetime.now(UTC))
        if not finished:
            async with self._r.db.read_only() as session:
                current = await MediaRepository(session).get(media.id)
            if current is None or current.status != MediaStatus.READY:
                # Failed or removed meanwhile (account deletion): what was just stored goes too.
                await self._r.store.delete(keys)
            return "skipped"
        await self._delete_quietly([media.upload_key])
        log.info("media.ready", media_id=str(media.id))
        return "ready"

    async def fail(self, media: Media, reason: str) -> str:
        """Mark failed with the reason and delete every object the media may have."""
        await self._delete_quietly(all_keys(media))
        async with self._r.db.unit_of_work() as session:
            await MediaRepository(session).fail(
                media.id,
                reason,
                now=datetime.now(UTC),
                from_status=[MediaStatus.PROCESSING.value],
            )
        return "failed"

    async def _delete_quietly(self, keys: Sequence[str]) -> None:
        try:
            await self._r.store.delete(keys)
        except _TRANSIENT as error:
            # The sweeper deletes raw uploads once their presigned upload has expired.
            log.warning("media.delete_failed", keys=len(keys), error=str(error)[:200])


def all_keys(media: Media) -> list[str]:
    """The raw upload and every variant key processing could have written."""
    extension = EXTENSIONS[OUTPUT_KIND[KIND_OF_MIME[media.mime_type]]]
    return [
        media.upload_key,
        *(variant_key(media.owner_id, media.id, name, extension) for name in VARIANT_ORDER),
    ]
