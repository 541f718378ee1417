"""/api/v1/users/: public profiles with graph counts, follows, blocks, mutes and their lists.

graph stores bare user ids and does not know which exist (auth owns users), so every route
here asks auth about the user it names: an unknown or deleted user is a 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path

from gateway.deps import AuthStub, CurrentUser, GraphStub, OptionalUser, PeopleDep
from gateway.paging import PageParams, next_cursor
from gateway.people import People
from gateway.schemas.auth import UserOut
from gateway.schemas.common import ObjectIdPath, Page
from gateway.schemas.graph import CountsOut, FollowEdgeOut, ProfileOut, RelationshipOut
from gateway.upstreams import AuthClient, GraphClient
from zap.auth.v1 import auth_pb2
from zap.common.v1 import common_pb2
from zap.graph.v1 import graph_pb2
from zapcore.identity import Identity
from zapcore.ids import parse_id

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[str, ObjectIdPath]
Username = Annotated[str, Path(min_length=1, max_length=64)]


def _checked(user_id: str) -> str:
    """The canonical form of a path's user id; a 422 naming `user_id` when it is not a UUID."""
    return str(parse_id(user_id, "user_id"))


async def _user(auth: AuthClient, user_id: str) -> auth_pb2.User:
    """The active user, or NotFound from auth (rendered as a 404 problem)."""
    return (await auth.GetUser(auth_pb2.GetUserRequest(user_id=user_id))).user


async def _counts(graph: GraphClient, user_id: str) -> CountsOut:
    answer = await graph.GetCounts(graph_pb2.GetCountsRequest(user_ids=[user_id]))
    return CountsOut.from_proto(answer.counts[0])


async def _relationship(
    graph: GraphClient, viewer: Identity | None, user_id: str
) -> RelationshipOut | None:
    if viewer is None:
        return None
    answer = await graph.GetRelationships(
        graph_pb2.GetRelationshipsRequest(viewer_id=str(viewer.user_id), user_ids=[user_id])
    )
    return RelationshipOut.from_proto(answer.relationships[0])


def _profile(
    user: auth_pb2.User, counts: CountsOut, relationship: RelationshipOut | None
) -> ProfileOut:
    return ProfileOut(
        **UserOut.from_proto(user).model_dump(), counts=counts, relationship=relationship
    )


async def _with_profiles(
    people: People, edges: Sequence[graph_pb2.FollowEdge], page: common_pb2.PageInfo
) -> Page[FollowEdgeOut]:
    """A page of edges with public profiles (auth's cards, one round trip); deleted users
    drop out."""
    found = await people.get(edge.user_id for edge in edges)
    return Page[FollowEdgeOut](
        results=[
            FollowEdgeOut.from_edge(found[edge.user_id], edge)
            for edge in edges
            if edge.user_id in found
        ],
        next_cursor=next_cursor(page),
    )


# --- profiles -------------------------------------------------------------------------------


@router.get("/by-username/{username}/", summary="A profile by username")
async def by_username(
    username: Username, viewer: OptionalUser, auth: AuthStub, graph: GraphStub
) -> ProfileOut:
    answer = await auth.GetUserByUsername(auth_pb2.GetUserByUsernameRequest(username=username))
    counts, relationship = await asyncio.gather(
        _counts(graph, answer.user.id), _relationship(graph, viewer, answer.user.id)
    )
    return _profile(answer.user, counts, relationship)


@router.get("/{user_id}/", summary="A profile, its counts and how it relates to you")
async def profile(
    user_id: UserId, viewer: OptionalUser, auth: AuthStub, graph: GraphStub
) -> ProfileOut:
    user_id = _checked(user_id)
    user, counts, relationship = await asyncio.gather(
        _user(auth, user_id), _counts(graph, user_id), _relationship(graph, viewer, user_id)
    )
    return _profile(user, counts, relationship)


# --- follows, blocks and mutes (as the signed-in caller) ----------------------------------


@router.post("/{user_id}/follow/", summary="Follow a user (idempotent)")
async def follow(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Follow(graph_pb2.FollowRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


@router.delete("/{user_id}/follow/", summary="Stop following a user (idempotent)")
async def unfollow(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Unfollow(graph_pb2.UnfollowRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


@router.post("/{user_id}/block/", summary="Block a user: follows both ways end (idempotent)")
async def block(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Block(graph_pb2.BlockRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


@router.delete("/{user_id}/block/", summary="Unblock a user (idempotent)")
async def unblock(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Unblock(graph_pb2.UnblockRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


@router.post("/{user_id}/mute/", summary="Mute a user: hide their content, keep following")
async def mute(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Mute(graph_pb2.MuteRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


@router.delete("/{user_id}/mute/", summary="Unmute a user (idempotent)")
async def unmute(
    user_id: UserId, caller: CurrentUser, auth: AuthStub, graph: GraphStub
) -> RelationshipOut:
    target = (await _user(auth, _checked(user_id))).id
    answer = await graph.Unmute(graph_pb2.UnmuteRequest(user_id=target))
    return RelationshipOut.from_proto(answer.relationship)


# --- lists ----------------------------------------------------------------------------------


@router.get("/{user_id}/followers/", summary="Who follows a user, newest first")
async def followers(
    user_id: UserId, page: PageParams, auth: AuthStub, graph: GraphStub, people: PeopleDep
) -> Page[FollowEdgeOut]:
    user_id = _checked(user_id)
    _, answer = await asyncio.gather(
        _user(auth, user_id),
        graph.ListFollowers(graph_pb2.ListFollowersRequest(user_id=user_id, page=page)),
    )
    return await _with_profiles(people, answer.edges, answer.page)


@router.get("/{user_id}/following/", summary="Whom a user follows, newest first")
async def following(
    user_id: UserId, page: PageParams, auth: AuthStub, graph: GraphStub, people: PeopleDep
) -> Page[FollowEdgeOut]:
    user_id = _checked(user_id)
    _, answer = await asyncio.gather(
        _user(auth, user_id),
        graph.ListFollowing(graph_pb2.ListFollowingRequest(user_id=user_id, page=page)),
    )
    return await _with_profiles(people, answer.edges, answer.page)
