"""The feed benchmark's drain: a level starts only once background work is back to zero."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from scripts.bench.drain import Drain, asyncpg_dsn

STREAM = "zap:events:{feed}"
SCORING = "zap:moderation:jobs"


@pytest.fixture
async def pools(databases: dict[str, str]) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    opened = {
        name: await asyncpg.create_pool(asyncpg_dsn(databases[name]), min_size=1, max_size=2)
        for name in ("feed", "graph", "moderation")
    }
    async with opened["feed"].acquire() as connection:
        await connection.execute("DELETE FROM fanout_outbox")
    try:
        yield opened
    finally:
        for pool in opened.values():
            await pool.close()


@pytest.fixture
def feed(pools: dict[str, asyncpg.Pool]) -> asyncpg.Pool:
    return pools["feed"]


@pytest.fixture
def drain(pools: dict[str, asyncpg.Pool], redis_db: tuple[str, Redis]) -> Drain:
    return Drain(redis_db[1], pools["feed"], pools)


async def owe_a_fanout(feed: asyncpg.Pool) -> uuid.UUID:
    post_id = uuid.uuid4()
    async with feed.acquire() as connection:
        await connection.execute(
            "INSERT INTO fanout_outbox (post_id, author_id) VALUES ($1, $2)", post_id, uuid.uuid4()
        )
    return post_id


async def test_the_drain_names_each_kind_of_outstanding_work(
    drain: Drain, feed: asyncpg.Pool, redis_db: tuple[str, Redis]
) -> None:
    redis = redis_db[1]
    await owe_a_fanout(feed)
    await redis.xgroup_create(STREAM, "notification", id="0", mkstream=True)
    await redis.xadd(STREAM, {b"e": b"unread"})
    await redis.zadd(SCORING, {"due": time.time() * 1000})
    # A retry deferred to later is not a backlog: waiting for it would hold every level.
    await redis.zadd(SCORING, {"retry": (time.time() + 30) * 1000})

    backlog = await drain.backlog()

    assert backlog.outstanding() == {
        "fanout outbox": 1,
        "queue zap:moderation:jobs": 1,
        "stream notification@feed": 1,
    }
    assert backlog.jobs_deferred[SCORING] == 1


async def test_a_drain_that_times_out_says_so_and_what_was_left(
    drain: Drain, feed: asyncpg.Pool
) -> None:
    await owe_a_fanout(feed)

    report = await drain.wait(0.5, poll_s=0.1, kick_scoring=False)

    assert not report.drained
    assert report.remaining == {"fanout outbox": 1}
    assert "NOT drained" in report.line()


async def test_the_drain_ends_once_the_work_is_done_and_reports_what_it_waited_for(
    drain: Drain, feed: asyncpg.Pool, redis_db: tuple[str, Redis]
) -> None:
    redis = redis_db[1]
    post_id = await owe_a_fanout(feed)
    await redis.xgroup_create(STREAM, "notification", id="$", mkstream=True)
    await redis.xadd(STREAM, {b"e": b"unread"})

    async def workers_catch_up() -> None:
        await asyncio.sleep(0.5)
        async with feed.acquire() as connection:
            await connection.execute(
                "UPDATE fanout_outbox SET done_at = now() WHERE post_id = $1", post_id
            )
        entries = await redis.xreadgroup("notification", "reader", {STREAM: ">"})
        await redis.xack(STREAM, "notification", *(entry for entry, _ in entries[0][1]))

    catching_up = asyncio.create_task(workers_catch_up())
    report = await drain.wait(10, poll_s=0.1, kick_scoring=False)
    await catching_up

    assert report.drained
    assert report.waited_for == {"fanout outbox": 1, "stream notification@feed": 1}
    assert 0.4 < report.seconds < 5
