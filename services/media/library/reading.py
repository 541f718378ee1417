"""Reads: one media, a batch of media, everything one owner has.

Owners see their media in every state; anyone else sees only ready media (what posts show),
and an id they may not see is answered as unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.exceptions import RedisError

from services.media.library.converters import media_to_proto
from services.media.library.errors import media_not_found
from services.media.library.repository import MediaRepository
from services.media.models import Media, MediaStatus
from services.media.resources import MediaResources
from zap.media.v1 import media_pb2
from zapcore.errors import InvalidArgument
from zapcore.ids import parse_id, parse_ids
from zapcore.logging import get_logger

log = get_logger(__name__)

MAX_BATCH = 100


def visible_to(media: Media, viewer_id: uuid.UUID | None) -> bool:
    return media.owner_id == viewer_id or media.status == MediaStatus.READY


class Reading:
    def __init__(self, resources: MediaResources) -> None:
        self._r = resources

    async def media(self, media_id: str, viewer_id: uuid.UUID | None) -> Media:
        mid = parse_id(media_id, "media_id")
        async with self._r.db.read_only() as session:
            media = await MediaRepository(session).get(mid)
        if media is None or not visible_to(media, viewer_id):
            raise media_not_found()
        return media

    async def medias(
        self, media_ids: Sequence[str], viewer_id: uuid.UUID | None
    ) -> list[media_pb2.Media]:
        """In the order asked; unknown and invisible ids left out. The ready ones' cards are
        filled on the way (zapcore.media_cards), so readers of many posts find them in Redis
        next time."""
        if len(media_ids) > MAX_BATCH:
            raise InvalidArgument(
                f"at most {MAX_BATCH} ids per call", fields={"media_ids": f"at most {MAX_BATCH}"}
            )
        ids = list(dict.fromkeys(parse_ids(list(media_ids), "media_ids")))
        keys = [str(i) for i in ids]
        try:
            # Read before the database is, so a deletion committed meanwhile fences the fill.
            generations: list[bytes] | None = await self._r.cards.generations(keys)
        except RedisError:
            generations = None
        async with self._r.db.read_only() as session:
            found = {m.id: m for m in await MediaRepository(session).many(ids)}
        shown = [
            media_to_proto(found[i], self._r.public_base_url)
            for i in ids
            if i in found and visible_to(found[i], viewer_id)
        ]
        if generations is not None:
            try:
                await self._r.cards.fill(keys, generations, shown)
            except RedisError as error:
                log.warning("media.cards_not_filled", error=str(error))
        return shown

    async def owned_by(self, owner_id: uuid.UUID) -> list[Media]:
        async with self._r.db.read_only() as session:
            return await MediaRepository(session).owned_by(owner_id)
