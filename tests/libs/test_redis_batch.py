"""zapcore.redis.Batch: many commands in one round trip, answered as Redis answers them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.support.resources import claim_redis_db
from zapcore.redis import Batch, create_redis


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    url, plain = await claim_redis_db()
    client = create_redis(url)
    try:
        yield client
    finally:
        await client.aclose()
        await plain.flushdb()
        await plain.aclose()


def _batch(*commands: tuple[str | bytes | int | float, ...]) -> Batch:
    batch = Batch()
    for command in commands:
        batch.add(*command)
    return batch


async def test_a_batch_answers_what_each_command_answers_alone(redis: Redis) -> None:
    await redis.hset("card:{1}", mapping={"p": b"\x00\xffbytes", "f": "1.5"})
    await redis.zadd("feed:{u}", {"a": 2.5, "b": 1.0})
    batch = Batch()
    hmget = batch.add("HMGET", "card:{1}", "p", "f", "m")
    missing = batch.add("GET", "nothing:{2}")
    added = batch.add("SET", "flag:{3}", 1, "EX", 60, "NX")
    again = batch.add("SET", "flag:{3}", 1, "EX", 60, "NX")
    ranked = batch.add("ZREVRANGEBYSCORE", "feed:{u}", "+inf", "-inf", "WITHSCORES")
    renewed = batch.add("EXPIRE", "feed:{u}", 30)

    replies = await batch.run(redis)

    assert replies[hmget] == [b"\x00\xffbytes", b"1.5", None]
    assert replies[missing] is None
    assert replies[added] == b"OK"
    assert replies[again] is None
    assert replies[ranked] == [b"a", b"2.5", b"b", b"1"]
    assert replies[renewed] == 1
    assert await redis.ttl("flag:{3}") > 0


async def test_an_error_reply_raises_after_every_reply_is_read(redis: Redis) -> None:
    await redis.set("text:{1}", "not a hash")
    batch = _batch(("SET", "before:{1}", "x"), ("HGET", "text:{1}", "f"), ("SET", "after:{1}", "y"))

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await batch.run(redis)

    # Redis ran the commands around the failed one, and the connection is still in step.
    assert await redis.get("before:{1}") == b"x"
    assert await redis.get("after:{1}") == b"y"
    assert await _batch(("GET", "after:{1}")).run(redis) == [b"y"]


async def test_a_connection_killed_under_the_pool_is_replaced(redis: Redis) -> None:
    await redis.set("k:{1}", "v")
    assert await _batch(("GET", "k:{1}")).run(redis) == [b"v"]
    # Every pooled connection dies, as in a Redis restart.
    await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no")

    assert await _batch(("GET", "k:{1}"), ("EXISTS", "k:{1}")).run(redis) == [b"v", 1]


async def test_a_stalled_reply_fails_the_batch_within_the_socket_timeout() -> None:
    url, plain = await claim_redis_db()
    client = Redis.from_url(url, socket_timeout=0.2)
    try:
        blocked = _batch(("BLPOP", "never:{1}", 5))
        started = asyncio.get_running_loop().time()
        with pytest.raises(RedisTimeoutError):
            await blocked.run(client)
        assert asyncio.get_running_loop().time() - started < 2
        # The stalled connection was dropped, not handed to the next caller mid-reply.
        await plain.rpush("never:{1}", "late")
        assert await _batch(("PING",)).run(client) == [b"PONG"]
    finally:
        await client.aclose()
        await plain.flushdb()
        await plain.aclose()


async def test_an_empty_batch_does_not_touch_redis() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    assert await Batch().run(client) == []
    await client.aclose()
