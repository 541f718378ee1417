"""Every user's ranked home feed in Redis: a bounded sorted set of post ids by score.

Keys of one user share a {hash tag}, so they live on one Redis Cluster slot:
  zap:feed:{<user>}               post id -> score, at most `size` entries, plus a sentinel
  zap:feed:{<user>}:epoch         bumped whenever the scores are rewritten (rescore, rebuild)
  zap:feed:{<user>}:paging        set while the user pages through their feed
  zap:feed:{<user>}:snap:<epoch>  the feed as it was before a rescore, kept while paging
  zap:feed:{<user>}:pulled        set when pulled authors' posts were merged in recently
  zap:feed:active:{<shard>}       user -> time of their last read, users sharded 16 ways

Posts themselves are in their cards (posts/cards.py), a viewer's likes and shares in their
engagement entry (posts/engagement.py).

The active sets let fanout ask, in one command per shard and batch, which followers have a
cached feed at all, instead of sending one command per follower: most followers of anyone
are not reading right now.

The feed key lives as long as its user is active (its TTL is the active window, renewed on
every read). Fanout pushes only into keys that exist, so inactive users cost no Redis
memory; their feed is rebuilt from the database on their next read.

The sentinel member makes "exists" mean "was built": a rebuild first plants the sentinel,
then reads the database, so a fanout that committed after that read still finds the key
and pushes (fanout writes the database before it pushes).

Paging is by (score, post id) bound, which fresh posts (scored as new, above any bound) and
likes (which change no cached score) cannot disturb. Only a rescore rewrites scores; it
first copies the feed of a user who is paging, and a cursor names the epoch it belongs to,
so an ongoing paging session keeps reading the order it started with.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from zapcore.redis import Batch

SENTINEL = b"~"
_SENTINEL_SCORE = float("-inf")

# Push into an existing feed and keep it bounded; rank 0 is the sentinel and stays.
_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[3]) + 2))
return 1
"""

# New scores for one user's cached entries (XX: nothing is added). A user who is paging
# keeps a copy of the old order under the old epoch first.
# KEYS: feed, epoch, paging, snapshot-for-current-epoch. ARGV: ttl, then score/member pairs.
_RESCORE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('COPY', KEYS[1], KEYS[4], 'REPLACE')
  redis.call('EXPIRE', KEYS[4], ARGV[1])
end
redis.call('INCR', KEYS[2])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[i], ARGV[i + 1])
end
return 1
"""

Entry = tuple[uuid.UUID, float]


@dataclass(frozen=True)
class Opening:
    built: bool  # the feed was cached (and is renewed); else it has to be rebuilt
    pull_due: bool  # this read claimed the pulled-authors merge
    epoch: int
    first: list[Entry]  # the best entries, as they were before any rebuild or merge


ACTIVE_SHARDS = 16


def feed_key(user_id: uuid.UUID) -> str:
    return f"zap:feed:{{{user_id}}}"


def _key(user_id: uuid.UUID, suffix: str) -> str:
    return f"{feed_key(user_id)}:{suffix}"


def active_key(user_id: uuid.UUID) -> str:
    return f"zap:feed:active:{{{user_id.int % ACTIVE_SHARDS}}}"


class FeedCache:
    def __init__(
        self, redis: Redis, *, size: int, ttl_seconds: int, paging_ttl_seconds: int
    ) -> None:
        self._redis = redis
        self._size = size
        self._ttl = ttl_seconds
        self._paging_ttl = paging_ttl_seconds
        self._push = redis.register_script(_PUSH)
        self._rescore = redis.register_script(_RESCORE)

    async def open_first_page(
        self, user_id: uuid.UUID, count: int, pull_refresh_seconds: int
    ) -> Opening:
        """What a first page needs, in one round trip: renew the feed and mark the user
        active, claim the pulled-authors merge (at most once per `pull_refresh_seconds`),
        the epoch, and the first `count` entries."""
        batch = Batch()
        opening = self.queue_opening(batch, user_id, count, pull_refresh_seconds)
        return self.opened((await batch.run(self._redis))[opening])

    def queue_opening(
        self, batch: Batch, user_id: uuid.UUID, count: int, pull_refresh_seconds: int
    ) -> slice:
        """`open_first_page`'s commands, added to a batch another read sends (`opened`
        reads their replies)."""
        start = len(batch)
        key = feed_key(user_id)
        batch.add("EXPIRE", key, self._ttl)
        batch.add("ZADD", active_key(user_id), time.time(), str(user_id))
        batch.add("SET", _key(user_id, "pulled"), 1, "EX", pull_refresh_seconds, "NX")
        batch.add("GET", _key(user_id, "epoch"))
        batch.add("ZREVRANGEBYSCORE", key, "+inf", "-inf", "WITHSCORES", "LIMIT", 0, count)
        return slice(start, len(batch))

    @staticmethod
    def opened(replies: Sequence[Any]) -> Opening:
        renewed, _, pull_due, epoch, rows = replies
        return Opening(
            built=bool(renewed),
            pull_due=pull_due is not None,
            epoch=int(epoch or 0),
            first=_scored(rows),
        )

    async def begin_rebuild(self, user_id: uuid.UUID) -> None:
        # Marked active and planted before the database is read (see the module docstring).
        key = feed_key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {SENTINEL: _SENTINEL_SCORE})
            pipe.expire(key, self._ttl)
            pipe.incr(_key(user_id, "epoch"))
            pipe.zadd(active_key(user_id), {str(user_id): time.time()})
            await pipe.execute()

    async def abandon_rebuild(self, user_id: uuid.UUID) -> None:
        """A rebuild whose database read failed: without its key the next read rebuilds,
        instead of taking the planted, empty feed for a built one."""
        await self._redis.delete(feed_key(user_id))

    async def active(self, user_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these users read their feed within the active window."""
        shards: dict[str, list[uuid.UUID]] = defaultdict(list)
        for user_id in user_ids:
            shards[active_key(user_id)].append(user_id)
        since = time.time() - self._ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, members in shards.items():
                pipe.zmscore(key, [str(m) for m in members])
            answers = await pipe.execute()
        return {
            member
            for members, scores in zip(shards.values(), answers, strict=True)
            for member, seen in zip(members, scores, strict=True)
            if seen is not None and seen >= since
        }

    async def forget_inactive(self) -> int:
        """Drop users whose last read is older than the active window from the active sets."""
        until = time.time() - self._ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(ACTIVE_SHARDS):
                pipe.zremrangebyscore(f"zap:feed:active:{{{shard}}}", "-inf", until)
            return sum(int(n) for n in await pipe.execute())

    async def fill(
        self, user_id: uuid.UUID, entries: Sequence[Entry], *, replace: bool = True
    ) -> None:
        """Add entries; with replace=False, entries already cached keep their score."""
        if entries:
            await self._redis.zadd(
                feed_key(user_id), {str(p): s for p, s in entries}, nx=not replace
            )

    async def push(self, entries: Iterable[tuple[uuid.UUID, uuid.UUID, float]]) -> int:
        """(user, post, score) into the feeds that are cached; returns how many were."""
        wanted = list(entries)
        active = await self.active([user_id for user_id, _, _ in wanted])
        async with self._redis.pipeline(transaction=False) as pipe:
            count = 0
            for user_id, post_id, score in wanted:
                if user_id not in active:
                    continue
                await self._push(
                    keys=[feed_key(user_id)], args=[score, str(post_id), self._size], client=pipe
                )
                count += 1
            if count == 0:
                return 0
            answers = await pipe.execute()
        return sum(int(a) for a in answers)

    async def rescore(self, entries: Iterable[tuple[uuid.UUID, uuid.UUID, float]]) -> int:
        """New scores for cached entries, one atomic script per user; returns users touched."""
        by_user: dict[uuid.UUID, list[str | float]] = defaultdict(list)
        for user_id, post_id, score in entries:
            by_user[user_id] += [score, str(post_id)]
        if not by_user:
            return 0
        users = list(by_user)
        epochs = await self._redis.mget([_key(u, "epoch") for u in users])
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, epoch in zip(users, epochs, strict=True):
                keys = [
                    feed_key(user_id),
                    _key(user_id, "epoch"),
                    _key(user_id, "paging"),
                    _key(user_id, f"snap:{int(epoch or 0)}"),
                ]
                await self._rescore(
                    keys=keys, args=[self._paging_ttl, *by_user[user_id]], client=pipe
                )
            answers = await pipe.execute()
        return sum(int(a) for a in answers)

    async def remove(self, user_id: uuid.UUID, post_ids: Sequence[uuid.UUID]) -> None:
        if post_ids:
            await self._redis.zrem(feed_key(user_id), *(str(p) for p in post_ids))

    async def epoch(self, user_id: uuid.UUID) -> int:
        return int(await self._redis.get(_key(user_id, "epoch")) or 0)

    async def mark_paging(self, user_id: uuid.UUID) -> None:
        await self._redis.set(_key(user_id, "paging"), 1, ex=self._paging_ttl)

    def queue_mark_paging(self, batch: Batch, user_id: uuid.UUID) -> None:
        batch.add("SET", _key(user_id, "paging"), 1, "EX", self._paging_ttl)

    async def is_paging(self, user_id: uuid.UUID) -> bool:
        return bool(await self._redis.exists(_key(user_id, "paging")))

    async def release_pull_refresh(self, user_id: uuid.UUID) -> None:
        """The merge that claimed the refresh failed: the next first page tries again."""
        await self._redis.delete(_key(user_id, "pulled"))

    @staticmethod
    def queue_epoch(batch: Batch, user_id: uuid.UUID) -> int:
        """Add the read of the feed's current epoch to a batch (`source` takes its reply)."""
        return batch.add("GET", _key(user_id, "epoch"))

    async def source(self, user_id: uuid.UUID, epoch: int, current: bytes | None) -> str | None:
        """The key a cursor of `epoch` reads, given the `current` epoch as read: the live
        feed, its snapshot, or None (gone)."""
        if epoch == int(current or 0):
            return feed_key(user_id)
        snapshot = _key(user_id, f"snap:{epoch}")
        return snapshot if await self._redis.exists(snapshot) else None

    async def page(self, key: str, after: Entry | None, count: int) -> list[Entry]:
        """Up to `count` entries best first, strictly after (score, id) `after`."""
        batch = Batch()
        if after is None:
            batch.add("ZREVRANGEBYSCORE", key, "+inf", "-inf", "WITHSCORES", "LIMIT", 0, count)
            [rows] = await batch.run(self._redis)
            return _scored(rows)
        last, score = after
        bound = repr(score)
        # Equal scores are ordered by member, descending: the rest of a tie comes first.
        batch.add("ZREVRANGEBYSCORE", key, bound, bound, "WITHSCORES")
        batch.add("ZREVRANGEBYSCORE", key, f"({bound}", "-inf", "WITHSCORES", "LIMIT", 0, count)
        ties, lower = await batch.run(self._redis)
        rest_of_tie = [(p, s) for p, s in _scored(ties) if str(p) < str(last)]
        return (rest_of_tie + _scored(lower))[:count]

    async def forget(
        self, user_id: uuid.UUID, removed: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> None:
        """A deleted account: its own keys go, and its posts leave everyone's feeds (every
        post in a cached feed has a feed item, its author's own)."""
        keys = [key async for key in self._redis.scan_iter(match=f"{feed_key(user_id)}*")]
        async with self._redis.pipeline(transaction=False) as pipe:
            if keys:
                pipe.delete(*keys)
            pipe.zrem(active_key(user_id), str(user_id))
            for reader, post_id in removed:
                pipe.zrem(feed_key(reader), str(post_id))
            await pipe.execute()


def _scored(flat: Sequence[bytes]) -> list[Entry]:
    """Entries from a raw WITHSCORES reply (member, score, member, score, ...)."""
    return [
        (uuid.UUID(member.decode()), float(score))
        for member, score in zip(flat[::2], flat[1::2], strict=True)
        if member != SENTINEL
    ]
