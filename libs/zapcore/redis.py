"""Redis clients. Keys that belong together share a {hash tag}, so Redis Cluster works.

Both kinds of client retry a command whose connection broke (a Redis restart leaves every
pooled connection dead): a request path retries briefly, then fails so its caller can
answer 503 within its deadline; a worker rides out a restart of up to about a minute
before it gives up (and its supervisor restarts it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

_BROKEN = [ConnectionError, RedisTimeoutError]


def create_redis(url: str) -> Redis:
    """A pooled client with timeouts, so a stalled Redis fails a call instead of hanging it."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry_on_error=list(_BROKEN),
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), retries=3),
    )
    return client


def worker_redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for a worker: reconnect through a Redis restart."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 30
    settings.conn_retry_delay = 2
    settings.retry_on_error = list(_BROKEN)
    settings.retry = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=30)
    return settings


# One command of a batch: its name and arguments as Redis takes them.
Command = tuple[str | bytes | int | float, ...]


class Batch:
    """Commands for one round trip, gathered from the several read models a request reads,
    and their replies, in the order added.

    redis-py's pipeline costs about 50 µs of CPU per command (packing in Python, a timeout
    and a response callback per reply): on a page that reads 20 post cards, 20 user cards and
    a few more keys, more than the rest of the request. A batch packs its commands with
    hiredis and reads the raw replies under one timeout, about a third of that. Replies are
    raw (bytes, ints, lists), as Redis sends them; the read models that add commands parse
    their own.
    """

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def add(self, *command: str | bytes | int | float) -> int:
        """Queue a command; the index of its reply."""
        self._commands.append(command)
        return len(self._commands) - 1

    def __len__(self) -> int:
        return len(self._commands)

    async def run(self, redis: Redis) -> list[Any]:
        """Send every command in one write and read every reply. A reply that is an error
        raises (as ResponseError) once all replies are read; a broken connection is dropped
        and the batch retried as the client retries a command (reads, and writes that are
        idempotent, are what batches carry)."""
        if not self._commands:
            return []
        # hiredis's stub types a command as a one-element tuple; it takes any length.
        packed = b"".join([hiredis.pack_command(c) for c in self._commands])  # type: ignore[arg-type]
        pool = redis.connection_pool
        connection = await pool.get_connection()
        try:
            replies: list[Any] = await connection.retry.call_with_retry(
                lambda: _exchange(connection, packed, len(self._commands)),
                lambda _error: connection.disconnect(nowait=True),
            )
            return replies
        finally:
            await pool.release(connection)


async def _exchange(connection: Connection, packed: bytes, count: int) -> list[Any]:
    """The one place that reaches into redis-py's connection (its writer and its parser, as
    its own pipeline does, without a timeout and a callback per reply). Pinned by uv.lock
    and covered by tests/libs/test_redis_batch.py."""
    if not connection.is_connected:
        await connection.connect()  # type: ignore[no-untyped-call]
    else:
        await connection.check_health()  # type: ignore[no-untyped-call]
    try:
        async with asyncio.timeout(connection.socket_timeout):
            await connection._send_packed_command([packed])
            parser: Any = connection._parser  # hiredis's or redis-py's, both read_response()
            replies = [await parser.read_response() for _ in range(count)]
    except TimeoutError:
        await connection.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout talking to Redis") from None
    except OSError as error:
        await connection.disconnect(nowait=True)
        raise ConnectionError(f"Error talking to Redis: {error}") from error
    except BaseException:
        # A batch cut off halfway leaves replies on the wire: the connection is not reusable.
        await connection.disconnect(nowait=True)
        raise
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
