"""The home feed while the feed database is down or slow: served from Redis, marked
degraded once the post cards are past their refresh time, with nothing deleted, removed or
blocked coming back; while the cards are fresh, nobody notices the outage at all.

The faults are real: a feed service, its worker and a gateway run here against a database
and a Redis database of their own (the session's stack keeps serving every other test),
and the database is closed to connections with its sessions killed, or has its posts table
locked, for the length of a `with` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from services.feed import app as feed_app
from services.feed.posts.cards import card_key
from tests.e2e.feed_helpers import follow, post
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support import resources
from tests.support.problems import assert_problem
from tests.support.stack import (
    TEST_SECRET,
    Stack,
    free_port,
    gateway_settings,
    run_worker,
    serve_gateway,
    service_settings,
)
from tests.support.waiting import eventually
from zap.common.v1 import common_pb2
from zap.feed.v1 import feed_pb2, feed_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner

HOME = "/api/v1/feed/home/"


@dataclass
class IsolatedFeed:
    """A feed service with a database nobody else uses, behind a gateway of its own."""

    client: httpx.AsyncClient
    database_url: str
    feed_target: str
    redis: Redis


# The isolated feed asks the database about a post again once its card is this old; the
# degraded tests wait it out so that a read needs the database.
CARD_REFRESH_SECONDS = 0.5


@pytest.fixture
async def isolated(stack: Stack) -> AsyncIterator[IsolatedFeed]:
    async with isolated_feed(stack, post_card_refresh_seconds=CARD_REFRESH_SECONDS) as feed:
        yield feed


@pytest.fixture
async def isolated_fresh_cards(stack: Stack) -> AsyncIterator[IsolatedFeed]:
    async with isolated_feed(stack) as feed:
        yield feed


@contextlib.asynccontextmanager
async def isolated_feed(stack: Stack, **feed_settings: Any) -> AsyncIterator[IsolatedFeed]:
    databases = resources.TestDatabases(["feed"])
    await databases.create()
    redis_url, redis = await resources.claim_redis_db()
    port = free_port()
    platform = stack.platform.model_copy(
        update={"redis_url": redis_url, "feed_target": f"127.0.0.1:{port}"}
    )
    settings = service_settings(
        "feed",
        database_url=databases.urls["feed"],
        grpc_port=port,
        shutdown_grace_seconds=1,
        home_db_budget_seconds=0.3,
        home_db_retry_seconds=0.2,
        **feed_settings,
    )
    try:
        async with contextlib.AsyncExitStack() as running:
            server = await running.enter_async_context(feed_app.running(platform, settings))
            await server.start()
            await running.enter_async_context(run_worker("feed", platform, settings))
            url = await running.enter_async_context(serve_gateway(platform, gateway_settings()))
            client = await running.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
            yield IsolatedFeed(client, databases.urls["feed"], platform.feed_target, redis)
    finally:
        await redis.flushdb()
        await redis.aclose()
        await databases.drop()


def _admin_dsn(database_url: str) -> tuple[str, str]:
    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), str(url.database)


@contextlib.asynccontextmanager
async def database_down(database_url: str) -> AsyncIterator[None]:
    """The database refuses new connections and loses its open ones, until the block ends."""
    dsn, name = _admin_dsn(database_url)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def posts_locked(database_url: str) -> AsyncIterator[None]:
    """Every query on posts waits (a slow database, not a dead one) until the block ends."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await connection.close()


async def home(client: httpx.AsyncClient, user: User, **params: Any) -> httpx.Response:
    return await client.get(HOME, params=params, headers=user.headers)


def ids_of(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [entry["id"] for entry in answer.json()["results"]]


async def cached_views(redis: Redis, post_ids: list[str]) -> list[bool]:
    return [bool(await redis.hexists(card_key(p), "p")) for p in post_ids]


async def warm_feed(isolated: IsolatedFeed, viewer: User, post_ids: list[str]) -> None:
    """Read until every post is on the viewer's page, then until its view is cached."""

    async def probe() -> list[str]:
        answer = await home(isolated.client, viewer, limit=100)
        # Setting up, not the assertion: with a 0.3 s budget on the test run's one event
        # loop, a stall elsewhere can make a first read 503; the warm-up reads again.
        if answer.status_code == 503:
            return []
        return ids_of(answer)

    await eventually(probe, lambda ids: set(post_ids) <= set(ids))
    await eventually(lambda: cached_views(isolated.redis, post_ids), all)


def degraded_reads(outcome: str) -> float:
    value = REGISTRY.get_sample_value("zap_feed_degraded_reads_total", {"outcome": outcome})
    return value or 0.0


async def remove_by_moderation(isolated: IsolatedFeed, post_id: str) -> None:
    """What the moderation service sends when a post is removed."""
    identity = IdentitySigner(TEST_SECRET).sign(Identity(service="moderation"))
    async with grpc.aio.insecure_channel(isolated.feed_target) as channel:
        await feed_pb2_grpc.FeedServiceStub(channel).SetModerationState(
            feed_pb2.SetModerationStateRequest(
                content_kind=feed_pb2.CONTENT_KIND_POST,
                content_id=post_id,
                visibility=common_pb2.VISIBILITY_REMOVED,
                source_id=str(uuid.uuid4()),
            ),
            metadata=((IDENTITY_METADATA_KEY, identity),),
        )


async def test_a_database_outage_serves_the_cached_page_without_what_was_taken_away(
    isolated: IsolatedFeed,
) -> None:
    client = isolated.client
    viewer, author, blocked, muted, newcomer = [await make_user(client) for _ in range(5)]
    for followee in (author, blocked, muted):
        await follow(client, viewer, followee)
    await follow(client, newcomer, author)
    kept = [(await post(client, author, f"still here {n}"))["id"] for n in range(4)]
    deleted = (await post(client, author, "deleted before the outage"))["id"]
    removed = (await post(client, author, "removed by moderation before the outage"))["id"]
    by_blocked = (await post(client, blocked, "by someone blocked before the outage"))["id"]
    by_muted = (await post(client, muted, "by someone muted before the outage"))["id"]
    taken_away = [deleted, removed, by_blocked, by_muted]
    # Read while all of it was visible: every one of these views is cached.
    await warm_feed(isolated, viewer, kept + taken_away)

    answer = await client.delete(f"/api/v1/posts/{deleted}/", headers=author.headers)
    assert answer.status_code == 204, answer.text
    await remove_by_moderation(isolated, removed)
    for verb, user in (("block", blocked), ("mute", muted)):
        answer = await client.post(f"/api/v1/users/{user.id}/{verb}/", headers=viewer.headers)
        assert answer.status_code == 200, answer.text
    before = await home(client, viewer)
    assert before.json()["degraded"] is False
    assert "zap-degraded" not in before.headers
    assert sorted(ids_of(before)) == sorted(kept)
    served, unavailable = degraded_reads("served"), degraded_reads("unavailable")

    async with database_down(isolated.database_url):
        await asyncio.sleep(CARD_REFRESH_SECONDS)
        during = await home(client, viewer)
        assert ids_of(during) == ids_of(before)
        assert during.json()["degraded"] is True
        assert during.headers["zap-degraded"] == "true"
        assert not set(taken_away) & set(ids_of(during))
        assert all(entry["author"]["id"] == author.id for entry in during.json()["results"])

        # Paging works from the cache too: a cursor, then the rest.
        first = await home(client, viewer, limit=2)
        cursor = first.json()["next_cursor"]
        assert cursor
        assert first.json()["degraded"] is True
        rest = await home(client, viewer, limit=10, cursor=cursor)
        assert rest.json()["degraded"] is True
        assert ids_of(first) + ids_of(rest) == ids_of(before)

        # Someone whose feed was never read has nothing cached: a clear 503, not a 500.
        cold = await home(client, newcomer)
        assert_problem(cold, 503, reason="feed-unavailable")

        assert degraded_reads("served") >= served + 3
        assert degraded_reads("unavailable") >= unavailable + 1

    async def after_outage() -> httpx.Response:
        return await home(client, viewer)

    recovered = await eventually(after_outage, lambda a: a.json().get("degraded") is False)
    assert ids_of(recovered) == ids_of(before)
    assert "zap-degraded" not in recovered.headers
    # The newcomer's feed is built from the database again.
    assert (await home(client, newcomer)).status_code == 200


async def test_a_slow_database_gives_a_degraded_page_not_a_timeout(
    isolated: IsolatedFeed,
) -> None:
    client = isolated.client
    viewer, author = await make_user(client), await make_user(client)
    await follow(client, viewer, author)
    posts = [(await post(client, author, f"slow day {n}"))["id"] for n in range(3)]
    await warm_feed(isolated, viewer, posts)
    before = await home(client, viewer)

    async with posts_locked(isolated.database_url):
        await asyncio.sleep(CARD_REFRESH_SECONDS)
        during = await home(client, viewer)
        assert during.json()["degraded"] is True
        assert ids_of(during) == ids_of(before)

    async def after_lock() -> httpx.Response:
        return await home(client, viewer)

    recovered = await eventually(after_lock, lambda a: a.json().get("degraded") is False)
    assert ids_of(recovered) == ids_of(before)


async def test_a_database_outage_goes_unnoticed_while_the_post_cards_are_fresh(
    isolated_fresh_cards: IsolatedFeed,
) -> None:
    """A warm home read needs no PostgreSQL: post cards, the viewer's likes, whom they
    exclude and the authors' cards all come from Redis."""
    isolated = isolated_fresh_cards
    client = isolated.client
    viewer, author = await make_user(client), await make_user(client)
    await follow(client, viewer, author)
    posts = [(await post(client, author, f"read from redis {n}"))["id"] for n in range(3)]
    answer = await client.post(f"/api/v1/posts/{posts[1]}/like/", headers=viewer.headers)
    assert answer.status_code == 200, answer.text
    await warm_feed(isolated, viewer, posts)
    before = await home(client, viewer)

    async with database_down(isolated.database_url):
        during = await home(client, viewer)
        assert during.json()["degraded"] is False
        assert "zap-degraded" not in during.headers
        assert ids_of(during) == ids_of(before)
        liked = {e["id"]: e["liked"] for e in during.json()["results"]}
        assert liked == {posts[0]: False, posts[1]: True, posts[2]: False}
        assert {e["like_count"] for e in during.json()["results"] if e["id"] == posts[1]} == {1}
