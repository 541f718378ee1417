"""Test resources on the real local servers: private databases and a private Redis db."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterable

from redis.asyncio import Redis

from zapcore import migrations

POSTGRES_BASE = os.environ.get("ZAP_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("ZAP_TEST_REDIS", "redis://127.0.0.1:6379")
_LOCK_KEY = "zap:test-run-lock"


class TestDatabases:
    """One fresh database per service for this test run, migrated with alembic."""

    def __init__(self, services: Iterable[str]) -> None:
        run = secrets.token_hex(4)
        self.urls = {name: f"{POSTGRES_BASE}/zap_test_{run}_{name}" for name in services}

    async def create(self) -> None:
        for service, url in self.urls.items():
            await migrations.create_database(url)
            await asyncio.to_thread(migrations.upgrade, service, url)

    async def drop(self) -> None:
        for url in self.urls.values():
            await migrations.drop_database(url)


async def claim_redis_db() -> tuple[str, Redis]:
    """A Redis logical database no other test run holds, flushed; released by `release`."""
    for index in range(1, 16):
        url = f"{REDIS_BASE}/{index}"
        client = Redis.from_url(url)
        if await client.set(_LOCK_KEY, b"1", nx=True, ex=3600):
            await client.flushdb()
            await client.set(_LOCK_KEY, b"1", ex=3600)
            return url, client
        await client.aclose()
    raise RuntimeError("every Redis database 1..15 is held by another test run")


async def flush_except_lock(client: Redis) -> None:
    await client.flushdb()
    await client.set(_LOCK_KEY, b"1", ex=3600)
