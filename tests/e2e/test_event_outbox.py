"""Events go through an outbox (zapcore.outbox): written with the change, published after it,
and published later by a relay when that failed. None is lost."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from services.feed.resources import FeedResources
from tests.e2e.feed_helpers import post
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.events.v1 import events_pb2
from zapcore.events import FEED, FIELD, GRAPH, envelope, stream_key


async def outbox_rows(stack: Stack) -> int:
    connection = await asyncpg.connect(stack.dsn("feed"))
    try:
        count = await connection.fetchval("SELECT count(*) FROM event_outbox")
    finally:
        await connection.close()
    assert isinstance(count, int)
    return count


async def like_notifications(
    client: httpx.AsyncClient, author: User, post_id: str
) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/notifications/", headers=author.headers)
    assert answer.status_code == 200, answer.text
    return [
        item
        for item in answer.json()["results"]
        if item["kind"] == "like" and item["post_id"] == post_id
    ]


async def test_a_like_is_announced_and_leaves_nothing_in_the_outbox(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author, fan = await make_user(client), await make_user(client)
    written = await post(client, author, "like me")
    liked = await client.post(f"/api/v1/posts/{written['id']}/like/", headers=fan.headers)
    assert liked.status_code == 200
    await eventually(lambda: like_notifications(client, author, written["id"]), bool)
    await eventually(lambda: outbox_rows(stack), lambda rows: rows == 0)


async def test_an_event_left_unpublished_is_relayed_once_under_its_own_id(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author, fan = await make_user(client), await make_user(client)
    written = await post(client, author, "did anyone like this?")
    # The change committed with its event, then the process died before publishing it.
    event = envelope(
        events_pb2.Liked(user_id=fan.id, post_id=written["id"], post_author_id=author.id),
        producer="feed",
    )
    connection = await asyncpg.connect(stack.dsn("feed"))
    try:
        await connection.execute(
            "INSERT INTO event_outbox (id, topic, envelope) VALUES ($1, $2, $3)",
            uuid.UUID(event.id),
            FEED,
            event.SerializeToString(),
        )
    finally:
        await connection.close()

    # The worker's relay (every 5 s) or this call publishes it, whichever comes first.
    resources: FeedResources = stack.workers["feed"].ctx["resources"]
    await resources.outbox.relay_stale(older_than_seconds=0)
    assert await outbox_rows(stack) == 0
    assert await resources.outbox.relay_stale(older_than_seconds=0) == 0

    delivered = await eventually(lambda: like_notifications(client, author, written["id"]), bool)
    assert [item["actor_count"] for item in delivered] == [1]
    entries = await resources.redis.xrange(stream_key(FEED), "-", "+")
    ids = [events_pb2.Envelope.FromString(fields[FIELD]).id for _, fields in entries]
    assert ids.count(event.id) == 1


async def test_graph_relays_a_follow_left_unpublished_by_itself(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """Graph has no worker: its relay runs beside the service, every 5 s."""
    star, fan = await make_user(client), await make_user(client)
    event = envelope(events_pb2.Followed(follower_id=fan.id, followee_id=star.id), producer="graph")
    connection = await asyncpg.connect(stack.dsn("graph"))
    try:
        await connection.execute(
            "INSERT INTO event_outbox (id, topic, envelope) VALUES ($1, $2, $3)",
            uuid.UUID(event.id),
            GRAPH,
            event.SerializeToString(),
        )
    finally:
        await connection.close()

    async def follows() -> list[dict[str, Any]]:
        answer = await client.get("/api/v1/notifications/", headers=star.headers)
        return [item for item in answer.json()["results"] if item["kind"] == "follow"]

    delivered = await eventually(follows, bool, timeout=30, interval=0.2)
    assert [actor["id"] for actor in delivered[0]["actors"]] == [fan.id]
