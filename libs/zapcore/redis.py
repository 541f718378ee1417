"""Redis clients. Keys that belong together share a {hash tag}, so Redis Cluster works."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    """A pooled client with timeouts, so a stalled Redis fails a call instead of hanging it."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry_on_timeout=True,
    )
    return client
