"""Media that leave with their post: feed's `PostDeleted` names the deleted post's media,
and every object and record of those media is removed.

The ids come from an event, so they are not taken on trust: only media owned by the post's
author are touched. Re-delivery is harmless (deleted media are found again, or not at all).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.media.library.repository import MediaRepository
from services.media.object_store import media_prefix
from services.media.resources import MediaResources
from zap.events.v1 import events_pb2
from zapcore.logging import get_logger

log = get_logger(__name__)

DELETED_WITH_POST = "deleted with its post"


class PostMediaRemoval:
    """The handler of feed events (media's consumer group on the feed topic)."""

    def __init__(self, resources: MediaResources) -> None:
        self._r = resources

    async def handle(self, env: events_pb2.Envelope) -> None:
        if env.WhichOneof("payload") != "post_deleted" or not env.post_deleted.media_ids:
            return
        deleted = env.post_deleted
        try:
            author_id = uuid.UUID(deleted.author_id)
        except ValueError:
            log.warning("media.post_deleted_unreadable", event_id=env.id)
            return
        media_ids = _ids(deleted.media_ids)
        removed = await remove_media(self._r, author_id, media_ids, reason=DELETED_WITH_POST)
        if removed != len(media_ids):
            # Someone else's media, unknown ids, or media already gone: nothing to do for them.
            log.info(
                "media.post_media_skipped",
                post_id=deleted.post_id,
                asked=len(media_ids),
                removed=removed,
            )


async def remove_media(
    resources: MediaResources, owner_id: uuid.UUID, media_ids: Sequence[uuid.UUID], *, reason: str
) -> int:
    """Delete the owner's media among `media_ids`, every object included; how many.

    The records are marked deleted first, so a processing job still rendering one of them
    cannot make it ready afterwards (it deletes what it wrote instead), and a retry after a
    store failure finds them again. Then the objects go: the raw upload and everything under
    the media's variant prefix. A record whose presigned upload could still receive a file
    stays as a tombstone (invisible to every read); the upload sweeper empties its raw key
    once that upload has expired, and removes it.
    """
    now = datetime.now(UTC)
    async with resources.db.unit_of_work() as session:
        retired = await MediaRepository(session).retire(owner_id, media_ids, reason=reason, now=now)
    if not retired:
        return 0
    # Readers stop showing them now; a Redis error fails the handler, whose retry finds the
    # same rows again.
    await resources.cards.invalidate(str(m.id) for m in retired)
    store = resources.store
    await store.delete([m.upload_key for m in retired])
    objects = 0
    for media in retired:
        objects += await store.delete_prefix(media_prefix(media.owner_id, media.id))
    closed_before = now - timedelta(seconds=resources.settings.stale_upload_grace_seconds)
    finished = [
        m.id
        for m in retired
        if m.upload_cleared_at is not None or m.upload_expires_at < closed_before
    ]
    async with resources.db.unit_of_work() as session:
        await MediaRepository(session).delete_retired(finished)
    log.info(
        "media.removed",
        owner_id=str(owner_id),
        media=len(retired),
        variant_objects=objects,
        tombstones=len(retired) - len(finished),
    )
    return len(retired)


def _ids(values: Sequence[str]) -> list[uuid.UUID]:
    """The well-formed ids, each once (a malformed one names no media)."""
    found: dict[uuid.UUID, None] = {}
    for value in values:
        try:
            found[uuid.UUID(value)] = None
        except ValueError:
            continue
    return list(found)
