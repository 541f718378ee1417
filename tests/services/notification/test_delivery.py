"""The deliver worker's rules on the real database and graph: grouping, once-per-actor,
idempotency by event id, blocks and mutes, cursor order under concurrency, moderation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest

from services.notification.delivery.rules import Intent, Kind
from services.notification.delivery.service import Delivery
from services.notification.forget import forget_user
from services.notification.inbox.repository import InboxRepository
from services.notification.models import Notification
from services.notification.resources import NotificationResources
from tests.services.notification.conftest import HeldPublisher, configured
from tests.support.stack import TEST_SECRET, Stack
from zap.events.v1 import events_pb2
from zap.graph.v1 import graph_pb2, graph_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner
from zapcore.ids import new_id
from zapcore.timestamps import to_timestamp

SIGNER = IdentitySigner(TEST_SECRET)


def users(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


def like(recipient: uuid.UUID, actor: uuid.UUID, post: uuid.UUID) -> Intent:
    return Intent(recipient, Kind.LIKE, actor_id=actor, post_id=post)


async def graph_write(stack: Stack, method: str, actor: uuid.UUID, target: uuid.UUID) -> None:
    metadata = ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service="gateway", user_id=actor))),)
    async with grpc.aio.insecure_channel(stack.targets["graph"]) as channel:
        stub = graph_pb2_grpc.GraphServiceStub(channel)
        request = getattr(graph_pb2, f"{method}Request")(user_id=str(target))
        await getattr(stub, method)(request, metadata=metadata, timeout=10)


async def test_likes_on_one_post_are_one_notification_most_recent_actor_first(
    delivery: Delivery,
) -> None:
    owner, post = uuid.uuid4(), uuid.uuid4()
    fans = users(12)
    start = datetime.now(UTC)
    # Handled out of order (as side-by-side consumers do), ordered by when they acted.
    stored = [
        await delivery.deliver(new_id(), like(owner, fan, post), start + timedelta(seconds=n))
        for n, fan in reversed(list(enumerate(fans)))
    ]
    assert len({n.id for n in stored if n}) == 1
    last = stored[-1]
    assert last is not None
    assert last.actor_count == 12
    assert last.actor_ids == list(reversed(fans))[:10]
    assert [n.cursor for n in stored if n] == sorted(n.cursor for n in stored if n)


async def test_an_actor_notifies_once_per_post_and_per_follow(delivery: Delivery) -> None:
    owner, fan, post = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await delivery.deliver(new_id(), like(owner, fan, post)) is not None
    # Like, unlike, like again: a new event, the same actor; nothing new.
    assert await delivery.deliver(new_id(), like(owner, fan, post)) is None
    follow = Intent(owner, Kind.FOLLOW, actor_id=fan)
    assert await delivery.deliver(new_id(), follow) is not None
    assert await delivery.deliver(new_id(), follow) is None
    # Another post is another notification.
    assert await delivery.deliver(new_id(), like(owner, fan, uuid.uuid4())) is not None


async def test_a_redelivered_event_changes_nothing(delivery: Delivery) -> None:
    owner, fan, post = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = new_id()
    comment = Intent(owner, Kind.COMMENT, actor_id=fan, post_id=post, comment_id=uuid.uuid4())
    first = await delivery.deliver(event, comment)
    assert first is not None
    assert await delivery.deliver(event, comment) is None
    # A second comment by the same person is news: same group, same count, newest comment.
    newer = Intent(owner, Kind.COMMENT, actor_id=fan, post_id=post, comment_id=uuid.uuid4())
    second = await delivery.deliver(new_id(), newer)
    assert second is not None
    assert second.id == first.id
    assert second.actor_count == 1
    assert second.comment_id == newer.comment_id
    assert second.cursor > first.cursor
    other = await delivery.deliver(
        new_id(), Intent(owner, Kind.COMMENT, actor_id=uuid.uuid4(), post_id=post)
    )
    assert other is not None
    assert other.actor_count == 2


async def test_groups_close_after_their_window(resources: NotificationResources) -> None:
    delivery = Delivery(configured(resources, group_window_seconds=1))
    owner, post = uuid.uuid4(), uuid.uuid4()
    first = await delivery.deliver(new_id(), like(owner, uuid.uuid4(), post))
    await asyncio.sleep(1.1)
    second = await delivery.deliver(new_id(), like(owner, uuid.uuid4(), post))
    assert first is not None
    assert second is not None
    assert second.id != first.id
    assert second.actor_count == 1


async def test_nobody_is_notified_of_themselves(delivery: Delivery) -> None:
    me = uuid.uuid4()
    assert await delivery.deliver(new_id(), like(me, me, uuid.uuid4())) is None


@pytest.mark.parametrize(
    ("method", "who_acts"),
    [("Mute", "recipient"), ("Block", "recipient"), ("Block", "actor")],
)
async def test_blocks_either_way_and_mutes_silence_an_actor(
    stack: Stack, delivery: Delivery, method: str, who_acts: str
) -> None:
    recipient, actor = uuid.uuid4(), uuid.uuid4()
    if who_acts == "recipient":
        await graph_write(stack, method, recipient, actor)
    else:
        await graph_write(stack, method, actor, recipient)
    assert await delivery.deliver(new_id(), like(recipient, actor, uuid.uuid4())) is None
    assert await delivery.deliver(new_id(), Intent(recipient, Kind.FOLLOW, actor_id=actor)) is None
    # Others still reach the recipient.
    assert await delivery.deliver(new_id(), like(recipient, uuid.uuid4(), uuid.uuid4()))


async def test_a_block_takes_the_blocked_out_of_existing_notifications(
    delivery: Delivery, resources: NotificationResources
) -> None:
    owner, troll, fan, post = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await delivery.deliver(new_id(), like(owner, troll, post))
    group = await delivery.deliver(new_id(), like(owner, fan, post))
    alone = await delivery.deliver(new_id(), Intent(owner, Kind.FOLLOW, actor_id=troll))
    mention = await delivery.deliver(
        new_id(), Intent(owner, Kind.MENTION, actor_id=troll, post_id=uuid.uuid4())
    )
    assert group is not None
    assert alone is not None
    assert mention is not None
    blocked = events_pb2.Envelope(
        id=str(new_id()),
        blocked=events_pb2.Blocked(blocker_id=str(owner), blocked_id=str(troll)),
    )
    await delivery.handle(blocked)
    page = await _all(resources, owner)
    assert [(n.id, n.actor_ids, n.actor_count) for n in page] == [(group.id, [fan], 1)]
    # Unblocked later, the troll's like counts again (the old one was forgotten).
    again = await delivery.deliver(new_id(), like(owner, troll, post))
    assert again is not None
    assert again.actor_count == 2


async def test_one_recipients_cursors_are_dense_and_in_commit_order(
    delivery: Delivery, resources: NotificationResources
) -> None:
    owner, post = uuid.uuid4(), uuid.uuid4()
    results = await asyncio.gather(
        *(delivery.deliver(new_id(), like(owner, uuid.uuid4(), post)) for _ in range(20))
    )
    cursors = sorted(n.cursor for n in results if n)
    assert cursors == list(range(1, 21))
    (group,) = await _all(resources, owner)
    assert group.actor_count == 20
    assert group.cursor == 20


async def test_moderation_outcomes_reach_the_author_and_the_reporters(
    delivery: Delivery, resources: NotificationResources
) -> None:
    author, reporter, post = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    decided = events_pb2.Envelope(
        id=str(new_id()),
        moderation_decided=events_pb2.ModerationDecided(
            decision_id="d-1",
            content_kind=events_pb2.CONTENT_KIND_POST,
            content_id=str(post),
            author_id=str(author),
            action="remove",
            reason="hate speech",
            reporter_ids=[str(reporter)],
        ),
    )
    await delivery.handle(decided)
    await delivery.handle(decided)  # redelivered: nothing twice
    for user in (author, reporter):
        (told,) = await _all(resources, user)
        assert (told.kind, told.action, told.reason, told.post_id) == (
            "moderation",
            "removed",
            "hate speech",
            post,
        )
        assert told.actor_ids == []


async def test_malformed_events_are_dropped(delivery: Delivery) -> None:
    odd = events_pb2.Envelope(id="not-a-uuid", liked=events_pb2.Liked(user_id="x"))
    await delivery.handle(odd)  # no exception: retrying would not help


async def _all(resources: NotificationResources, user: uuid.UUID) -> list[Notification]:
    async with resources.db.read_only() as session:
        return list(await InboxRepository(session).page(user, None, 100, unread_only=False))


async def test_forgetting_a_deleted_account_leaves_no_trace(
    stack: Stack, delivery: Delivery, resources: NotificationResources
) -> None:
    leaver, friend, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    post = uuid.uuid4()
    await delivery.deliver(new_id(), like(leaver, friend, uuid.uuid4()))  # their own
    await delivery.deliver(new_id(), like(friend, leaver, post))  # in a group...
    await delivery.deliver(new_id(), like(friend, other, post))  # ...with someone else
    await delivery.deliver(new_id(), Intent(friend, Kind.FOLLOW, actor_id=leaver))
    await delivery.deliver(new_id(), Intent(friend, Kind.MENTION, actor_id=leaver, post_id=post))
    await forget_user(resources, leaver)
    await forget_user(resources, leaver)  # a redelivered deletion finds nothing more
    assert await _all(resources, leaver) == []
    (group,) = await _all(resources, friend)
    assert (group.actor_ids, group.actor_count) == ([other], 1)
    connection = await asyncpg.connect(
        resources.settings.database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        for table in (
            "notifications",
            "notification_actors",
            "delivered_events",
            "recipient_sequences",
        ):
            found = await connection.fetchval(
                f"SELECT count(*) FROM {table} t WHERE t::text ILIKE $1", f"%{leaver}%"
            )
            assert found == 0, table
    finally:
        await connection.close()


def liked(actor: uuid.UUID, author: uuid.UUID, post: uuid.UUID) -> events_pb2.Envelope:
    return events_pb2.Envelope(
        id=str(new_id()),
        occurred_at=to_timestamp(datetime.now(UTC)),
        liked=events_pb2.Liked(user_id=str(actor), post_author_id=str(author), post_id=str(post)),
    )


async def test_a_batch_is_delivered_as_one_the_rules_holding_within_it(
    stack: Stack,
    held: tuple[HeldPublisher, Delivery],
    resources: NotificationResources,
) -> None:
    publisher, delivery = held
    owner, other, fan, fan2, muted = users(5)
    post, other_post = uuid.uuid4(), uuid.uuid4()
    await graph_write(stack, "Mute", other, muted)
    batch = [
        liked(fan, owner, post),
        liked(fan2, owner, post),  # joins the group the first one opened
        liked(fan, owner, post),  # the same actor again: nothing new
        liked(muted, other, other_post),  # muted: nothing
        liked(fan, other, other_post),
        events_pb2.Envelope(
            id=str(new_id()),
            followed=events_pb2.Followed(follower_id=str(fan), followee_id=str(owner)),
        ),
    ]
    await delivery.handle_batch(batch)
    owners = await _all(resources, owner)
    assert sorted((n.kind, n.actor_count) for n in owners) == [("follow", 1), ("like", 2)]
    (group,) = [n for n in owners if n.kind == "like"]
    assert group.actor_ids == [fan2, fan]  # the most recent first
    (others,) = await _all(resources, other)
    assert (others.actor_ids, others.actor_count) == ([fan], 1)
    # One message per notification, in its final state, with dense cursors per recipient.
    told = sorted((r, c, n.actor_count) for r, c, n in publisher.held)
    assert told == sorted([(owner, 1, 2), (owner, 2, 1), (other, 1, 1)])
    assert sorted(n.cursor for n in owners) == [1, 2]

    # The same batch delivered again (a takeover after a crash) changes nothing.
    publisher.held.clear()
    await delivery.handle_batch(batch)
    assert publisher.held == []
    again = await _all(resources, owner)
    assert sorted((n.id, n.actor_count, n.cursor) for n in again) == sorted(
        (n.id, n.actor_count, n.cursor) for n in owners
    )


async def test_a_block_after_an_exclusions_lookup_still_silences_the_actor(
    stack: Stack, delivery: Delivery
) -> None:
    recipient, actor = uuid.uuid4(), uuid.uuid4()
    # The first delivery reads (and fills) the recipient's exclusions read model ...
    assert await delivery.deliver(new_id(), like(recipient, actor, uuid.uuid4())) is not None
    # ... and the block made afterwards is seen by the next one, not an outdated entry.
    await graph_write(stack, "Block", recipient, actor)
    assert await delivery.deliver(new_id(), like(recipient, actor, uuid.uuid4())) is None
