"""One Redis pub/sub connection per notification process, shared by all its streams.

A stream subscribes to its recipient's channel through the hub and gets a bounded queue. The
hub's reader never waits for a subscriber: a full queue marks that subscriber overflowed
(the stream then closes it) and everyone else is served as before.

A subscription counts only once Redis has confirmed it, because Subscribe reads its replay
from the database after that moment: anything committed later is then certain to arrive
live. Redis confirms subscribe commands in the order they were sent, so each confirmation
belongs to the oldest unconfirmed subscription of its channel; one that arrives unasked
(after the connection was lost and remade) tells that channel's streams to resync from the
database, since messages published in between are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from services.notification.live.channel import LiveMessage, channel_name, unframe
from zapcore.errors import Unavailable, ZapError
from zapcore.ids import new_id
from zapcore.logging import get_logger

log = get_logger(__name__)


class Overloaded(ZapError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "overloaded"
    title = "Too many live connections"


class ShuttingDown(ZapError):
    # UNAVAILABLE: the gateway resumes the stream from its cursor, on another server.
    code = grpc.StatusCode.UNAVAILABLE
    reason = "shutting-down"
    title = "Shutting down"


class Resync:
    """Queue marker: messages may have been lost; compare with the database."""


RESYNC: Final = Resync()
Item = LiveMessage | Resync


class Subscriber:
    """One stream's live queue."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue(size)
        self.overflowed = False
        # The server is shutting down: the stream should end (its client resumes elsewhere).
        self.ended = False

    def offer(self, item: Item) -> None:
        if self.overflowed or self.ended:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, quiet_seconds: float) -> Item | None:
        """The next item, or None after `quiet_seconds` of quiet."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives together with an item, and a closed stream would live on.
        try:
            async with asyncio.timeout(quiet_seconds):
                return await self._queue.get()
        except TimeoutError:
            return None

    def clear(self) -> None:
        """Forget what is queued and the overflow (the caller re-reads the database)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self.overflowed = False

    def end(self) -> None:
        """Mark the stream ended and wake it if it waits for an item."""
        self.clear()
        self.ended = True
        self._queue.put_nowait(RESYNC)


@dataclass(eq=False)
class _Channel:
    subscribers: set[Subscriber] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class LiveHub:
    def __init__(
        self,
        redis_url: str,
        *,
        queue_size: int,
        max_subscribers: int,
        confirm_timeout: float,
    ) -> None:
        # No retries inside redis-py: a lost connection must reach the reader, which remakes
        # it and resyncs every stream (a silent reconnect would lose messages silently).
        self.name = f"zap-notification-hub-{new_id().hex[-8:]}"
        self._redis: Redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=2.0,
            socket_keepalive=True,
            health_check_interval=30,
            # Findable in CLIENT LIST.
            client_name=self.name,
        )
        self._queue_size = queue_size
        self._max_subscribers = max_subscribers
        self._confirm_timeout = confirm_timeout
        # Keeps the connection subscribed while no stream is, so it is always in pub/sub mode.
        self._own_channel = f"zap:notifications:{self.name}".encode()
        self._pubsub: PubSub | None = None
        self._channels: dict[bytes, _Channel] = {}
        self._unconfirmed: dict[bytes, deque[_Channel]] = {}
        # Subscribe and unsubscribe commands are sent in the order the channel table changes.
        self._commands = asyncio.Lock()
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ending = False

    @property
    def subscribers(self) -> int:
        return self._count

    async def start(self) -> None:
        """Connect in the background (a Redis outage at start-up is waited out)."""
        self._task = asyncio.create_task(self._run(), name="notification-live-hub")

    async def wait_connected(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def end_streams(self) -> None:
        """Shutdown begins: end every stream now and refuse new ones.

        Open streams would otherwise hold the server's whole grace period; their clients
        resume from their cursors on another server.
        """
        self._ending = True
        for channel in self._channels.values():
            for subscriber in channel.subscribers:
                subscriber.end()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()
        await self._redis.aclose()

    @asynccontextmanager
    async def subscription(self, recipient_id: uuid.UUID) -> AsyncIterator[Subscriber]:
        """A queue of the recipient's live messages, subscribed and confirmed."""
        if self._ending:
            raise ShuttingDown("this server is shutting down; resume from your cursor")
        if self._count >= self._max_subscribers:
            raise Overloaded("this server holds as many live streams as it may; try another")
        subscriber = Subscriber(self._queue_size)
        name = channel_name(recipient_id)
        self._count += 1
        channel: _Channel | None = None
        try:
            channel = await self._join(name, subscriber)
            try:
                async with asyncio.timeout(self._confirm_timeout):
                    await channel.ready.wait()
            except TimeoutError:
                raise _unavailable() from None
            if self._ending:  # began while this one was joining
                subscriber.end()
            yield subscriber
        finally:
            self._count -= 1
            if channel is not None:
                await self._leave(name, channel, subscriber)

    async def _join(self, name: bytes, subscriber: Subscriber) -> _Channel:
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is None or not self._connected.is_set():
                raise _unavailable()
            channel = self._channels.get(name)
            if channel is None:
                channel = self._channels[name] = _Channel()
                self._unconfirmed.setdefault(name, deque()).append(channel)
                try:
                    await pubsub.subscribe(name)
                except (RedisError, OSError) as error:
                    del self._channels[name]
                    self._forget_unconfirmed(name, channel)
                    log.warning("notification.live_subscribe_failed", error=str(error))
                    raise _unavailable() from error
            channel.subscribers.add(subscriber)
            return channel

    async def _leave(self, name: bytes, channel: _Channel, subscriber: Subscriber) -> None:
        async with self._commands:
            channel.subscribers.discard(subscriber)
            if channel.subscribers or self._channels.get(name) is not channel:
                return
            del self._channels[name]
            if self._pubsub is not None and self._connected.is_set():
                try:
                    await self._pubsub.unsubscribe(name)
                except (RedisError, OSError) as error:
                    # The reader notices the broken connection and remakes it without this channel.
                    log.warning("notification.live_unsubscribe_failed", error=str(error))

    def _forget_unconfirmed(self, name: bytes, channel: _Channel) -> None:
        waiting = self._unconfirmed.get(name)
        if waiting is not None and channel in waiting:
            waiting.remove(channel)
            if not waiting:
                del self._unconfirmed[name]

    # --- the reader -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._connect()
            assert self._pubsub is not None
            try:
                while True:
                    message = await self._pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except (RedisError, OSError, RuntimeError) as error:
                log.warning("notification.live_connection_lost", error=str(error))
                self._connected.clear()

    async def _connect(self) -> None:
        """(Re)subscribe to every channel streams need; their streams will resync."""
        delay = 0.1
        while True:
            async with self._commands:
                await self._drop_connection()
                # Confirmations asked on the lost connection will never come.
                self._unconfirmed.clear()
                pubsub = self._redis.pubsub()
                try:
                    await pubsub.subscribe(self._own_channel, *self._channels)
                except (RedisError, OSError) as error:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    log.warning("notification.live_connect_failed", error=str(error))
                else:
                    self._pubsub = pubsub
                    self._connected.set()
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _drop_connection(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, name = message.get("type"), message.get("channel")
        if not isinstance(name, bytes):
            return
        if kind == "message":
            channel = self._channels.get(name)
            if channel is None or not channel.subscribers:
                return
            try:
                live = unframe(message["data"])
            except (ValueError, DecodeError, TypeError):
                log.error("notification.live_message_undecodable", channel=name.decode())
                return
            for subscriber in channel.subscribers:
                subscriber.offer(live)
        elif kind == "subscribe":
            waiting = self._unconfirmed.get(name)
            if waiting:
                waiting.popleft().ready.set()
                if not waiting:
                    del self._unconfirmed[name]
                return
            channel = self._channels.get(name)
            if channel is not None:
                channel.ready.set()
                for subscriber in channel.subscribers:
                    subscriber.offer(RESYNC)


def _unavailable() -> Unavailable:
    return Unavailable(
        "live notifications are reconnecting; try again shortly", reason="live-unavailable"
    )
