"""Whose actions must not reach a recipient: those they block, who block them, those they mute.

Read from graph's read model in Redis (zapcore.exclusions) for a whole batch of recipients in
one round trip; graph's GetExclusions is called only for recipients without an entry there
(it fills theirs), or for all of them when Redis cannot answer. graph drops both users'
entries after a block or mute commits and before it answers, so a delivery that starts after
the change sees it, exactly as when graph was asked on every delivery.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from zap.graph.v1 import graph_pb2
from zapcore.exclusions import ExclusionsCache

if TYPE_CHECKING:
    from zap.graph.v1.graph_pb2_grpc import GraphServiceAsyncStub as GraphClient


class Exclusions:
    def __init__(self, cache: ExclusionsCache, graph: GraphClient) -> None:
        self._cache = cache
        self._graph = graph

    async def excluded(
        self, pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """The (recipient, actor) pairs whose actor must not reach the recipient."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return set()
        recipients = list(dict.fromkeys(recipient for recipient, _ in wanted))
        hidden = await self._hidden_from(recipients)
        return {(r, a) for r, a in wanted if a in hidden[r]}

    async def _hidden_from(self, recipients: list[uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
        try:
            known = await self._cache.get_many(recipients)
        except RedisError:
            known = [None] * len(recipients)
        missing = [r for r, entry in zip(recipients, known, strict=True) if entry is None]
        asked = await asyncio.gather(
            *(
                self._graph.GetExclusions(graph_pb2.GetExclusionsRequest(viewer_id=str(r)))
                for r in missing
            )
        )
        answers = dict(zip(missing, asked, strict=True))
        return {
            r: _ids(entry if entry is not None else answers[r])
            for r, entry in zip(recipients, known, strict=True)
        }


def _ids(answer: graph_pb2.GetExclusionsResponse) -> set[uuid.UUID]:
    return {uuid.UUID(u) for u in (*answer.blocking_ids, *answer.blocked_by_ids, *answer.muted_ids)}
