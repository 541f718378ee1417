"""Public shapes of accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from gateway.schemas.common import StrictBody, when
from zap.auth.v1 import auth_pb2

RoleName = Literal["user", "moderator", "admin"]
ROLE_NAMES: dict[int, RoleName] = {
    auth_pb2.ROLE_USER: "user",
    auth_pb2.ROLE_MODERATOR: "moderator",
    auth_pb2.ROLE_ADMIN: "admin",
}

Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RegisterIn(StrictBody):
    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password
    password_confirm: Password
    display_name: Annotated[str, StringConstraints(max_length=200)] = ""


class LoginIn(StrictBody):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Password


class RefreshIn(StrictBody):
    refresh: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class LogoutIn(StrictBody):
    refresh: Annotated[str, StringConstraints(max_length=4096)] = ""


class ProfilePatch(StrictBody):
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    bio: Annotated[str, StringConstraints(max_length=2000)] | None = None
    avatar_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class DeleteAccountIn(StrictBody):
    password: Password


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    bio: str
    avatar_url: str
    created_at: datetime

    @classmethod
    def from_proto(cls, user: auth_pb2.User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            created_at=when(user.created_at),
        )


class AccountOut(UserOut):
    email: str
    role: RoleName

    @classmethod
    def from_account(cls, account: auth_pb2.Account) -> AccountOut:
        return cls(
            **UserOut.from_proto(account.user).model_dump(),
            email=account.email,
            role=ROLE_NAMES.get(account.role, "user"),
        )


class TokensOut(BaseModel):
    access: str
    refresh: str
    token_type: Literal["Bearer"] = "Bearer"
    access_expires_at: datetime
    refresh_expires_at: datetime

    @classmethod
    def from_proto(cls, tokens: auth_pb2.TokenPair) -> TokensOut:
        return cls(
            access=tokens.access,
            refresh=tokens.refresh,
            access_expires_at=when(tokens.access_expires_at),
            refresh_expires_at=when(tokens.refresh_expires_at),
        )


class LoginOut(TokensOut):
    user: AccountOut


class DeletionOut(BaseModel):
    deleted_at: datetime
    hard_delete_after: datetime


class SessionOut(BaseModel):
    family_id: str
    created_at: datetime
    last_used_at: datetime


class ExportOut(BaseModel):
    account: AccountOut
    sessions: list[SessionOut]
    graph: dict[str, Any] = Field(description="Follows, followers, blocks and mutes.")
    feed: dict[str, Any] = Field(description="Posts, comments, likes and shares.")
    media: dict[str, Any] = Field(description="Uploads and their variants.")
    moderation: dict[str, Any] = Field(description="Reports made, decisions about you.")
    notification: dict[str, Any] = Field(description="Notifications received.")


class JwksOut(BaseModel):
    keys: list[dict[str, str]]
