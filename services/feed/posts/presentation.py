"""What a read adds to posts before they leave feed: their authors' cards and their ready
images, both from read models in Redis, in one round trip (authors.py, images.py). A post
whose author's account is gone gets no card; callers leave it out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.feed.posts.authors import Authors, QueuedCards
from services.feed.posts.images import Images, QueuedMedia
from zap.feed.v1 import feed_pb2
from zapcore.redis import Batch


@dataclass(frozen=True)
class QueuedPresentation:
    authors: QueuedCards
    media: QueuedMedia


class Presentation:
    def __init__(self, redis: Redis, authors: Authors, images: Images) -> None:
        self._redis = redis
        self._authors = authors
        self._images = images

    def queue(self, batch: Batch, posts: Sequence[feed_pb2.Post]) -> QueuedPresentation:
        """Add the reads these posts need to a batch another read sends (`finish` them)."""
        return QueuedPresentation(
            self._authors.queue(batch, posts), self._images.queue(batch, posts)
        )

    async def finish(
        self,
        queued: QueuedPresentation,
        replies: Sequence[Any] | None,
        posts: Sequence[feed_pb2.Post],
    ) -> None:
        """Attach what the batch read (None: Redis could not answer, the owners are asked)."""
        await self._authors.attach_queued(queued.authors, replies, posts)
        await self._images.attach_queued(queued.media, replies, posts)

    async def attach(self, posts: Sequence[feed_pb2.Post]) -> None:
        batch = Batch()
        queued = self.queue(batch, posts)
        try:
            replies: list[Any] | None = await batch.run(self._redis)
        except RedisError:
            replies = None
        await self.finish(queued, replies, posts)
