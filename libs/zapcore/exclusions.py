"""Whom a viewer must not see (blocks both ways, mutes) as a Redis read model: graph writes,
readers such as feed read it in one round trip instead of calling graph on every read.

graph owns every entry. It fills a user's entry from its database when asked
(GetExclusions) and drops the entries of both users of a block, unblock, mute or unmute right
after the change commits and before it answers — so the change holds on the very next read
of either of them. A fill is written only if no change touched the user since the fill began
reading (a per-user generation, compared in Redis), so an older fill can never bring a block
back or hide an unblock. Entries expire on their own; a miss is answered by graph.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from redis.asyncio import Redis

from zap.graph.v1 import graph_pb2

# The entry and its generation share a hash tag, so the fill's compare-and-set is one slot.
_ENTRY_KEY = "zap:exclusions:{{{}}}"
_GENERATION_KEY = "zap:exclusions:{{{}}}:generation"
ENTRY_TTL_SECONDS = 24 * 3600
# Longer than any fill takes (a database read), so a change is never forgotten mid-fill.
_GENERATION_TTL_SECONDS = 3600

_FILL = """
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class ExclusionsCache:
    def __init__(self, redis: Redis, ttl_seconds: int = ENTRY_TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._fill = redis.register_script(_FILL)

    async def get(self, user_id: uuid.UUID) -> graph_pb2.GetExclusionsResponse | None:
        """The user's exclusions, or None when graph has to be asked."""
        raw = await self._redis.get(_ENTRY_KEY.format(user_id))
        if raw is None:
            return None
        return graph_pb2.GetExclusionsResponse.FromString(raw)

    async def generation(self, user_id: uuid.UUID) -> bytes:
        """Taken before a fill reads the database; the fill is kept only if it still holds."""
        return await self._redis.get(_GENERATION_KEY.format(user_id)) or b""

    async def fill(
        self,
        user_id: uuid.UUID,
        generation: bytes,
        exclusions: graph_pb2.GetExclusionsResponse,
    ) -> bool:
        keys = [_ENTRY_KEY.format(user_id), _GENERATION_KEY.format(user_id)]
        written = await self._fill(
            keys=keys, args=[generation, exclusions.SerializeToString(), self._ttl]
        )
        return bool(written)

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Forget these users' entries and fence off fills that began before now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in dict.fromkeys(user_ids):
                generation = _GENERATION_KEY.format(user_id)
                pipe.incr(generation)
                pipe.expire(generation, _GENERATION_TTL_SECONDS)
                pipe.delete(_ENTRY_KEY.format(user_id))
            await pipe.execute()

    async def forget(self, user_id: uuid.UUID) -> None:
        """A deleted account's own entry goes altogether (no key may name them)."""
        await self._redis.delete(_ENTRY_KEY.format(user_id), _GENERATION_KEY.format(user_id))
