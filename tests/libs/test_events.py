"""Durable events on a real Redis: delivery, acknowledgement, takeover and dead letters."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.support.resources import claim_redis_db
from tests.support.waiting import eventually
from zap.events.v1 import events_pb2
from zapcore.deletion import deletion_consumer
from zapcore.events import (
    ACCOUNT_DELETIONS,
    DELETION_RECEIPTS,
    ConsumerConfig,
    EventConsumer,
    EventPublisher,
    consuming,
    dead_letter_key,
    stream_key,
)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A Redis database of this test's own: the session's stack, when the end-to-end tests
    started it, consumes these topics with these group names and would take the events."""
    _, client = await claim_redis_db()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


def followed(n: int) -> events_pb2.Followed:
    return events_pb2.Followed(follower_id=f"follower-{n}", followee_id="star")


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.seen: list[events_pb2.Envelope] = []
        self.failures = failures

    async def __call__(self, env: events_pb2.Envelope) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler failed")
        self.seen.append(env)


async def pending(redis: Redis, topic: str, group: str) -> int:
    return int((await redis.xpending(stream_key(topic), group))["pending"])


async def test_a_group_created_later_still_receives_earlier_events(redis: Redis) -> None:
    publisher = EventPublisher(redis, producer="graph")
    sent = [await publisher.publish("graph", followed(n)) for n in range(3)]

    recorder = Recorder()
    consumer = EventConsumer(
        redis, ConsumerConfig(group="notification", topics=["graph"]), recorder
    )
    assert await consumer.run_once(block=False) == 3

    assert [env.id for env in recorder.seen] == [env.id for env in sent]
    assert recorder.seen[0].followed.follower_id == "follower-0"
    assert recorder.seen[0].producer == "graph"
    assert await pending(redis, "graph", "notification") == 0


async def test_every_group_gets_its_own_copy(redis: Redis) -> None:
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    first, second = Recorder(), Recorder()
    for group, recorder in (("feed", first), ("notification", second)):
        consumer = EventConsumer(redis, ConsumerConfig(group=group, topics=["graph"]), recorder)
        await consumer.run_once(block=False)
    assert len(first.seen) == len(second.seen) == 1


async def test_a_failed_entry_stays_pending_and_is_taken_over(redis: Redis) -> None:
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    crashing = EventConsumer(
        redis,
        ConsumerConfig(group="feed", topics=["graph"], consumer="a", claim_idle_ms=0),
        Recorder(failures=1),
    )
    assert await crashing.run_once(block=False) == 0
    assert await pending(redis, "graph", "feed") == 1

    survivor = Recorder()
    other = EventConsumer(
        redis,
        ConsumerConfig(group="feed", topics=["graph"], consumer="b", claim_idle_ms=0),
        survivor,
    )
    assert await other.run_once(block=False) == 1
    assert len(survivor.seen) == 1
    assert await pending(redis, "graph", "feed") == 0


async def test_a_batch_handler_gets_a_read_at_once_and_a_failed_batch_goes_one_by_one(
    redis: Redis,
) -> None:
    publisher = EventPublisher(redis, producer="graph")
    sent = [await publisher.publish("graph", followed(n)) for n in range(4)]
    batches: list[list[str]] = []

    async def batch(envs: Sequence[events_pb2.Envelope]) -> None:
        batches.append([env.id for env in envs])

    one_by_one = Recorder()
    config = ConsumerConfig(group="notification", topics=["graph"])
    consumer = EventConsumer(redis, config, one_by_one, batch_handler=batch)
    assert await consumer.run_once(block=False) == 4
    assert batches == [[env.id for env in sent]]
    assert one_by_one.seen == []
    assert await pending(redis, "graph", "notification") == 0

    # A batch that fails is handed over entry by entry: the bad one alone stays pending.
    more = [await publisher.publish("graph", followed(n)) for n in range(4, 7)]

    async def failing(envs: Sequence[events_pb2.Envelope]) -> None:
        raise RuntimeError("batch failed")

    picky = Recorder(failures=1)
    consumer = EventConsumer(redis, config, picky, batch_handler=failing)
    assert await consumer.run_once(block=False) == 2
    assert [env.id for env in picky.seen] == [env.id for env in more[1:]]
    assert await pending(redis, "graph", "notification") == 1


async def test_an_entry_that_keeps_failing_goes_to_the_dead_letter_stream(redis: Redis) -> None:
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    config = ConsumerConfig(group="feed", topics=["graph"], claim_idle_ms=0, max_deliveries=3)
    consumer = EventConsumer(redis, config, Recorder(failures=100))
    for _ in range(3):
        await consumer.run_once(block=False)

    assert await pending(redis, "graph", "feed") == 0
    dead = await redis.xrange(dead_letter_key("graph", "feed"))
    assert len(dead) == 1
    assert events_pb2.Envelope.FromString(dead[0][1][b"e"]).followed.follower_id == "follower-1"


async def test_run_consumes_until_stopped(redis: Redis) -> None:
    recorder = Recorder()
    config = ConsumerConfig(group="feed", topics=["graph", "feed"], block_ms=50)
    consumer = EventConsumer(redis, config, recorder)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await EventPublisher(redis, producer="graph").publish("graph", followed(7))
    for _ in range(100):
        if recorder.seen:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert recorder.seen[0].followed.follower_id == "follower-7"


async def test_abandoned_entries_are_looked_for_on_an_interval_not_on_every_read(
    redis: Redis,
) -> None:
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    recorder = Recorder(failures=1)
    config = ConsumerConfig(
        group="feed", topics=["graph"], claim_idle_ms=0, reclaim_every_ms=300, block_ms=10
    )
    consumer = EventConsumer(redis, config, recorder)
    assert await consumer.run_once(block=False) == 0  # read, and the handler failed
    assert await consumer.run_once(block=False) == 0  # no takeover yet: not due
    assert await pending(redis, "graph", "feed") == 1
    await asyncio.sleep(0.35)
    assert await consumer.run_once(block=False) == 1
    assert len(recorder.seen) == 1
    assert await pending(redis, "graph", "feed") == 0


async def test_a_dead_consumers_entry_is_taken_over_by_a_running_consumer(redis: Redis) -> None:
    """Not only at start: the running loop keeps looking (every half `claim_idle_ms`)."""
    env = await EventPublisher(redis, producer="graph").publish("graph", followed(9))
    survivor = Recorder()
    config = ConsumerConfig(
        group="feed", topics=["graph"], consumer="survivor", claim_idle_ms=400, block_ms=20
    )
    consumer = EventConsumer(redis, config, survivor)
    await consumer.ensure_groups()
    # A consumer reads the entry, then dies without acknowledging it.
    taken = await redis.xreadgroup("feed", "dead", {stream_key("graph"): ">"}, count=10)
    assert len(taken[0][1]) == 1
    stop = asyncio.Event()
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(consumer.run(stop))
    try:
        # The takeover at start finds it too recent; a later one takes it.
        await eventually(lambda: _seen(survivor), bool, timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2)
    assert asyncio.get_running_loop().time() - started >= 0.35
    assert [seen.id for seen in survivor.seen] == [env.id]
    assert await pending(redis, "graph", "feed") == 0


async def test_pending_entries_and_dead_letters_are_measured(redis: Redis) -> None:
    publisher = EventPublisher(redis, producer="graph")
    for n in range(3):
        await publisher.publish("graph", followed(n))
    # A consumer of the group reads all three and dies: three entries pending.
    await redis.xgroup_create(stream_key("graph"), "notification", id="0")
    await redis.xreadgroup("notification", "dead", {stream_key("graph"): ">"}, count=10)
    labels = {"stream": "graph", "group": "notification"}
    dead_before = REGISTRY.get_sample_value("zap_event_dead_letters_total", labels) or 0.0

    config = ConsumerConfig(
        group="notification", topics=["graph"], claim_idle_ms=0, max_deliveries=3
    )
    consumer = EventConsumer(redis, config, Recorder(failures=100))
    await consumer.run_once(block=False)  # counts 3 pending, takes them over, fails them
    assert REGISTRY.get_sample_value("zap_event_stream_pending", labels) == 3
    assert (REGISTRY.get_sample_value("zap_event_dead_letters_total", labels) or 0) == dead_before
    await consumer.run_once(block=False)  # the third delivery fails too: dead letters
    dead_after = REGISTRY.get_sample_value("zap_event_dead_letters_total", labels)
    assert dead_after == dead_before + 3
    assert await redis.xlen(dead_letter_key("graph", "notification")) == 3
    consumer = EventConsumer(redis, config, Recorder())
    await consumer.run_once(block=False)
    assert REGISTRY.get_sample_value("zap_event_stream_pending", labels) == 0


async def _seen(recorder: Recorder) -> list[events_pb2.Envelope]:
    return recorder.seen


async def test_departed_consumers_leave_the_group_once_nothing_is_pending(redis: Redis) -> None:
    """Every restart reads under a new name; old names must not pile up in the group, and a
    name with unacknowledged entries stays until they have been taken over."""
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    await EventPublisher(redis, producer="graph").publish("graph", followed(2))
    config = ConsumerConfig(
        group="feed",
        topics=["graph"],
        consumer="current",
        claim_idle_ms=50,
        reclaim_every_ms=0,
        forget_idle_ms=50,
        block_ms=10,
    )
    consumer = EventConsumer(redis, config, Recorder())
    await consumer.ensure_groups()
    # One old process acknowledged what it read; another died holding an entry.
    done = await redis.xreadgroup("feed", "acked", {stream_key("graph"): ">"}, count=1)
    await redis.xack(stream_key("graph"), "feed", done[0][1][0][0])
    await redis.xreadgroup("feed", "crashed", {stream_key("graph"): ">"}, count=1)

    async def names() -> set[str]:
        answer = await redis.xinfo_consumers(stream_key("graph"), "feed")
        return {c["name"].decode() if isinstance(c["name"], bytes) else c["name"] for c in answer}

    assert await names() == {"acked", "crashed"}
    await asyncio.sleep(0.1)
    await consumer.run_once(block=False)
    # The crashed one's entry was taken over first, so both names could go.
    assert await names() == {"current"}
    assert await pending(redis, "graph", "feed") == 0


class Outage:
    """A handler whose every call fails for the first `failures` calls; it notes when."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []
        self.done: list[events_pb2.Envelope] = []

    async def __call__(self, env: events_pb2.Envelope) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise ConnectionRefusedError("database unreachable")
        self.done.append(env)


async def test_an_account_deletion_is_retried_with_backoff_and_never_dead_lettered(
    redis: Redis,
) -> None:
    await EventPublisher(redis, producer="auth").publish(
        ACCOUNT_DELETIONS, events_pb2.AccountDeleted(user_id="gone")
    )
    # Past the dead-letter window (two deliveries) several times over; takeovers (a minute)
    # stay out of the way, so only the backoff paces the retries.
    config = ConsumerConfig(
        group="media",
        topics=[ACCOUNT_DELETIONS],
        max_deliveries=2,
        retry_after_ms=40,
        claim_idle_ms=60_000,
        block_ms=5,
    )
    outage = Outage(failures=5)
    consumer = EventConsumer(redis, config, outage)
    async with consuming(consumer):
        await eventually(lambda: _done(outage), lambda done: len(done) == 1, timeout=10)

    assert outage.done[0].account_deleted.user_id == "gone"
    assert len(outage.calls) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(outage.calls)]
    # 40 ms after the first failure, then twice as long after each next one.
    for n, gap in enumerate(gaps):
        assert gap >= 0.04 * 2**n * 0.9, gaps
    assert await pending(redis, ACCOUNT_DELETIONS, "media") == 0
    assert await redis.exists(dead_letter_key(ACCOUNT_DELETIONS, "media")) == 0


async def test_other_topics_still_dead_letter_with_backoff(redis: Redis) -> None:
    await EventPublisher(redis, producer="graph").publish("graph", followed(1))
    config = ConsumerConfig(
        group="feed", topics=["graph"], max_deliveries=3, retry_after_ms=20, block_ms=5
    )
    outage = Outage(failures=100)
    async with consuming(EventConsumer(redis, config, outage)):
        await eventually(
            lambda: redis.xlen(dead_letter_key("graph", "feed")), lambda n: n == 1, timeout=5
        )
    assert len(outage.calls) == 3
    assert await pending(redis, "graph", "feed") == 0


async def _done(outage: Outage) -> list[events_pb2.Envelope]:
    return outage.done


async def test_a_deletion_event_naming_no_account_is_not_retried_forever(redis: Redis) -> None:
    """Retried until done, a deletion must be one that can be done: an id that is not one
    (a bad producer) is refused once, not retried every minute for ever."""
    await EventPublisher(redis, producer="test").publish(
        ACCOUNT_DELETIONS, events_pb2.AccountDeleted(user_id="not-an-id")
    )
    forgotten: list[uuid.UUID] = []

    async def forget(user_id: uuid.UUID) -> None:
        forgotten.append(user_id)

    consumer = deletion_consumer(redis, "media", forget, claim_idle_ms=0, max_deliveries=2)
    for _ in range(3):
        await consumer.run_once(block=False)
    assert forgotten == []
    assert await pending(redis, ACCOUNT_DELETIONS, "media") == 0
    assert await redis.xlen(stream_key(DELETION_RECEIPTS)) == 0
