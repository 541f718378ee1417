"""Whom a viewer must not see (blocks both ways, mutes): graph's read model in Redis, read
by feed in one round trip instead of a call to graph on every read.

graph owns every entry (zapcore.read_models): GetExclusions fills a viewer's entry, and a
block, unblock, mute or unmute drops the entries of both users after it commits and before
it answers, so the change holds on the very next read of either of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from zap.graph.v1 import graph_pb2
from zapcore.read_models import FencedEntries, Fill
from zapcore.redis import Batch

ENTRY_TTL_SECONDS = 24 * 3600


class ExclusionsCache:
    def __init__(self, redis: Redis, ttl_seconds: int = ENTRY_TTL_SECONDS) -> None:
        self._entries = FencedEntries(redis, "exclusions")
        self._ttl = ttl_seconds

    async def get(self, user_id: uuid.UUID) -> graph_pb2.GetExclusionsResponse | None:
        """The user's exclusions, or None when graph has to be asked."""
        [raw] = await self._entries.get_many([str(user_id)])
        return self.parse(raw)

    def queue_get(self, batch: Batch, user_id: uuid.UUID) -> int:
        """Add the read of the user's entry to a batch; where its reply is (for `parse`)."""
        at = len(batch)
        self._entries.queue_get(batch, [str(user_id)])
        return at

    @staticmethod
    def parse(raw: bytes | None) -> graph_pb2.GetExclusionsResponse | None:
        return None if raw is None else graph_pb2.GetExclusionsResponse.FromString(raw)

    async def get_many(
        self, user_ids: Sequence[uuid.UUID]
    ) -> list[graph_pb2.GetExclusionsResponse | None]:
        """Several users' exclusions in one round trip, in the order asked; None for each one
        graph has to be asked about."""
        found = await self._entries.get_many([str(u) for u in user_ids])
        return [
            None if raw is None else graph_pb2.GetExclusionsResponse.FromString(raw)
            for raw in found
        ]

    async def generation(self, user_id: uuid.UUID) -> bytes:
        [generation] = await self._entries.generations([str(user_id)])
        return generation

    async def fill(
        self, user_id: uuid.UUID, generation: bytes, exclusions: graph_pb2.GetExclusionsResponse
    ) -> bool:
        fill = Fill(str(user_id), generation, exclusions.SerializeToString(), self._ttl)
        return await self._entries.fill([fill]) == 1

    async def invalidate(self, user_ids: Iterable[uuid.UUID]) -> None:
        await self._entries.invalidate(str(u) for u in user_ids)

    async def forget(self, user_id: uuid.UUID) -> None:
        """A deleted account's own entry goes altogether (no key may name them)."""
        await self._entries.forget([str(user_id)])
