"""/api/v1/auth/: accounts and tokens."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import render
from gateway.deps import AuthStub, CurrentUser, Edge, client_ip
from gateway.schemas.auth import (
    AccountOut,
    DeleteAccountIn,
    DeletionOut,
    ExportOut,
    LoginIn,
    LoginOut,
    LogoutIn,
    ProfilePatch,
    RefreshIn,
    RegisterIn,
    SessionOut,
    TokensOut,
)
from gateway.schemas.common import when
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.graph.v1 import graph_pb2
from zap.media.v1 import media_pb2
from zap.moderation.v1 import moderation_pb2
from zap.notification.v1 import notification_pb2

# Tokens and account data must never sit in a shared or browser cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


router = APIRouter(prefix="/api/v1/auth", tags=["auth"], dependencies=[Depends(_no_store)])


async def _register_limit(request: Request, edge: Edge) -> None:
    await edge.limiter.hit(edge.rate_rules.register, "register", client_ip(request))


async def _login_limit(request: Request, edge: Edge) -> None:
    await edge.limiter.hit(edge.rate_rules.login, "login", client_ip(request))


@router.post(
    "/register/",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(_register_limit)],
    summary="Create an account",
)
async def register(body: RegisterIn, auth: AuthStub) -> AccountOut:
    answer = await auth.Register(auth_pb2.RegisterRequest(**body.model_dump()))
    return AccountOut.from_account(answer.account)


@router.post("/login/", dependencies=[Depends(_login_limit)], summary="Sign in for tokens")
async def login(body: LoginIn, auth: AuthStub) -> LoginOut:
    answer = await auth.Login(auth_pb2.LoginRequest(email=body.email, password=body.password))
    return LoginOut(
        **TokensOut.from_proto(answer.tokens).model_dump(),
        user=AccountOut.from_account(answer.account),
    )


@router.post("/refresh/", dependencies=[Depends(_login_limit)], summary="Rotate a refresh token")
async def refresh(body: RefreshIn, auth: AuthStub) -> TokensOut:
    answer = await auth.Refresh(auth_pb2.RefreshRequest(refresh=body.refresh))
    return TokensOut.from_proto(answer.tokens)


@router.post("/logout/", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(body: LogoutIn, user: CurrentUser, auth: AuthStub) -> Response:
    await auth.Logout(
        auth_pb2.LogoutRequest(
            refresh=body.refresh,
            access_jti=user.token_id,
            access_expires_at=Timestamp(seconds=user.expires_at),
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/", summary="Your account", response_model=AccountOut)
async def me(user: CurrentUser, auth: AuthStub) -> Response:
    answer = await auth.GetAccount(auth_pb2.GetAccountRequest())
    # Rendered straight from the answer (gateway.render), in AccountOut's shape; a returned
    # response does not get the headers `_no_store` set, so it carries them itself.
    return render.json_response(render.account(answer.account), NO_STORE)


@router.patch("/me/", summary="Change your profile")
async def update_me(body: ProfilePatch, user: CurrentUser, auth: AuthStub) -> AccountOut:
    changes = body.model_dump(exclude_none=True)
    answer = await auth.UpdateProfile(auth_pb2.UpdateProfileRequest(**changes))
    return AccountOut.from_account(answer.account)


@router.delete("/me/", status_code=status.HTTP_202_ACCEPTED, summary="Delete your account")
async def delete_me(body: DeleteAccountIn, user: CurrentUser, auth: AuthStub) -> DeletionOut:
    answer = await auth.RequestDeletion(auth_pb2.RequestDeletionRequest(password=body.password))
    return DeletionOut(
        deleted_at=when(answer.deleted_at), hard_delete_after=when(answer.hard_delete_after)
    )


@router.get("/me/export/", summary="Everything ZAP holds about you")
async def export_me(user: CurrentUser, edge: Edge) -> ExportOut:
    """Gathered from every service at once, each answering for what it owns."""
    up = edge.upstreams
    account, graph, feed, media, moderation, notification = await asyncio.gather(
        up.auth.ExportUserData(auth_pb2.ExportUserDataRequest()),
        up.graph.ExportUserData(graph_pb2.ExportUserDataRequest()),
        up.feed.ExportUserData(feed_pb2.ExportUserDataRequest()),
        up.media.ExportUserData(media_pb2.ExportUserDataRequest()),
        up.moderation.ExportUserData(moderation_pb2.ExportUserDataRequest()),
        up.notification.ExportUserData(notification_pb2.ExportUserDataRequest()),
    )

    def section(message: Message) -> dict[str, Any]:
        return MessageToDict(message, preserving_proto_field_name=True)

    return ExportOut(
        account=AccountOut.from_account(account.account),
        sessions=[
            SessionOut(
                family_id=s.family_id,
                created_at=when(s.created_at),
                last_used_at=when(s.last_used_at),
            )
            for s in account.sessions
        ],
        graph=section(graph),
        feed=section(feed),
        media=section(media),
        moderation=section(moderation),
        notification=section(notification),
    )
