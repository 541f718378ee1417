"""Rate-limit storage in Redis through the `limits` library (shared by gateway and auth)."""

from __future__ import annotations

from limits.aio.storage import RedisStorage
from redis.asyncio import Redis


def limiter_storage(redis_url: str, redis: Redis) -> RedisStorage:
    """`limits` storage on the caller's Redis client pool (closed with that client)."""
    return RedisStorage(
        f"async+{redis_url}",
        implementation="redispy",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        key_prefix="zap:rl",
    )
