"""Subscribe: replay from a cursor, then live, with neither gaps nor duplicates.

1. Subscribe to the recipient's live channel and wait until Redis confirms it. From then on
   everything committed is also published to us (the worker publishes after its commit).
2. Replay from the database everything after the client's cursor, in cursor order. It may
   overlap what step 1 queues meanwhile; nothing can fall between the two.
3. Stream the queue, dropping what is at or below the position already sent. One recipient's
   deliveries are serialised and take consecutive cursors, so a live message that is not the
   next one means some message is late or lost: the database is read again from the position
   (everything up to that message has committed), and the late one is dropped when it comes.
4. When quiet, send a heartbeat carrying the position (one also follows the replay at once),
   and every so often compare the position with the database, so a message lost on the way
   is never lost for good.
A subscriber whose queue overflows is closed (RESOURCE_EXHAUSTED, slow-consumer) and
reconnects from its cursor; the hub's reader and every other stream carry on unaffected.
When the server begins to shut down, every stream ends at once (UNAVAILABLE,
shutting-down) instead of holding the grace period; the gateway resumes it from its cursor.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc

from services.notification.inbox.converters import notification_to_proto
from services.notification.inbox.repository import InboxRepository
from services.notification.live.channel import LiveMessage
from services.notification.live.hub import LiveHub, Resync, ShuttingDown, Subscriber
from services.notification.resources import NotificationResources
from zap.notification.v1 import notification_pb2
from zapcore.errors import ZapError
from zapcore.timestamps import to_timestamp

Response = notification_pb2.SubscribeResponse


class SlowConsumer(ZapError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "slow-consumer"
    title = "Too slow"


class LiveStream:
    def __init__(self, resources: NotificationResources, hub: LiveHub) -> None:
        self._r = resources
        self._hub = hub

    async def subscribe(self, user_id: uuid.UUID, cursor: str) -> AsyncIterator[Response]:
        settings = self._r.settings
        start = self._r.cursors.parse_position(cursor) if cursor else None
        loop = asyncio.get_running_loop()
        async with self._hub.subscription(user_id) as live:
            last = await self._last_cursor(user_id)
            # A cursor beyond the recipient's sequence (another account's, or from before a
            # restore) would make every live message look old: start from what exists.
            position = last if start is None else min(start, last)
            async for at, message in self._changes_after(user_id, position, live):
                position = at
                yield Response(notification=message)
            if live.overflowed:
                # The replay was long enough for the live queue to fill: that was our doing,
                # not the client's, so the dropped messages are read again instead.
                live.clear()
                async for at, message in self._changes_after(user_id, position, live):
                    position = at
                    yield Response(notification=message)
            yield self._heartbeat(position)
            resync_at = loop.time() + _jittered(settings.resync_seconds)
            while True:
                _check_not_ended(live)
                item = await live.next(_jittered(settings.heartbeat_seconds))
                _check_not_ended(live)
                if live.overflowed:
                    raise SlowConsumer(
                        "live notifications were not read fast enough; reconnect from your cursor"
                    )
                if item is None or isinstance(item, Resync) or item.cursor > position + 1:
                    due = item is not None or loop.time() >= resync_at
                    if due:
                        resync_at = loop.time() + _jittered(settings.resync_seconds)
                        async for at, message in self._changes_after(user_id, position, live):
                            position = at
                            yield Response(notification=message)
                    if item is None:
                        yield self._heartbeat(position)
                if isinstance(item, LiveMessage) and item.cursor > position:
                    position = item.cursor
                    yield Response(notification=item.notification)

    async def _changes_after(
        self, user_id: uuid.UUID, position: int, live: Subscriber
    ) -> AsyncIterator[tuple[int, notification_pb2.Notification]]:
        """Everything stored after `position`, in order, a batch per query."""
        batch = self._r.settings.replay_batch_size
        while True:
            _check_not_ended(live)
            async with self._r.db.read_only() as session:
                rows = await InboxRepository(session).after(user_id, position, batch)
            for row in rows:
                position = row.cursor
                yield row.cursor, notification_to_proto(row, self._r.cursors)
            if len(rows) < batch:
                return

    async def _last_cursor(self, user_id: uuid.UUID) -> int:
        async with self._r.db.read_only() as session:
            return await InboxRepository(session).last_cursor(user_id)

    def _heartbeat(self, position: int) -> Response:
        return Response(
            heartbeat=notification_pb2.Heartbeat(
                sent_at=to_timestamp(datetime.now(UTC)), cursor=self._r.cursors.position(position)
            )
        )


def _check_not_ended(live: Subscriber) -> None:
    if live.ended:
        raise ShuttingDown("this server is shutting down; resume from your cursor")


def _jittered(seconds: float) -> float:
    """Within 20% of `seconds`: streams opened together (a deploy, a reconnect storm) must not
    all send heartbeats and query the database in the same instant for ever after."""
    return seconds * random.uniform(0.8, 1.2)  # noqa: S311 (timing jitter, not a secret)
