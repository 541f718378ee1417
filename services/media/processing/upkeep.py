"""Housekeeping: raw uploads nobody completed (or re-sent after processing, or after their
media was deleted), processing jobs that were lost, and deleted accounts, whose media leaves
the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from arq.constants import job_key_prefix, result_key_prefix

from services.media.library.repository import MediaRepository
from services.media.models import MediaStatus
from services.media.object_store import owner_prefixes
from services.media.processing.service import CANNOT_PROCESS, all_keys, transient
from services.media.resources import JOB_QUEUE, MediaResources
from services.media.uploads.service import PRESIGN_LIMIT_NAMESPACE, process_job_id
from zapcore.jobs import enqueue
from zapcore.logging import get_logger

log = get_logger(__name__)

SWEEP_BATCH = 500


async def sweep_uploads(resources: MediaResources) -> int:
    """Empty the raw upload keys whose presigned POST has expired (a client may upload to it
    until then, even after a refusal or after processing); uploads never completed fail."""
    now = datetime.now(UTC)
    expired_before = now - timedelta(seconds=resources.settings.stale_upload_grace_seconds)
    cleared = 0
    while True:
        async with resources.db.unit_of_work() as session:
            repository = MediaRepository(session)
            batch = await repository.uncleared_uploads(expired_before, SWEEP_BATCH)
            if not batch:
                break
            # Rows stay locked (SKIP LOCKED for other sweepers) until the objects are gone.
            await resources.store.delete([m.upload_key for m in batch])
            pending = [m.id for m in batch if m.status == MediaStatus.PENDING]
            await repository.expire_pending(pending, now)
            await repository.mark_cleared([m.id for m in batch], now)
            # Deleted media only waited for this (their other objects are gone already).
            await repository.delete_retired([m.id for m in batch if m.deleted_at is not None])
        cleared += len(batch)
        if len(batch) < SWEEP_BATCH:
            break
    if cleared:
        log.info("media.uploads_swept", count=cleared)
    return cleared


async def requeue_stuck(resources: MediaResources) -> int:
    """Queue again the processing of media whose job was lost, crashed or ran out of tries;
    fail, with a reason, those still processing after processing_give_up_after_seconds."""
    now = datetime.now(UTC)
    settings = resources.settings
    try:
        await give_up_stuck(
            resources, now - timedelta(seconds=settings.processing_give_up_after_seconds)
        )
    except Exception as error:
        if not transient(error):
            raise
        # The store or the database is down: the next sweep gives up on them.
        log.warning("media.give_up_failed", error=str(error)[:200])
    before = now - timedelta(seconds=settings.processing_retry_after_seconds)
    async with resources.db.read_only() as session:
        stuck = await MediaRepository(session).stuck_processing(before, SWEEP_BATCH)
    queued = 0
    for media_id in stuck:
        queued += await _queue_processing(resources, media_id)
    if queued:
        log.info("media.processing_requeued", count=queued)
    return queued


async def _queue_processing(resources: MediaResources, media_id: uuid.UUID) -> bool:
    """arq refuses a job id while the job is queued (then nothing is lost) and while a result
    is kept under it: a result left by a job arq itself failed (out of tries, expired) is
    stale once the media is still processing, and goes."""
    job_id = process_job_id(media_id)
    for _ in range(2):
        job = await enqueue(
            resources.jobs, "process_media", str(media_id), _job_id=job_id, _queue_name=JOB_QUEUE
        )
        if job is not None:
            return True
        if await resources.jobs.exists(job_key_prefix + job_id):
            return False
        await resources.jobs.delete(result_key_prefix + job_id)
    return False


async def give_up_stuck(resources: MediaResources, completed_before: datetime) -> int:
    """Fail the media processing since before `completed_before`, and delete their objects."""
    async with resources.db.unit_of_work() as session:
        repository = MediaRepository(session)
        given_up = await repository.lock_given_up(completed_before, SWEEP_BATCH)
        if not given_up:
            return 0
        await resources.store.delete([key for media in given_up for key in all_keys(media)])
        now = datetime.now(UTC)
        for media in given_up:
            await repository.fail(
                media.id, CANNOT_PROCESS, now=now, from_status=[MediaStatus.PROCESSING.value]
            )
    log.warning("media.processing_given_up", count=len(given_up))
    return len(given_up)


async def forget_owner(resources: MediaResources, owner_id: uuid.UUID) -> None:
    """Every object and record of one owner, gone (the account-deletion cascade); idempotent.

    Objects first: a retry after a failure finds the records that still name them. A job
    still processing this owner's upload finds its record gone and deletes what it wrote.
    """
    deleted = 0
    for prefix in owner_prefixes(owner_id):
        deleted += await resources.store.delete_prefix(prefix)
    # A media card names its owner (and so do its URLs): none may be left. Dropped (and
    # fenced) before the rows go, so a retry of the cascade still finds the ids; forgotten
    # altogether after, which also removes a card a GetMedias read just before the delete.
    async with resources.db.read_only() as session:
        owned = [str(m.id) for m in await MediaRepository(session).owned_by(owner_id)]
    await resources.cards.invalidate(owned)
    async with resources.db.unit_of_work() as session:
        removed = await MediaRepository(session).delete_owned_by(owner_id)
    await resources.cards.forget([*owned, *(str(m) for m in removed)])
    # The presign counters are keyed by the user id (the daily one lives a day).
    for rule in resources.presign_rules:
        await resources.limiter.clear(rule, PRESIGN_LIMIT_NAMESPACE, str(owner_id))
    log.info("media.owner_forgotten", user_id=str(owner_id), objects=deleted, records=len(removed))
