"""Who may see whose content: the viewer's blocks (either way) and mutes.

Read from graph's read model in Redis (zapcore.exclusions) in one round trip; graph is
called only when the viewer has no entry there (and fills it), or when Redis cannot answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from zap.graph.v1 import graph_pb2
from zapcore.exclusions import ExclusionsCache
from zapcore.redis import Batch

if TYPE_CHECKING:
    from zap.graph.v1.graph_pb2_grpc import GraphServiceAsyncStub as GraphClient


@dataclass(frozen=True)
class Exclusions:
    blocked: frozenset[uuid.UUID] = frozenset()
    muted: frozenset[uuid.UUID] = frozenset()

    def blocks(self, author_id: uuid.UUID) -> bool:
        """A block either way hides everything, even a post opened by its link."""
        return author_id in self.blocked

    def hides(self, author_id: uuid.UUID) -> bool:
        """Lists and feeds also leave out muted authors."""
        return author_id in self.blocked or author_id in self.muted


NOBODY = Exclusions()


class Audience:
    def __init__(self, cache: ExclusionsCache, graph: GraphClient) -> None:
        self._cache = cache
        self._graph = graph

    async def exclusions(self, viewer_id: uuid.UUID | None) -> Exclusions:
        if viewer_id is None:
            return NOBODY
        try:
            known = await self._cache.get(viewer_id)
        except RedisError:
            known = None
        return await self._settled(viewer_id, known)

    def queue(self, batch: Batch, viewer_id: uuid.UUID) -> int:
        """Add the read of the viewer's entry to a batch another read sends (`settle` its
        reply)."""
        return self._cache.queue_get(batch, viewer_id)

    async def settle(self, viewer_id: uuid.UUID, raw: bytes | None) -> Exclusions:
        return await self._settled(viewer_id, ExclusionsCache.parse(raw))

    async def _settled(
        self, viewer_id: uuid.UUID, known: graph_pb2.GetExclusionsResponse | None
    ) -> Exclusions:
        if known is None:
            known = await self._graph.GetExclusions(
                graph_pb2.GetExclusionsRequest(viewer_id=str(viewer_id))
            )
        return _from_proto(known)


def _from_proto(answer: graph_pb2.GetExclusionsResponse) -> Exclusions:
    if not (answer.blocking_ids or answer.blocked_by_ids or answer.muted_ids):
        return NOBODY
    return Exclusions(
        blocked=frozenset(uuid.UUID(u) for u in (*answer.blocking_ids, *answer.blocked_by_ids)),
        muted=frozenset(uuid.UUID(u) for u in answer.muted_ids),
    )
