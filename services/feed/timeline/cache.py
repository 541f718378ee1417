"""Every user's ranked home feed in Redis: a bounded sorted set of post ids by score.

Layout (the {hash tag} keeps a user's keys on one Redis Cluster slot):
  zap:feed:{<user>}              post id -> score, at most `size` entries, plus a sentinel
  zap:feed:{<user>}:snap:<id>    a frozen copy that one reader pages through

The cache key lives as long as its user is active (its TTL is the active window, renewed
on every read). Fanout pushes only into keys that exist, so inactive users cost no Redis
memory; their feed is rebuilt from the database on their next read.

The sentinel member makes "exists" mean "was built": a rebuild first plants the sentinel,
then reads the database, so a fanout that committed after that read still finds the key
and pushes (fanout writes the database before it pushes).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

SENTINEL = b"~"
_SENTINEL_SCORE = float("-inf")

# Push into an existing feed and keep it bounded; rank 0 is the sentinel and stays.
_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[3]) + 2))
return 1
"""


def feed_key(user_id: uuid.UUID) -> str:
    return f"zap:feed:{{{user_id}}}"


def snapshot_key(user_id: uuid.UUID, snapshot_id: str) -> str:
    return f"zap:feed:{{{user_id}}}:snap:{snapshot_id}"


class FeedCache:
    def __init__(self, redis: Redis, *, size: int, ttl_seconds: int, snapshot_ttl: int) -> None:
        self._redis = redis
        self._size = size
        self._ttl = ttl_seconds
        self._snapshot_ttl = snapshot_ttl
        self._push = redis.register_script(_PUSH)

    async def touch(self, user_id: uuid.UUID) -> bool:
        """Renew an active user's cache; False when it has to be rebuilt."""
        return bool(await self._redis.expire(feed_key(user_id), self._ttl))

    async def begin_rebuild(self, user_id: uuid.UUID) -> None:
        key = feed_key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {SENTINEL: _SENTINEL_SCORE})
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def fill(self, user_id: uuid.UUID, entries: Sequence[tuple[uuid.UUID, float]]) -> None:
        if entries:
            await self._redis.zadd(feed_key(user_id), {str(p): s for p, s in entries})

    async def push(self, entries: Iterable[tuple[uuid.UUID, uuid.UUID, float]]) -> int:
        """(user, post, score) into the feeds that are cached; returns how many were."""
        async with self._redis.pipeline(transaction=False) as pipe:
            count = 0
            for user_id, post_id, score in entries:
                await self._push(
                    keys=[feed_key(user_id)], args=[score, str(post_id), self._size], client=pipe
                )
                count += 1
            if count == 0:
                return 0
            answers = await pipe.execute()
        return sum(int(a) for a in answers)

    async def rescore(self, entries: Iterable[tuple[uuid.UUID, uuid.UUID, float]]) -> None:
        """New scores for entries already cached (XX: nothing is added)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, post_id, score in entries:
                pipe.zadd(feed_key(user_id), {str(post_id): score}, xx=True)
            await pipe.execute()

    async def remove(self, user_id: uuid.UUID, post_ids: Sequence[uuid.UUID]) -> None:
        if post_ids:
            await self._redis.zrem(feed_key(user_id), *(str(p) for p in post_ids))

    async def snapshot(
        self, user_id: uuid.UUID, extra: Sequence[tuple[uuid.UUID, float]]
    ) -> tuple[str, int]:
        """Freeze the user's ranked feed (plus `extra` entries) for paging; (id, size)."""
        snapshot_id = secrets.token_urlsafe(9)
        key = snapshot_key(user_id, snapshot_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrangestore(key, feed_key(user_id), 0, self._size, desc=True)
            if extra:
                pipe.zadd(key, {str(p): s for p, s in extra})
            pipe.zrem(key, SENTINEL)
            pipe.expire(key, self._snapshot_ttl)
            pipe.zcard(key)
            answers = await pipe.execute()
        return snapshot_id, int(answers[-1])

    async def snapshot_exists(self, user_id: uuid.UUID, snapshot_id: str) -> bool:
        return bool(await self._redis.exists(snapshot_key(user_id, snapshot_id)))

    async def page(
        self, user_id: uuid.UUID, snapshot_id: str, offset: int, count: int
    ) -> list[tuple[uuid.UUID, float]]:
        """Entries [offset, offset+count) of a snapshot, best first."""
        rows = await self._redis.zrange(
            snapshot_key(user_id, snapshot_id),
            offset,
            offset + count - 1,
            desc=True,
            withscores=True,
        )
        return [(uuid.UUID(member.decode()), float(score)) for member, score in rows]
