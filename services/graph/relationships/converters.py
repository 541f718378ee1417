"""Relationships -> protobuf messages (pure)."""

from __future__ import annotations

from services.graph.relationships.rules import Relationship
from zap.graph.v1 import graph_pb2


def relationship_to_proto(relationship: Relationship) -> graph_pb2.Relationship:
    return graph_pb2.Relationship(
        user_id=str(relationship.user_id),
        following=relationship.following,
        followed_by=relationship.followed_by,
        blocking=relationship.blocking,
        blocked_by=relationship.blocked_by,
        muting=relationship.muting,
    )
