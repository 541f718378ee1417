"""Who may see whose content: the viewer's blocks (either way) and mutes, from graph."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zap.graph.v1 import graph_pb2

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


async def exclusions_for(graph: GraphClient, viewer_id: uuid.UUID | None) -> Exclusions:
    if viewer_id is None:
        return NOBODY
    answer = await graph.GetExclusions(graph_pb2.GetExclusionsRequest(viewer_id=str(viewer_id)))
    return Exclusions(
        blocked=frozenset(uuid.UUID(u) for u in (*answer.blocking_ids, *answer.blocked_by_ids)),
        muted=frozenset(uuid.UUID(u) for u in answer.muted_ids),
    )
