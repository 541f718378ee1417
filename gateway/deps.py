"""Dependencies declared once and reused by every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.problems import Problem
from gateway.state import EdgeState
from gateway.upstreams import (
    AuthClient,
    FeedClient,
    GraphClient,
    MediaClient,
    ModerationClient,
    NotificationClient,
)
from zapcore.access_tokens import AccessClaims
from zapcore.errors import Unauthenticated
from zapcore.identity import Identity, set_current_identity


async def edge_state(request: Request) -> EdgeState:
    state: EdgeState = request.app.state.edge
    return state


Edge = Annotated[EdgeState, Depends(edge_state)]


def client_ip(request: Request) -> str:
    return str(request.scope.get("state", {}).get("client_ip", ""))


async def ip_rate_limit(request: Request, edge: Edge) -> None:
    """Every API request counts against its client address."""
    await edge.limiter.hit(edge.rate_rules.ip, "ip", client_ip(request))


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send an access token as 'Authorization: Bearer <token>'", reason="missing-token"
        )
    return token.strip()


async def verified_claims(token: str, edge: EdgeState) -> AccessClaims:
    """The claims of a valid access token (local signature check + deny-list)."""
    if not edge.keys.verifier.knows(token):
        await edge.keys.refresh()
    claims = edge.keys.verifier.verify(token)
    if await edge.deny_list.is_denied(
        claims.token_id, claims.user_id, claims.issued_at, claims.family_id
    ):
        raise Unauthenticated("this token has been revoked", reason="token-revoked")
    return claims


def identity_of(claims: AccessClaims, ip: str) -> Identity:
    return Identity(
        service="gateway",
        user_id=claims.user_id,
        role=claims.role,
        client_ip=ip,
        token_id=claims.token_id,
        expires_at=claims.expires_at,
    )


async def authenticate(token: str, edge: EdgeState, ip: str) -> Identity:
    """The verified caller of an access token (local signature check + deny-list)."""
    return identity_of(await verified_claims(token, edge), ip)


VERIFIED_STATE_KEY = "verified_token"


def remember_verified(scope_state: dict[str, object], token: str, identity: Identity) -> None:
    """Let the route reuse a verification an outer middleware already made."""
    scope_state[VERIFIED_STATE_KEY] = (token, identity)


async def current_user(request: Request, edge: Edge) -> Identity:
    """The signed-in caller; binds it so upstream calls carry it."""
    token = _bearer(request)
    verified = request.scope.get("state", {}).get(VERIFIED_STATE_KEY)
    if isinstance(verified, tuple) and verified[0] == token:
        identity: Identity = verified[1]
    else:
        identity = await authenticate(token, edge, client_ip(request))
    set_current_identity(identity)
    await edge.limiter.hit(edge.rate_rules.user, "user", str(identity.user_id))
    return identity


async def optional_user(request: Request, edge: Edge) -> Identity | None:
    """The caller when a token is sent, else None (public reads that personalise)."""
    if "authorization" not in request.headers:
        return None
    return await current_user(request, edge)


async def moderator(identity: Annotated[Identity, Depends(current_user)]) -> Identity:
    if not identity.is_moderator:
        raise Problem(403, "permission-denied", "Permission denied", "moderators only")
    return identity


CurrentUser = Annotated[Identity, Depends(current_user)]
OptionalUser = Annotated[Identity | None, Depends(optional_user)]
Moderator = Annotated[Identity, Depends(moderator)]


async def auth_stub(edge: Edge) -> AuthClient:
    return edge.upstreams.auth


async def feed_stub(edge: Edge) -> FeedClient:
    return edge.upstreams.feed


async def graph_stub(edge: Edge) -> GraphClient:
    return edge.upstreams.graph


async def media_stub(edge: Edge) -> MediaClient:
    return edge.upstreams.media


async def moderation_stub(edge: Edge) -> ModerationClient:
    return edge.upstreams.moderation


async def notification_stub(edge: Edge) -> NotificationClient:
    return edge.upstreams.notification


AuthStub = Annotated[AuthClient, Depends(auth_stub)]
FeedStub = Annotated[FeedClient, Depends(feed_stub)]
GraphStub = Annotated[GraphClient, Depends(graph_stub)]
MediaStub = Annotated[MediaClient, Depends(media_stub)]
ModerationStub = Annotated[ModerationClient, Depends(moderation_stub)]
NotificationStub = Annotated[NotificationClient, Depends(notification_stub)]
