"""Redis clients. Keys that belong together share a {hash tag}, so Redis Cluster works.

Both kinds of client retry a command whose connection broke (a Redis restart leaves every
pooled connection dead): a request path retries briefly, then fails so its caller can
answer 503 within its deadline; a worker rides out a restart of up to about a minute
before it gives up (and its supervisor restarts it).
"""

from __future__ import annotations

from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

_BROKEN = [ConnectionError, TimeoutError]


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
