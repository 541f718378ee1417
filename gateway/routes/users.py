"""/api/v1/users/: public profiles (graph counts and relationships join with the graph service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.deps import AuthStub, OptionalUser
from gateway.schemas.auth import UserOut
from zap.auth.v1 import auth_pb2

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=64)]
Username = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/by-username/{username}/", summary="A profile by username")
async def by_username(username: Username, viewer: OptionalUser, auth: AuthStub) -> UserOut:
    answer = await auth.GetUserByUsername(auth_pb2.GetUserByUsernameRequest(username=username))
    return UserOut.from_proto(answer.user)


@router.get("/{user_id}/", summary="A profile")
async def profile(user_id: UserId, viewer: OptionalUser, auth: AuthStub) -> UserOut:
    answer = await auth.GetUser(auth_pb2.GetUserRequest(user_id=user_id))
    return UserOut.from_proto(answer.user)
