"""Ready media (owner, type, variants with their URLs): media's read model in Redis.

media owns every entry (zapcore.read_models). GetMedias answers from the database and fills
a card for each ready medium it returns; a ready medium never changes until it is deleted,
and a deletion (with its post, or with its owner's account) drops the cards after it
commits. So readers that hydrate many posts (feed pages) read the cards in the page's one
round trip and ask media only for the ids Redis does not know.

Only ready media get a card: a medium still processing is about to change, and posts only
ever name media that were ready when they were posted. An id with no card is simply asked
about again (there is no "gone" mark: an id media does not return to one caller may be
another owner's medium still processing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from zap.media.v1 import media_pb2
from zapcore.read_models import FencedEntries, Fill
from zapcore.redis import Batch

CARD_TTL_SECONDS = 7 * 24 * 3600


@dataclass
class MediaCardsRead:
    found: dict[str, media_pb2.Media] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class MediaCards:
    def __init__(self, redis: Redis) -> None:
        self._entries = FencedEntries(redis, "media")

    def queue_get(self, batch: Batch, media_ids: Sequence[str]) -> slice:
        """Add the reads of these (distinct) media's cards to a batch; where the replies
        are, for `parse` with the same ids."""
        return self._entries.queue_get(batch, media_ids)

    @staticmethod
    def parse(media_ids: Sequence[str], replies: Sequence[bytes | None]) -> MediaCardsRead:
        read = MediaCardsRead()
        for media_id, raw in zip(media_ids, replies, strict=True):
            if raw is None:
                read.missing.append(media_id)
            else:
                read.found[media_id] = media_pb2.Media.FromString(raw)
        return read

    async def generations(self, media_ids: Sequence[str]) -> list[bytes]:
        return await self._entries.generations(media_ids)

    async def fill(
        self,
        media_ids: Sequence[str],
        generations: Sequence[bytes],
        found: Iterable[media_pb2.Media],
    ) -> int:
        """Cards for the ready media among `found` (each only if no deletion raced its
        read); `generations` as read for `media_ids` before the database was."""
        generation_of = dict(zip(media_ids, generations, strict=True))
        fills = [
            Fill(m.id, generation_of[m.id], m.SerializeToString(), CARD_TTL_SECONDS)
            for m in found
            if m.status == media_pb2.MEDIA_STATUS_READY and m.id in generation_of
        ]
        return await self._entries.fill(fills)

    async def invalidate(self, media_ids: Iterable[str]) -> None:
        await self._entries.invalidate(media_ids)

    async def forget(self, media_ids: Iterable[str]) -> None:
        """A deleted account's media: their cards and generations go (a card names its
        owner)."""
        await self._entries.forget(media_ids)
