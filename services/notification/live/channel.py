"""The live channel: Redis pub/sub, one channel per recipient.

The deliver worker publishes each notification after the transaction that stored it has
committed; every notification process that streams to the recipient is subscribed, wherever
the worker and the process run (fan-in across instances). Pub/sub keeps nothing, so it is only
the fast path: the database is the record, and Subscribe replays from it and fills any gap.
A message is the recipient's cursor (8 bytes, big-endian) followed by the Notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from zap.notification.v1 import notification_pb2
from zapcore.logging import get_logger

log = get_logger(__name__)

_PREFIX = "zap:notifications:live:"
_CURSOR_BYTES = 8


def channel_name(recipient_id: uuid.UUID) -> bytes:
    return f"{_PREFIX}{recipient_id}".encode()


@dataclass(frozen=True, slots=True)
class LiveMessage:
    cursor: int
    notification: notification_pb2.Notification


def frame(cursor: int, notification: notification_pb2.Notification) -> bytes:
    return cursor.to_bytes(_CURSOR_BYTES, "big") + notification.SerializeToString()


def unframe(data: bytes) -> LiveMessage:
    """The message in `data`; ValueError (DecodeError) when it is not one."""
    if len(data) < _CURSOR_BYTES:
        raise ValueError("live message too short")
    cursor = int.from_bytes(data[:_CURSOR_BYTES], "big")
    return LiveMessage(cursor, notification_pb2.Notification.FromString(data[_CURSOR_BYTES:]))


@dataclass(frozen=True, slots=True)
class Announcement:
    """A stored notification to publish on its recipient's channel."""

    recipient_id: uuid.UUID
    cursor: int
    notification: notification_pb2.Notification


class LivePublisher:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(
        self, recipient_id: uuid.UUID, cursor: int, notification: notification_pb2.Notification
    ) -> None:
        """Best effort: a lost message reaches the recipient on the next resync instead."""
        try:
            await self._redis.publish(channel_name(recipient_id), frame(cursor, notification))
        except RedisError as error:
            log.warning("notification.live_publish_failed", error=str(error))

    async def publish_many(self, announcements: Sequence[Announcement]) -> None:
        """Several messages in one round trip (a delivered batch); best effort, as above."""
        if not announcements:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for a in announcements:
                    pipe.publish(channel_name(a.recipient_id), frame(a.cursor, a.notification))
                await pipe.execute()
        except RedisError as error:
            log.warning("notification.live_publish_failed", error=str(error))
