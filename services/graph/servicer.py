"""GraphService over gRPC: decode the request, run one unit of work, encode the answer.

Writes act as the caller (the verified user in the identity); reads name the users they
are about, so workers acting for no user (fanout, delivery) can use them too.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError

from services.graph.follows.converters import counts_to_proto, edge_to_proto
from services.graph.follows.service import FollowService, stream_batch_size
from services.graph.relationships.converters import relationship_to_proto
from services.graph.relationships.service import RelationshipService
from services.graph.resources import GraphResources
from zap.common.v1 import common_pb2
from zap.graph.v1 import graph_pb2, graph_pb2_grpc
from zapcore.identity import require_user_id
from zapcore.ids import parse_id, parse_ids

Context = Any  # grpc.aio.ServicerContext; the interceptor has already bound identity and trace


class GraphServicer(graph_pb2_grpc.GraphServiceServicer):
    def __init__(self, resources: GraphResources) -> None:
        self._r = resources

    def _relationships(self, session: Any) -> RelationshipService:
        return RelationshipService(session, self._r.outbox, self._r.exclusions)

    def _follows(self, session: Any) -> FollowService:
        return FollowService(session, fanout_threshold=self._r.settings.fanout_threshold)

    # --- writes, as the caller -----------------------------------------------------------

    async def Follow(
        self, request: graph_pb2.FollowRequest, context: Context
    ) -> graph_pb2.FollowResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).follow(viewer, target)
        return graph_pb2.FollowResponse(relationship=relationship_to_proto(relationship))

    async def Unfollow(
        self, request: graph_pb2.UnfollowRequest, context: Context
    ) -> graph_pb2.UnfollowResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).unfollow(viewer, target)
        return graph_pb2.UnfollowResponse(relationship=relationship_to_proto(relationship))

    async def Block(
        self, request: graph_pb2.BlockRequest, context: Context
    ) -> graph_pb2.BlockResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).block(viewer, target)
        return graph_pb2.BlockResponse(relationship=relationship_to_proto(relationship))

    async def Unblock(
        self, request: graph_pb2.UnblockRequest, context: Context
    ) -> graph_pb2.UnblockResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).unblock(viewer, target)
        return graph_pb2.UnblockResponse(relationship=relationship_to_proto(relationship))

    async def Mute(
        self, request: graph_pb2.MuteRequest, context: Context
    ) -> graph_pb2.MuteResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).mute(viewer, target)
        return graph_pb2.MuteResponse(relationship=relationship_to_proto(relationship))

    async def Unmute(
        self, request: graph_pb2.UnmuteRequest, context: Context
    ) -> graph_pb2.UnmuteResponse:
        viewer, target = require_user_id(), parse_id(request.user_id, "user_id")
        async with self._r.db.unit_of_work() as session:
            relationship = await self._relationships(session).unmute(viewer, target)
        return graph_pb2.UnmuteResponse(relationship=relationship_to_proto(relationship))

    # --- reads, about the users they name ------------------------------------------------

    async def GetRelationships(
        self, request: graph_pb2.GetRelationshipsRequest, context: Context
    ) -> graph_pb2.GetRelationshipsResponse:
        viewer = parse_id(request.viewer_id, "viewer_id")
        user_ids = parse_ids(list(request.user_ids), "user_ids")
        async with self._r.db.read_only() as session:
            relationships = await self._relationships(session).relationships(viewer, user_ids)
        return graph_pb2.GetRelationshipsResponse(
            relationships=[relationship_to_proto(r) for r in relationships]
        )

    async def GetExclusions(
        self, request: graph_pb2.GetExclusionsRequest, context: Context
    ) -> graph_pb2.GetExclusionsResponse:
        viewer = parse_id(request.viewer_id, "viewer_id")
        generation = await self._exclusions_generation(viewer)
        async with self._r.db.read_only() as session:
            excluded = await self._relationships(session).exclusions(viewer)
        answer = graph_pb2.GetExclusionsResponse(
            blocking_ids=[str(i) for i in excluded.blocking],
            blocked_by_ids=[str(i) for i in excluded.blocked_by],
            muted_ids=[str(i) for i in excluded.muted],
        )
        if generation is not None:
            # Readers find it in Redis next time; a fill raced by a change is not kept.
            with contextlib.suppress(RedisError):
                await self._r.exclusions.fill(viewer, generation, answer)
        return answer

    async def _exclusions_generation(self, viewer: uuid.UUID) -> bytes | None:
        try:
            return await self._r.exclusions.generation(viewer)
        except RedisError:
            return None  # answered from the database alone, not remembered

    async def ListFollowers(
        self, request: graph_pb2.ListFollowersRequest, context: Context
    ) -> graph_pb2.ListFollowersResponse:
        user_id = parse_id(request.user_id, "user_id")
        async with self._r.db.read_only() as session:
            page = await self._follows(session).followers(
                user_id, request.page.cursor, request.page.limit, self._r.followers_cursors
            )
        return graph_pb2.ListFollowersResponse(
            edges=[edge_to_proto(edge) for edge in page.edges],
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def ListFollowing(
        self, request: graph_pb2.ListFollowingRequest, context: Context
    ) -> graph_pb2.ListFollowingResponse:
        user_id = parse_id(request.user_id, "user_id")
        async with self._r.db.read_only() as session:
            page = await self._follows(session).following(
                user_id, request.page.cursor, request.page.limit, self._r.following_cursors
            )
        return graph_pb2.ListFollowingResponse(
            edges=[edge_to_proto(edge) for edge in page.edges],
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def GetCounts(
        self, request: graph_pb2.GetCountsRequest, context: Context
    ) -> graph_pb2.GetCountsResponse:
        user_ids = parse_ids(list(request.user_ids), "user_ids")
        async with self._r.db.read_only() as session:
            counts = await self._follows(session).counts(user_ids)
        return graph_pb2.GetCountsResponse(counts=[counts_to_proto(c) for c in counts])

    async def ListPulledFollowees(
        self, request: graph_pb2.ListPulledFolloweesRequest, context: Context
    ) -> graph_pb2.ListPulledFolloweesResponse:
        user_id = parse_id(request.user_id, "user_id")
        async with self._r.db.read_only() as session:
            followees = await self._follows(session).pulled_followees(user_id)
        return graph_pb2.ListPulledFolloweesResponse(user_ids=[str(i) for i in followees])

    async def StreamFollowers(
        self, request: graph_pb2.StreamFollowersRequest, context: Context
    ) -> AsyncIterator[graph_pb2.StreamFollowersResponse]:
        user_id = parse_id(request.user_id, "user_id")
        after = parse_id(request.after_user_id, "after_user_id") if request.after_user_id else None
        size = stream_batch_size(request.batch_size)
        while True:
            # A short session per batch: no connection is held while the consumer is slow.
            async with self._r.db.read_only() as session:
                batch = await self._follows(session).follower_batch(user_id, after, size)
            if batch:
                yield graph_pb2.StreamFollowersResponse(follower_ids=[str(i) for i in batch])
            if len(batch) < size:
                return
            after = batch[-1]

    async def ExportUserData(
        self, request: graph_pb2.ExportUserDataRequest, context: Context
    ) -> graph_pb2.ExportUserDataResponse:
        user_id = require_user_id()
        async with self._r.db.read_only() as session:
            follows = self._follows(session)
            following = await follows.all_following(user_id)
            followers = await follows.all_followers(user_id)
            excluded = await self._relationships(session).exclusions(user_id)
        return graph_pb2.ExportUserDataResponse(
            following=[edge_to_proto(edge) for edge in following],
            followers=[edge_to_proto(edge) for edge in followers],
            blocking_ids=[str(i) for i in excluded.blocking],
            muted_ids=[str(i) for i in excluded.muted],
        )
