"""Posts' ready images with their variants: from media's read model in Redis, with media
asked only for the ones it has not filled yet (zapcore.media_cards)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from zap.feed.v1 import feed_pb2
from zap.media.v1 import media_pb2
from zapcore.logging import get_logger
from zapcore.media_cards import MediaCards, MediaCardsRead
from zapcore.redis import Batch

if TYPE_CHECKING:
    from zap.media.v1.media_pb2_grpc import MediaServiceAsyncStub as MediaClient

log = get_logger(__name__)

# GetMedias answers at most this many ids a call.
_MEDIA_BATCH = 100
# Without media, posts are shown without their images rather than not at all.
_DEGRADED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass(frozen=True)
class QueuedMedia:
    """The media cards a batch reads: whose, and where their replies are."""

    media_ids: list[str]
    replies: slice


class Images:
    def __init__(self, cards: MediaCards, media: MediaClient) -> None:
        self._cards = cards
        self._media = media

    def queue(self, batch: Batch, posts: Sequence[feed_pb2.Post]) -> QueuedMedia:
        """Add the reads of these posts' media cards to a batch another read sends."""
        wanted = list(dict.fromkeys(m for post in posts for m in post.media_ids))
        return QueuedMedia(wanted, self._cards.queue_get(batch, wanted))

    async def attach_queued(
        self, queued: QueuedMedia, replies: Sequence[Any] | None, posts: Sequence[feed_pb2.Post]
    ) -> None:
        """Set each post's ready media, in its media_ids order, from the cards a batch read
        (None: Redis could not answer, media is asked about all of them)."""
        if not queued.media_ids:
            return
        if replies is None:
            known = MediaCardsRead(missing=list(queued.media_ids))
        else:
            known = MediaCards.parse(queued.media_ids, replies[queued.replies])
        found = known.found
        found.update(await self._asked(known.missing))
        for post in posts:
            del post.media[:]
            post.media.extend(found[m] for m in post.media_ids if m in found)

    async def _asked(self, media_ids: list[str]) -> dict[str, media_pb2.Media]:
        """Ready media from media itself (which fills their cards)."""
        ready: dict[str, media_pb2.Media] = {}
        for start in range(0, len(media_ids), _MEDIA_BATCH):
            request = media_pb2.GetMediasRequest(media_ids=media_ids[start : start + _MEDIA_BATCH])
            try:
                answer = await self._media.GetMedias(request)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _DEGRADED:
                    raise
                log.warning("feed.media_unavailable", code=error.code().name)
                return ready
            ready.update(
                (m.id, m) for m in answer.medias if m.status == media_pb2.MEDIA_STATUS_READY
            )
        return ready
