"""The trending list: the most engaging recent posts, ranked once a minute for everyone.

Ranking every post of the window costs a few hundred milliseconds, so it is done at most
once a minute (whoever asks first) and kept in Redis as one generation; a cursor names its
generation, so paging through the list is stable while newer generations replace it.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from redis.asyncio import Redis

from services.feed.posts.repository import PostRepository
from zapcore.db import Database

CURRENT_KEY = "zap:feed:trending:current"
REFRESH_SECONDS = 60
# A generation outlives its turn as current, so cursors into it keep working this long.
KEEP_SECONDS = 900
LENGTH = 500


def _generation_key(generation: str) -> str:
    return f"zap:feed:trending:gen:{generation}"


class Trending:
    def __init__(self, redis: Redis, db: Database, window_hours: int) -> None:
        self._redis = redis
        self._db = db
        self._window = timedelta(hours=window_hours)

    async def current(self) -> tuple[str, list[uuid.UUID]]:
        generation = await self._redis.get(CURRENT_KEY)
        if generation is not None:
            found = await self.generation(generation.decode())
            if found is not None:
                return generation.decode(), found
        return await self._rank()

    async def generation(self, generation: str) -> list[uuid.UUID] | None:
        raw = await self._redis.get(_generation_key(generation))
        return None if raw is None else [uuid.UUID(i) for i in orjson.loads(raw)]

    async def _rank(self) -> tuple[str, list[uuid.UUID]]:
        now = datetime.now(UTC)
        async with self._db.read_only() as session:
            ids = list(
                await PostRepository(session).trending_posts(now - self._window, now, 0, LENGTH)
            )
        generation = secrets.token_urlsafe(8)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(
                _generation_key(generation), orjson.dumps([str(i) for i in ids]), ex=KEEP_SECONDS
            )
            pipe.set(CURRENT_KEY, generation, ex=REFRESH_SECONDS)
            await pipe.execute()
        return generation, ids
