"""Subscribe's replay/live handoff on the real database and Redis: replay then live, exactly
once and in order, whatever order live messages arrive in, when some are lost, when the
pub/sub connection breaks; and a subscriber that falls behind is closed alone."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.notification.delivery.rules import Intent, Kind
from services.notification.delivery.service import Delivery
from services.notification.inbox.cursors import Cursors
from services.notification.live.hub import LiveHub, Overloaded
from services.notification.live.stream import LiveStream, SlowConsumer
from services.notification.resources import NotificationResources
from tests.services.notification.conftest import HeldPublisher, configured
from tests.support.stack import TEST_SECRET
from tests.support.waiting import eventually
from zap.notification.v1 import notification_pb2
from zapcore.ids import new_id

Stream = AsyncIterator[notification_pb2.SubscribeResponse]
CURSORS = Cursors(TEST_SECRET)


@pytest.fixture
async def hub(resources: NotificationResources) -> AsyncIterator[LiveHub]:
    live = LiveHub(
        resources.platform.redis_url, queue_size=64, max_subscribers=100, confirm_timeout=5
    )
    await live.start()
    assert await live.wait_connected(5)
    try:
        yield live
    finally:
        await live.close()


def stream_of(
    resources: NotificationResources,
    hub: LiveHub,
    user: uuid.UUID,
    cursor: str = "",
    **settings: float,
) -> Stream:
    fast = configured(resources, heartbeat_seconds=0.2, **settings)
    return LiveStream(fast, hub).subscribe(user, cursor)


async def like(delivery: Delivery, owner: uuid.UUID, post: uuid.UUID | None = None) -> int:
    stored = await delivery.deliver(
        new_id(), Intent(owner, Kind.LIKE, actor_id=uuid.uuid4(), post_id=post or uuid.uuid4())
    )
    assert stored is not None
    return stored.cursor


async def take(stream: Stream, count: int, timeout: float = 10) -> list[int]:
    """The positions of the next `count` notifications (heartbeats skipped)."""
    positions = []
    async with asyncio.timeout(timeout):
        while len(positions) < count:
            item = await anext(stream)
            if item.WhichOneof("item") == "notification":
                positions.append(_position(item.notification.cursor))
    return positions


async def heartbeat(stream: Stream, timeout: float = 10) -> int:
    """The position of the next heartbeat; fails on a notification."""
    async with asyncio.timeout(timeout):
        item = await anext(stream)
    assert item.WhichOneof("item") == "heartbeat", item
    return _position(item.heartbeat.cursor)


async def silent(stream: Stream, seconds: float = 0.6) -> None:
    """Only heartbeats for a while."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                item = await anext(stream)
                assert item.WhichOneof("item") == "heartbeat", item


def _position(cursor: str) -> int:
    return CURSORS.parse_position(cursor)


async def test_replay_after_a_cursor_then_live(
    resources: NotificationResources, hub: LiveHub, delivery: Delivery
) -> None:
    owner = uuid.uuid4()
    first, second, third = [await like(delivery, owner) for _ in range(3)]
    stream = stream_of(resources, hub, owner, resources.cursors.position(first))
    try:
        assert await take(stream, 2) == [second, third]
        assert await heartbeat(stream) == third  # caught up
        fourth = await like(delivery, owner)
        assert await take(stream, 1) == [fourth]
        await silent(stream)
    finally:
        await stream.aclose()


async def test_without_a_cursor_the_stream_starts_now(
    resources: NotificationResources, hub: LiveHub, delivery: Delivery
) -> None:
    owner = uuid.uuid4()
    old = await like(delivery, owner)
    stream = stream_of(resources, hub, owner)
    try:
        assert await heartbeat(stream) == old
        new = await like(delivery, owner)
        assert await take(stream, 1) == [new]
    finally:
        await stream.aclose()
    # A user with nothing yet gets position 0: resuming from it replays everything.
    fresh = stream_of(resources, hub, uuid.uuid4())
    try:
        assert await heartbeat(fresh) == 0
    finally:
        await fresh.aclose()


async def test_live_messages_already_replayed_are_not_sent_again(
    resources: NotificationResources,
    hub: LiveHub,
    held: tuple[HeldPublisher, Delivery],
    delivery: Delivery,
) -> None:
    publisher, quiet_delivery = held
    owner = uuid.uuid4()
    replayed = [await like(quiet_delivery, owner) for _ in range(2)]
    stream = stream_of(resources, hub, owner, resources.cursors.position(0))
    try:
        assert await take(stream, 2) == replayed
        await heartbeat(stream)
        await publisher.release()  # the same two arrive live, late
        newest = await like(delivery, owner)
        assert await take(stream, 1) == [newest]
        await silent(stream)
    finally:
        await stream.aclose()


async def test_out_of_order_live_messages_come_out_in_order_once(
    resources: NotificationResources, hub: LiveHub, held: tuple[HeldPublisher, Delivery]
) -> None:
    publisher, quiet_delivery = held
    owner = uuid.uuid4()
    stream = stream_of(resources, hub, owner)
    try:
        start = await heartbeat(stream)
        cursors = [await like(quiet_delivery, owner) for _ in range(3)]
        assert cursors == [start + 1, start + 2, start + 3]
        await publisher.release(order=[2, 0, 1])
        assert await take(stream, 3) == cursors
        await silent(stream)
    finally:
        await stream.aclose()


async def test_a_lost_live_message_is_found_by_the_next_one(
    resources: NotificationResources,
    hub: LiveHub,
    held: tuple[HeldPublisher, Delivery],
    delivery: Delivery,
) -> None:
    publisher, quiet_delivery = held
    owner = uuid.uuid4()
    stream = stream_of(resources, hub, owner, resync_seconds=3600)
    try:
        await heartbeat(stream)
        lost = await like(quiet_delivery, owner)
        publisher.held.clear()  # never published
        found = await like(delivery, owner)
        assert await take(stream, 2) == [lost, found]
    finally:
        await stream.aclose()


async def test_a_lost_live_message_is_found_by_the_periodic_resync(
    resources: NotificationResources, hub: LiveHub, held: tuple[HeldPublisher, Delivery]
) -> None:
    publisher, quiet_delivery = held
    owner = uuid.uuid4()
    stream = stream_of(resources, hub, owner, resync_seconds=0.3)
    try:
        await heartbeat(stream)
        lost = await like(quiet_delivery, owner)
        publisher.held.clear()
        assert await take(stream, 1, timeout=5) == [lost]
    finally:
        await stream.aclose()


async def test_a_broken_pubsub_connection_is_remade_and_streams_resync(
    resources: NotificationResources,
    hub: LiveHub,
    held: tuple[HeldPublisher, Delivery],
    delivery: Delivery,
) -> None:
    publisher, quiet_delivery = held
    owner = uuid.uuid4()
    stream = stream_of(resources, hub, owner, resync_seconds=3600)
    admin = Redis.from_url(resources.platform.redis_url)
    try:
        await heartbeat(stream)
        clients = await admin.client_list(_type="pubsub")
        (mine,) = [c for c in clients if c.get("name") == hub.name]
        await admin.client_kill_filter(_id=mine["id"])
        # Published while the hub is away: lost to pub/sub, found again by the resync.
        during = await like(quiet_delivery, owner)
        publisher.held.clear()
        assert await take(stream, 1) == [during]
        after = await like(delivery, owner)
        assert await take(stream, 1) == [after]
    finally:
        await stream.aclose()
        await admin.aclose()


async def test_a_subscriber_that_falls_behind_is_closed_alone(
    resources: NotificationResources, delivery: Delivery
) -> None:
    small = LiveHub(
        resources.platform.redis_url, queue_size=2, max_subscribers=10, confirm_timeout=5
    )
    await small.start()
    assert await small.wait_connected(5)
    owner = uuid.uuid4()
    slow, brisk = stream_of(resources, small, owner), stream_of(resources, small, owner)
    try:
        await heartbeat(slow)
        await heartbeat(brisk)
        cursors = []
        for _ in range(5):
            cursors.append(await like(delivery, owner))
            # The brisk one reads as things come; the slow one reads nothing.
            assert await take(brisk, 1) == cursors[-1:]
        with pytest.raises(SlowConsumer):
            await take(slow, 5)
        assert await take(brisk, 0) == []
        newest = await like(delivery, owner)
        assert await take(brisk, 1) == [newest]
    finally:
        await slow.aclose()
        await brisk.aclose()
        await small.close()


async def test_a_hub_refuses_subscribers_beyond_its_limit(resources: NotificationResources) -> None:
    tiny = LiveHub(resources.platform.redis_url, queue_size=2, max_subscribers=1, confirm_timeout=5)
    await tiny.start()
    assert await tiny.wait_connected(5)
    try:
        async with tiny.subscription(uuid.uuid4()):
            with pytest.raises(Overloaded):
                async with tiny.subscription(uuid.uuid4()):
                    pass
        await eventually(lambda: asyncio.sleep(0, tiny.subscribers), lambda n: n == 0)
    finally:
        await tiny.close()


async def test_a_cursor_from_beyond_the_sequence_still_gets_live_messages(
    resources: NotificationResources, hub: LiveHub, delivery: Delivery
) -> None:
    owner = uuid.uuid4()
    known = await like(delivery, owner)
    stream = stream_of(resources, hub, owner, resources.cursors.position(known + 1000))
    try:
        assert await heartbeat(stream) == known
        new = await like(delivery, owner)
        assert await take(stream, 1) == [new]
    finally:
        await stream.aclose()


async def test_two_notification_processes_both_stream_one_delivery(
    resources: NotificationResources, hub: LiveHub, delivery: Delivery
) -> None:
    other = LiveHub(
        resources.platform.redis_url, queue_size=8, max_subscribers=8, confirm_timeout=5
    )
    await other.start()
    assert await other.wait_connected(5)
    owner = uuid.uuid4()
    here, there = stream_of(resources, hub, owner), stream_of(resources, other, owner)
    try:
        await heartbeat(here)
        await heartbeat(there)
        cursor = await like(delivery, owner)
        assert await take(here, 1) == [cursor]
        assert await take(there, 1) == [cursor]
    finally:
        await here.aclose()
        await there.aclose()
        await other.close()
