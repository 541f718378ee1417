"""Follow lists and counts -> protobuf messages (pure)."""

from __future__ import annotations

from services.graph.follows.repository import Edge
from services.graph.follows.service import Counts
from zap.graph.v1 import graph_pb2
from zapcore.timestamps import to_timestamp


def edge_to_proto(edge: Edge) -> graph_pb2.FollowEdge:
    return graph_pb2.FollowEdge(
        user_id=str(edge.user_id), followed_at=to_timestamp(edge.followed_at)
    )


def counts_to_proto(counts: Counts) -> graph_pb2.Counts:
    return graph_pb2.Counts(
        user_id=str(counts.user_id),
        followers=counts.followers,
        following=counts.following,
        pulled=counts.pulled,
    )
