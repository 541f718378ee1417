"""Entries one service owns in Redis so that others can read them without calling it.

The owner fills an entry from its database when asked about something it has no entry for,
and drops the entries a change touches right after the change commits and before it
answers, so every reader sees the change on its very next read. A fill is written only if
no change touched that entry since the fill began reading (a per-entry generation compared
in Redis), so an older fill can never bring back what a change removed. Entries expire on
their own; readers treat a missing entry as "ask the owner".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from zapcore.redis import Batch

# Longer than any fill takes (a database read), so a change is never forgotten mid-fill.
_GENERATION_TTL_SECONDS = 3600

_FILL = """
local current = redis.call('GET', KEYS[2]) or ''
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Fill:
    entry_id: str
    generation: bytes  # as read before the database was
    value: bytes
    ttl_seconds: int


class FencedEntries:
    """One kind of entry (`zap:<kind>:{<id>}`), each with its generation in the same slot."""

    def __init__(self, redis: Redis, kind: str) -> None:
        self._redis = redis
        self._kind = kind
        self._fill = redis.register_script(_FILL)

    def key(self, entry_id: str) -> str:
        return f"zap:{self._kind}:{{{entry_id}}}"

    def _generation_key(self, entry_id: str) -> str:
        return f"zap:{self._kind}:{{{entry_id}}}:generation"

    def queue_get(self, batch: Batch, entry_ids: Sequence[str]) -> slice:
        """Add the reads of these entries to a batch (one GET each: they live in many slots);
        where their replies are, in the order asked."""
        start = len(batch)
        for entry_id in entry_ids:
            batch.add("GET", self.key(entry_id))
        return slice(start, len(batch))

    async def get_many(self, entry_ids: Sequence[str]) -> list[bytes | None]:
        """In the order asked; one round trip."""
        if not entry_ids:
            return []
        batch = Batch()
        found = self.queue_get(batch, entry_ids)
        replies: list[bytes | None] = (await batch.run(self._redis))[found]
        return replies

    async def generations(self, entry_ids: Sequence[str]) -> list[bytes]:
        """Read before the database is; pass each one to its fill."""
        if not entry_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.get(self._generation_key(entry_id))
            found = await pipe.execute()
        return [value or b"" for value in found]

    async def fill(self, fills: Sequence[Fill]) -> int:
        """Write each entry whose generation still holds; how many were written."""
        if not fills:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for f in fills:
                await self._fill(
                    keys=[self.key(f.entry_id), self._generation_key(f.entry_id)],
                    args=[f.generation, f.value, f.ttl_seconds],
                    client=pipe,
                )
            written = await pipe.execute()
        return sum(int(w) for w in written)

    async def invalidate(self, entry_ids: Iterable[str]) -> None:
        """Drop these entries and fence off the fills that began before now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in dict.fromkeys(entry_ids):
                generation = self._generation_key(entry_id)
                pipe.incr(generation)
                pipe.expire(generation, _GENERATION_TTL_SECONDS)
                pipe.delete(self.key(entry_id))
            await pipe.execute()

    async def forget(self, entry_ids: Iterable[str]) -> None:
        """Drop the entries and their generations: no key names them any more."""
        keys = [k for i in entry_ids for k in (self.key(i), self._generation_key(i))]
        if keys:
            await self._redis.delete(*keys)
