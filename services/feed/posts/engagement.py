"""What a viewer liked and shared, in Redis: the viewer's own state on a page of posts, read
in the page's one round trip instead of the database.

  zap:feed:engagement:{<user>}              hash  s          covers posts created since (unix s)
                                                  l:<post>   liked
                                                  h:<post>   shared
                                                  a:<author> the ranking's affinity to an author
                                                             the user engaged with
  zap:feed:engagement:{<user>}:generation   bumped by every like, unlike and share

An entry is filled from the database when a read finds none, and holds the user's likes and
shares of the posts created in the last `window_days` (at most `max_entries` of each, newest
posts first; when a user has more, `s` moves up to the oldest post kept). A post created
before `s` is looked up in the database with the rest of the page's misses. Home feeds and
timelines show recent posts, so that is rare.

Affinities are those of the `max_entries` authors the user engaged with most lately; any
other author is a stranger (affinity 1). They serve the home feed's read-time re-rank.

Every change bumps the generation after it commits, before it answers, which fences off a
fill that read the database before the change (zapcore.read_models explains the pattern).
A comment then drops the user's entry, so the next read fills it again. A like, unlike or
share writes itself into the entry instead — its post's flag, and the affinity to the
author the statement returned — but only if the generation is still the one read before its
transaction opened: then no other change came between, and no fill written since can hold
anything newer than this change (a fill reads the generation before the database). When
another change did come between, their writes might land in either order, so the entry is
dropped as a comment drops it. Flags so written are not held to the window or the cap:
they are true, and a fill replaces them. Entries expire after `ttl_seconds`, which bounds
how long a write lost to a Redis error leaves the state wrong.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.feed.timeline import ranking
from zapcore.logging import get_logger
from zapcore.redis import Batch

log = get_logger(__name__)

_GENERATION_TTL_SECONDS = 3600
# HSET arguments per call inside the fill script (Lua's unpack has a stack limit).
_FILL_CHUNK = 500

_FILL = f"""
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', ARGV[2])
for i = 4, #ARGV, {_FILL_CHUNK} do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + {_FILL_CHUNK} - 1, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# A like, unlike or share committed (engagement.py's docstring): ARGV[1] the generation read
# before its transaction, ARGV[3..] field, value pairs (an empty value deletes the field).
_WRITE = """
local seen = redis.call('GET', KEYS[2]) or ''
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if seen ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 0
end
if redis.call('HEXISTS', KEYS[1], 's') == 0 then return 0 end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""

# The newest posts (by their creation) a user liked, then shared; the cap applies to each.
_ENGAGED = """
(SELECT 'l' AS kind, l.post_id, p.created_at
   FROM likes l JOIN posts p ON p.id = l.post_id
  WHERE l.user_id = $1 AND p.created_at >= $2
  ORDER BY p.created_at DESC LIMIT $3)
UNION ALL
(SELECT 'h' AS kind, s.post_id, p.created_at
   FROM shares s JOIN posts p ON p.id = s.post_id
  WHERE s.user_id = $1 AND p.created_at >= $2
  ORDER BY p.created_at DESC LIMIT $3)
"""

# The ranking's inputs for the authors the user engaged with, most recent first.
_INTERACTIONS = """
SELECT author_id, likes, comments FROM interactions
WHERE user_id = $1 ORDER BY updated_at DESC LIMIT $2
"""


def engagement_key(user_id: uuid.UUID | str) -> str:
    return f"zap:feed:engagement:{{{user_id}}}"


def _generation_key(user_id: uuid.UUID | str) -> str:
    return f"{engagement_key(user_id)}:generation"


@dataclass(frozen=True)
class Known:
    """A viewer's entry as read with a page: `since` None when there was none."""

    since: float | None
    liked: frozenset[uuid.UUID]
    shared: frozenset[uuid.UUID]
    generation: bytes

    def covers(self, created_at: float) -> bool:
        return self.since is not None and created_at >= self.since


class Engagement:
    def __init__(
        self, redis: Redis, *, window_days: int, max_entries: int, ttl_seconds: int
    ) -> None:
        self._redis = redis
        self._window = timedelta(days=window_days)
        self._max = max_entries
        self._ttl = ttl_seconds
        self._fill = redis.register_script(_FILL)
        self._write = redis.register_script(_WRITE)

    def queue_read(self, batch: Batch, user_id: uuid.UUID, post_ids: Sequence[uuid.UUID]) -> slice:
        """Add the read of this user's state on these posts to a batch (two commands)."""
        start = len(batch)
        fields = ["s", *(f"l:{p}" for p in post_ids), *(f"h:{p}" for p in post_ids)]
        batch.add("HMGET", engagement_key(user_id), *fields)
        batch.add("GET", _generation_key(user_id))
        return slice(start, len(batch))

    @staticmethod
    def known(post_ids: Sequence[uuid.UUID], answers: Sequence[object]) -> Known:
        """The batch's two replies to `queue_read`."""
        values: list[bytes | None] = answers[0]  # type: ignore[assignment]
        generation: bytes | None = answers[1]  # type: ignore[assignment]
        since, flags = values[0], values[1:]
        n = len(post_ids)
        return Known(
            since=None if since is None else float(since),
            liked=frozenset(p for p, f in zip(post_ids, flags[:n], strict=True) if f),
            shared=frozenset(p for p, f in zip(post_ids, flags[n:], strict=True) if f),
            generation=generation or b"",
        )

    async def fill(self, connection: asyncpg.Connection, user_id: uuid.UUID, known: Known) -> Known:
        """Read the user's state from the database and write it unless a change came first;
        the state read either way."""
        window_start = datetime.now(UTC) - self._window
        rows = await connection.fetch(_ENGAGED, user_id, window_start, self._max)
        since = window_start.timestamp()
        for kind in ("l", "h"):
            of_kind = [r["created_at"] for r in rows if r["kind"] == kind]
            if len(of_kind) == self._max:
                # More than the cap: cover only the posts at least as new as the oldest
                # kept, and not the ties at that instant (some of them may be missing).
                since = max(since, min(of_kind).timestamp() + 1e-6)
        kept = [r for r in rows if r["created_at"].timestamp() >= since]
        fields: list[str] = []
        for r in kept:
            fields += [f"{r['kind']}:{r['post_id']}", "1"]
        for r in await connection.fetch(_INTERACTIONS, user_id, self._max):
            fields += [f"a:{r['author_id']}", repr(ranking.affinity(r["likes"], r["comments"]))]
        try:
            await self._fill(
                keys=[engagement_key(user_id), _generation_key(user_id)],
                args=[known.generation, repr(since), self._ttl, *fields],
            )
        except RedisError as error:
            log.warning("feed.engagement_not_written", error=str(error))
        return Known(
            since=since,
            liked=frozenset(r["post_id"] for r in kept if r["kind"] == "l"),
            shared=frozenset(r["post_id"] for r in kept if r["kind"] == "h"),
            generation=known.generation,
        )

    async def affinities(
        self, user_id: uuid.UUID, author_ids: Sequence[str]
    ) -> dict[str, float] | None:
        """The user's affinity to each of these authors; None when the user has no entry
        (or Redis cannot answer): the caller does without."""
        if not author_ids:
            return {}
        batch = Batch()
        at = self.queue_affinities(batch, user_id, author_ids)
        try:
            replies = await batch.run(self._redis)
        except RedisError:
            return None
        return self.affinities_read(author_ids, replies[at])

    @staticmethod
    def queue_affinities(batch: Batch, user_id: uuid.UUID, author_ids: Sequence[str]) -> int:
        """Add the read of `affinities` to a batch another read sends; where its reply is."""
        return batch.add("HMGET", engagement_key(user_id), "s", *(f"a:{a}" for a in author_ids))

    @staticmethod
    def affinities_read(
        author_ids: Sequence[str], reply: Sequence[bytes | None]
    ) -> dict[str, float] | None:
        """`affinities` from the batch's reply to `queue_affinities`."""
        since, *values = reply
        if since is None:
            return None
        return {
            author: float(value) if value is not None else ranking.affinity(0, 0)
            for author, value in zip(author_ids, values, strict=True)
        }

    async def generation(self, user_id: uuid.UUID) -> bytes | None:
        """Read before a like's, unlike's or share's transaction opens, for `liked` or
        `shared` after it commits; None when Redis cannot answer (the entry is dropped)."""
        try:
            seen: bytes | None = await self._redis.get(_generation_key(user_id))
        except RedisError as error:
            log.warning("feed.engagement_generation_unread", error=str(error))
            return None
        return seen or b""

    async def liked(
        self,
        user_id: uuid.UUID,
        seen: bytes | None,
        post_id: uuid.UUID,
        *,
        liked: bool,
        affinity: tuple[uuid.UUID, int, int] | None,
    ) -> None:
        """A like or unlike committed; `affinity` (author, likes, comments) the user's
        interactions with the post's author as the change left them, when they moved."""
        fields = {f"l:{post_id}": "1" if liked else ""}
        if affinity is not None:
            author_id, likes, comments = affinity
            fields[f"a:{author_id}"] = repr(ranking.affinity(likes, comments))
        await self._write_in(user_id, seen, fields)

    async def shared(self, user_id: uuid.UUID, seen: bytes | None, post_id: uuid.UUID) -> None:
        """A share committed."""
        await self._write_in(user_id, seen, {f"h:{post_id}": "1"})

    async def _write_in(
        self, user_id: uuid.UUID, seen: bytes | None, fields: dict[str, str]
    ) -> None:
        if seen is None:
            await self.changed(user_id)
            return
        args: list[str | bytes | int] = [seen, _GENERATION_TTL_SECONDS]
        for name, value in fields.items():
            args += [name, value]
        try:
            await self._write(keys=[engagement_key(user_id), _generation_key(user_id)], args=args)
        except RedisError as error:
            log.warning("feed.engagement_not_written", error=str(error))

    async def changed(self, user_id: uuid.UUID) -> None:
        """After a comment commits (or a like, unlike or share that cannot be written in):
        the user's next read asks the database."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(_generation_key(user_id))
                pipe.expire(_generation_key(user_id), _GENERATION_TTL_SECONDS)
                pipe.delete(engagement_key(user_id))
                await pipe.execute()
        except RedisError as error:
            log.warning("feed.engagement_not_dropped", error=str(error))

    async def forget(self, user_id: uuid.UUID) -> None:
        """A deleted account: no key names it any more."""
        await self._redis.delete(engagement_key(user_id), _generation_key(user_id))


def unix(created_at: Timestamp) -> float:
    return created_at.seconds + created_at.nanos / 1e9


# A signed-out viewer, or a read that cannot ask: nothing liked or shared.
NOTHING = Known(since=None, liked=frozenset(), shared=frozenset(), generation=b"")
