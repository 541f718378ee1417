"""Public shapes of the follow graph: relationships, counts, profiles and follower lists."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gateway.schemas.auth import UserOut
from gateway.schemas.common import when
from zap.auth.v1 import auth_pb2
from zap.graph.v1 import graph_pb2


class RelationshipOut(BaseModel):
    """How `user_id` relates to you."""

    user_id: str
    following: bool = Field(description="You follow them.")
    followed_by: bool = Field(description="They follow you.")
    blocking: bool = Field(description="You block them.")
    blocked_by: bool = Field(description="They block you.")
    muting: bool = Field(description="You mute them: their content is hidden from you.")

    @classmethod
    def from_proto(cls, relationship: graph_pb2.Relationship) -> RelationshipOut:
        return cls(
            user_id=relationship.user_id,
            following=relationship.following,
            followed_by=relationship.followed_by,
            blocking=relationship.blocking,
            blocked_by=relationship.blocked_by,
            muting=relationship.muting,
        )


class CountsOut(BaseModel):
    followers: int
    following: int

    @classmethod
    def from_proto(cls, counts: graph_pb2.Counts) -> CountsOut:
        return cls(followers=counts.followers, following=counts.following)


class ProfileOut(UserOut):
    counts: CountsOut
    relationship: RelationshipOut | None = Field(
        default=None, description="How this user relates to you; null when not signed in."
    )


class FollowEdgeOut(UserOut):
    """A user in a followers or following list."""

    followed_at: datetime

    @classmethod
    def from_edge(cls, user: auth_pb2.User, edge: graph_pb2.FollowEdge) -> FollowEdgeOut:
        return cls(**UserOut.from_proto(user).model_dump(), followed_at=when(edge.followed_at))
