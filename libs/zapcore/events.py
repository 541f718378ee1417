"""Durable events between services, on Redis Streams.

Pub/sub loses every message published while a consumer is down; a stream keeps them. Each
consuming service reads a topic through its own consumer group, acknowledges an entry only
after its work is done, takes over entries whose consumer died (XAUTOCLAIM, at start and
then periodically), and moves an entry that keeps failing to a dead-letter stream instead of
retrying it forever, except on topics that must never be dropped (account deletions): those
are retried, with backoff, until they succeed. Delivery is therefore at least once: handlers
must be idempotent (the envelope id is there for that).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from google.protobuf.message import DecodeError, Message
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from zap.events.v1 import events_pb2
from zapcore.ids import new_id
from zapcore.metrics import EVENT_DEAD_LETTERS, EVENT_STREAM_PENDING
from zapcore.telemetry import SpanKind, span
from zapcore.timestamps import to_timestamp
from zapcore.tracing import current_trace, parse_traceparent

log = structlog.get_logger("zapcore.events")

# Topics, one stream each. The names are part of the contract between services.
ACCOUNT_DELETIONS = "account_deletions"
DELETION_RECEIPTS = "deletion_receipts"
GRAPH = "graph"
FEED = "feed"
MODERATION = "moderation"

FIELD = b"e"

Handler = Callable[[events_pb2.Envelope], Awaitable[None]]
# Handles every envelope of one read at once (one transaction for many events, say).
BatchHandler = Callable[[Sequence[events_pb2.Envelope]], Awaitable[None]]


def stream_key(topic: str) -> str:
    # The hash tag keeps a topic's stream and its dead letters on one Cluster slot.
    return f"zap:events:{{{topic}}}"


def dead_letter_key(topic: str, group: str) -> str:
    return f"zap:events:{{{topic}}}:dead:{group}"


def envelope(payload: Message, *, producer: str) -> events_pb2.Envelope:
    """Wrap a payload message (one of the Envelope oneof types) with id, time and trace."""
    trace = current_trace()
    env = events_pb2.Envelope(
        id=str(new_id()),
        occurred_at=to_timestamp(datetime.now(UTC)),
        traceparent=trace.traceparent if trace is not None else "",
        producer=producer,
    )
    field = _payload_field(type(payload))
    getattr(env, field).CopyFrom(payload)
    return env


def _payload_field(message_type: type[Message]) -> str:
    for field in events_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields:
        if field.message_type is not None and (
            field.message_type.full_name == message_type.DESCRIPTOR.full_name
        ):
            return str(field.name)
    raise TypeError(f"{message_type.__name__} is not an event payload")


class EventPublisher:
    """Appends envelopes to topic streams, capped (approximately) at `max_length` entries."""

    def __init__(self, redis: Redis, *, producer: str, max_length: int = 1_000_000) -> None:
        self._redis = redis
        self._producer = producer
        self._max_length = max_length

    async def publish(self, topic: str, payload: Message) -> events_pb2.Envelope:
        env = envelope(payload, producer=self._producer)
        await self.publish_envelope(topic, env)
        return env

    async def publish_envelope(self, topic: str, env: events_pb2.Envelope) -> None:
        await self._redis.xadd(
            stream_key(topic),
            {FIELD: env.SerializeToString()},
            maxlen=self._max_length,
            approximate=True,
        )


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    topics: Sequence[str]
    consumer: str = f"{socket.gethostname()}-{os.getpid()}"
    batch_size: int = 100
    block_ms: int = 1000
    # An entry delivered but not acknowledged for this long belongs to a dead consumer.
    claim_idle_ms: int = 60_000
    # How often such entries are looked for (XAUTOCLAIM), the first time at start. None:
    # every half `claim_idle_ms`, since an entry is taken over only once that idle anyway.
    reclaim_every_ms: int | None = None
    # How often the group's unacknowledged entries are counted (zap_event_stream_pending).
    pending_sample_seconds: float = 15.0
    # After this many deliveries an entry goes to the dead-letter stream...
    max_deliveries: int = 5
    # ... except on these topics, whose entries are retried until they succeed, however long
    # the outage: an account deletion dropped would leave the user's data (public media
    # included) in place for good.
    undroppable: frozenset[str] = frozenset({ACCOUNT_DELETIONS})
    # A failed entry is tried again after this wait, doubled at each delivery up to
    # `claim_idle_ms`, the pace of takeovers, which retry it anyway. None: only takeovers
    # retry it (once a minute by default).
    retry_after_ms: int | None = None
    # Consumer names end with their process (a restart, a new pod): one silent this long,
    # with nothing pending, is removed from the group when takeovers are looked for.
    forget_idle_ms: int = 3_600_000


class EventConsumer:
    """Reads topics through one consumer group and hands each envelope to `handler`.

    With a `batch_handler`, the entries of one read (up to `batch_size`) go to it together
    and are acknowledged together once it returns. If it fails, each entry is handed to
    `handler` on its own, so a bad entry is retried and dead-lettered alone, exactly as
    without one: both handlers must be idempotent and do the same thing.
    """

    def __init__(
        self,
        redis: Redis,
        config: ConsumerConfig,
        handler: Handler,
        *,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self._redis = redis
        self._config = config
        self._handler = handler
        self._batch_handler = batch_handler
        self._groups_ready = False
        every_ms = config.reclaim_every_ms
        self._reclaim_every = (config.claim_idle_ms / 2 if every_ms is None else every_ms) / 1000
        # Monotonic times of the next takeover, retry and pending count; 0: at the first read.
        self._reclaim_at = 0.0
        self._retry_at = 0.0
        self._sample_at = 0.0

    async def ensure_groups(self) -> None:
        for topic in self._config.topics:
            try:
                # "0": a group created after events were published still gets them.
                await self._redis.xgroup_create(
                    stream_key(topic), self._config.group, id="0", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
        self._groups_ready = True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; Redis outages are waited out, not fatal."""
        while not stop.is_set():
            try:
                await self.run_once()
            except RedisError as error:
                log.warning("events.redis_unavailable", error=str(error))
                self._groups_ready = False
                await _sleep_or_stop(stop, 1.0)

    async def run_once(self, *, block: bool = True) -> int:
        """Read new entries and handle them (first taking over abandoned ones, when that is
        due); return how many were handled."""
        if not self._groups_ready:
            await self.ensure_groups()
        handled = 0
        now = time.monotonic()
        if now >= self._sample_at:
            self._sample_at = now + self._config.pending_sample_seconds
            await self._sample_pending()
        if now >= self._reclaim_at:
            self._reclaim_at = now + self._reclaim_every
            for topic in self._config.topics:
                handled += await self._reclaim(topic)
                await self._forget_departed(topic)
        if self._config.retry_after_ms is not None and now >= self._retry_at:
            self._retry_at = now + self._config.retry_after_ms / 2000
            for topic in self._config.topics:
                handled += await self._retry_failed(topic)
        answer = await self._redis.xreadgroup(
            self._config.group,
            self._config.consumer,
            {stream_key(topic): ">" for topic in self._config.topics},
            count=self._config.batch_size,
            block=self._config.block_ms if block else None,
        )
        for stream, entries in answer or []:
            topic = _topic_of(stream)
            handled += await self._process(topic, entries)
        return handled

    async def _reclaim(self, topic: str) -> int:
        """Take over and handle every entry idle for `claim_idle_ms`, a batch at a time."""
        handled = 0
        start: bytes | str = "0-0"
        while True:
            answer = await self._redis.xautoclaim(
                stream_key(topic),
                self._config.group,
                self._config.consumer,
                min_idle_time=self._config.claim_idle_ms,
                start_id=start,
                count=self._config.batch_size,
            )
            # XAUTOCLAIM answers [next-start, entries, deleted-ids]. Entries that MAXLEN
            # trimmed away leave the pending list by themselves (Redis 7; 6.2 answers them
            # without an id, and nothing can be done with those).
            entries: list[Any] = answer[1]
            handled += await self._process(
                topic, [entry for entry in entries if entry[0] is not None]
            )
            start = answer[0]
            if start in (b"0-0", "0-0"):
                return handled

    def _backoff_ms(self, deliveries: int) -> int:
        """How long an entry delivered `deliveries` times waits after its last failure."""
        first = self._config.retry_after_ms or self._config.claim_idle_ms
        return int(min(first * 2 ** min(max(deliveries - 1, 0), 30), self._config.claim_idle_ms))

    async def _retry_failed(self, topic: str) -> int:
        """Hand again this consumer's failed entries whose backoff has run out (those of
        dead consumers are the takeover's)."""
        stream, group, me = stream_key(topic), self._config.group, self._config.consumer
        pending = await self._redis.xpending_range(
            stream,
            group,
            min="-",
            max="+",
            count=self._config.batch_size,
            consumername=me,
            idle=self._config.retry_after_ms,
        )
        handled = 0
        for item in pending:
            wait = self._backoff_ms(int(item["times_delivered"]))
            if int(item["time_since_delivered"]) < wait:
                continue
            # min_idle_time: another consumer's takeover may have got there first.
            entries = await self._redis.xclaim(
                stream, group, me, min_idle_time=wait, message_ids=[item["message_id"]]
            )
            handled += await self._process(
                topic, [entry for entry in entries if entry[0] is not None]
            )
        return handled

    async def _forget_departed(self, topic: str) -> None:
        """Remove consumers long silent with nothing pending (their entries were taken
        over above). Removing one with pending entries would drop them, so never that; a
        live consumer removed by mistake is created again by its next read."""
        stream, group = stream_key(topic), self._config.group
        for consumer in await self._redis.xinfo_consumers(stream, group):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name == self._config.consumer or int(consumer["pending"]):
                continue
            if int(consumer["idle"]) >= self._config.forget_idle_ms:
                await self._redis.xgroup_delconsumer(stream, group, name)
                log.info("events.consumer_forgotten", stream=topic, group=group, consumer=name)

    async def _sample_pending(self) -> None:
        for topic in self._config.topics:
            summary = await self._redis.xpending(stream_key(topic), self._config.group)
            EVENT_STREAM_PENDING.labels(topic, self._config.group).set(int(summary["pending"]))

    async def _process(self, topic: str, entries: Iterable[Any]) -> int:
        entries = list(entries)
        if self._batch_handler is not None and len(entries) > 1:
            return await self._process_batch(topic, entries, self._batch_handler)
        handled = 0
        for entry_id, fields in entries:
            if fields is None:  # trimmed away while pending
                await self._ack(topic, [entry_id])
                continue
            if await self._handle_one(topic, entry_id, fields):
                handled += 1
        return handled

    async def _process_batch(
        self, topic: str, entries: list[Any], batch_handler: BatchHandler
    ) -> int:
        decoded: list[tuple[bytes, dict[bytes, bytes]]] = []
        envs: list[events_pb2.Envelope] = []
        for entry_id, fields in entries:
            if fields is None:  # trimmed away while pending
                await self._ack(topic, [entry_id])
                continue
            try:
                envs.append(events_pb2.Envelope.FromString(fields[FIELD]))
            except (KeyError, DecodeError):
                log.error("events.undecodable", topic=topic, entry_id=entry_id)
                await self._dead_letter(topic, entry_id, fields, "undecodable")
                continue
            decoded.append((entry_id, fields))
        if not envs:
            return 0
        try:
            with span(
                f"event {topic} batch",
                kind=SpanKind.CONSUMER,
                # Many causes: each entry's trace is not continued (only one-at-a-time is).
                parent=None,
                attributes={
                    "messaging.system": "redis",
                    "messaging.destination.name": topic,
                    "messaging.consumer.group.name": self._config.group,
                    "messaging.batch.message_count": len(envs),
                },
            ):
                await batch_handler(envs)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # One at a time instead: each entry then fails, retries and dead-letters alone.
            log.warning("events.batch_failed", topic=topic, size=len(envs), error=repr(error))
            handled = 0
            for entry_id, fields in decoded:
                handled += int(await self._handle_one(topic, entry_id, fields))
            return handled
        await self._ack(topic, [entry_id for entry_id, _ in decoded])
        return len(decoded)

    async def _handle_one(self, topic: str, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        try:
            env = events_pb2.Envelope.FromString(fields[FIELD])
        except (KeyError, DecodeError):
            log.error("events.undecodable", topic=topic, entry_id=entry_id)
            await self._dead_letter(topic, entry_id, fields, "undecodable")
            return False
        # The handler's logs and calls continue the trace of the request that caused the event.
        try:
            with span(
                f"event {topic}",
                kind=SpanKind.CONSUMER,
                parent=parse_traceparent(env.traceparent),
                attributes={
                    "messaging.system": "redis",
                    "messaging.destination.name": topic,
                    "messaging.consumer.group.name": self._config.group,
                    "messaging.message.id": env.id,
                },
            ):
                await self._handler(env)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            deliveries = await self._deliveries(topic, entry_id)
            context = {"topic": topic, "event_id": env.id, "deliveries": deliveries}
            # The traceback once per entry: its retries most likely fail the same way (and an
            # undroppable entry may be retried every minute for as long as an outage lasts).
            if deliveries == 1:
                log.exception("events.handler_failed", **context)
            else:
                log.warning("events.handler_failed", error=repr(error), **context)
            if deliveries < self._config.max_deliveries:
                return False
            if topic in self._config.undroppable:
                # Kept pending: retried (with backoff) until it succeeds, never dropped.
                log.error(
                    "events.retrying_until_done",
                    group=self._config.group,
                    next_retry_ms=self._backoff_ms(deliveries),
                    **context,
                )
                return False
            await self._dead_letter(topic, entry_id, fields, repr(error))
            return False
        await self._ack(topic, [entry_id])
        return True

    async def _deliveries(self, topic: str, entry_id: bytes) -> int:
        pending = await self._redis.xpending_range(
            stream_key(topic), self._config.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _dead_letter(
        self, topic: str, entry_id: bytes, fields: dict[bytes, bytes], reason: str
    ) -> None:
        dead: dict[Any, Any] = {**fields, b"reason": reason.encode(), b"entry_id": entry_id}
        await self._redis.xadd(dead_letter_key(topic, self._config.group), dead)
        await self._ack(topic, [entry_id])
        EVENT_DEAD_LETTERS.labels(topic, self._config.group).inc()

    async def _ack(self, topic: str, entry_ids: list[bytes]) -> None:
        await self._redis.xack(stream_key(topic), self._config.group, *entry_ids)


def _topic_of(stream: bytes | str) -> str:
    name = stream.decode() if isinstance(stream, bytes) else stream
    return name[name.index("{") + 1 : name.index("}")]


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class ConsumerSet:
    """Consumers started and stopped together (a worker's, or a test's).

    Stopping lets each finish and acknowledge the entries in hand; what is published
    meanwhile waits, unread, in its consumer group for the next start.
    """

    def __init__(self, consumers: Iterable[EventConsumer], grace_seconds: float = 5.0) -> None:
        self._consumers = list(consumers)
        self._grace_seconds = grace_seconds
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        if self._tasks:
            return
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(c.run(self._stop)) for c in self._consumers]

    async def stop(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self._grace_seconds)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def consuming(*consumers: EventConsumer) -> AsyncIterator[None]:
    """Run consumers in the background for the duration of the block."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop)) for consumer in consumers]
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
