"""Dependencies declared once and reused by every route."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from redis.exceptions import NoScriptError, RedisError

from gateway.people import People
from gateway.problems import Problem
from gateway.ratelimit import COUNTED, REFUSED, STAMP_DENIED, Count, RateLimiter, refusal
from gateway.state import EdgeState
from gateway.upstreams import (
    AuthClient,
    FeedClient,
    GraphClient,
    MediaClient,
    ModerationClient,
    NotificationClient,
    Upstreams,
)
from zapcore.access_tokens import AccessClaims
from zapcore.errors import Unauthenticated
from zapcore.identity import Identity, set_current_identity
from zapcore.logging import get_logger
from zapcore.revocation import DenyList

log = get_logger(__name__)


def edge_of(request: Request) -> EdgeState:
    state: EdgeState = request.app.state.edge
    return state


async def edge_state(request: Request) -> EdgeState:
    return edge_of(request)


Edge = Annotated[EdgeState, Depends(edge_state)]


def client_ip(request: Request) -> str:
    return str(request.scope.get("state", {}).get("client_ip", ""))


# The dependencies every request of a hot route solves take the request, not `Edge`:
# FastAPI solves a nested dependency again under each one that asks for it (reading it from
# its cache only after), and that machinery, not the work, was most of their cost.


async def ip_rate_limit(request: Request) -> None:
    """Every API request counts against its client address. On a route that authenticates,
    a request with a bearer token is admitted here, in the same Redis round trip: the
    deny-list and the user's limits too (`current_user` then reads the outcome)."""
    edge = edge_of(request)
    ip = client_ip(request)
    token = _bearer_or_none(request) if _authenticates(request.scope.get("route")) else None
    if token is None:
        await edge.limiter.hit(edge.rate_rules.ip, "ip", ip)
        return
    state: dict[str, object] = request.scope.setdefault("state", {})
    state[ADMITTED_STATE_KEY] = (token, await _admission(token, edge, state, ip))


def _bearer_or_none(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _bearer(request: Request) -> str:
    token = _bearer_or_none(request)
    if token is None:
        raise Unauthenticated(
            "send an access token as 'Authorization: Bearer <token>'", reason="missing-token"
        )
    return token


async def locally_verified(token: str, edge: EdgeState) -> AccessClaims:
    """The claims of a token whose signature and expiry are good (checked once per token:
    the verifier remembers it until its `exp`); says nothing of revocation."""
    verifier = edge.keys.verifier
    if not verifier.knows(token):
        await edge.keys.refresh()
    return verifier.verify(token)


async def verified_claims(token: str, edge: EdgeState) -> AccessClaims:
    """The claims of a valid access token (local signature check + deny-list)."""
    claims = await locally_verified(token, edge)
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


# Set by the idempotency middleware: this token was verified and checked against the
# deny-list during this request.
VERIFIED_STATE_KEY = "verified_token"
# Set by `ip_rate_limit`: this token's request was admitted (or refused) with its user's
# limits counted: (token, Identity) or (token, the error to raise).
ADMITTED_STATE_KEY = "admitted_token"


def remember_verified(scope_state: dict[str, object], token: str, identity: Identity) -> None:
    """Let the route reuse a verification an outer middleware already made."""
    scope_state[VERIFIED_STATE_KEY] = (token, identity)


async def _admission(
    token: str, edge: EdgeState, state: dict[str, object], ip: str
) -> Identity | Unauthenticated:
    """Admit one request of a token on the client address's limits (an invalid token: the
    address alone); the token's error is returned for `current_user` to raise, since a route
    that only may authenticate has not decided yet that it will."""
    verified = state.get(VERIFIED_STATE_KEY)
    if isinstance(verified, tuple) and verified[0] == token:
        identity: Identity = verified[1]
        await admit(edge, identity.user_id, ip)
        return identity
    try:
        claims = await locally_verified(token, edge)
    except Unauthenticated as error:
        await edge.limiter.hit(edge.rate_rules.ip, "ip", ip)
        return error
    await admit(edge, claims.user_id, ip, claims)
    return identity_of(claims, ip)


async def admit(
    edge: EdgeState, user_id: uuid.UUID | None, ip: str | None, claims: AccessClaims | None = None
) -> None:
    """Count an authenticated request against the client address's limits (`ip`, unless
    None) and the user's, and check its token against the deny-list (`claims`, unless the
    caller did already): one Redis round trip. 429 or 401 when the request may not pass.

    What a refused request counts against is what it counted against before these were
    batched, or less: refused by the address's limits, it counts against nothing; by a
    revoked token, against the address's limits only; by the user's, against the address's.
    The user's script cannot see the address's verdict nor the token's entry (other keys,
    other slots), so when one of those refuses, the user's count is taken back in a second
    round trip that only refused requests make.

    Redis down: the limits let the request pass, as they always did; the deny-list cannot
    be checked, so a request whose token needed checking fails closed (503), as it always
    did."""
    assert user_id is not None  # access tokens always name their user
    user = Count.of(
        edge.rate_rules.user,
        "user",
        str(user_id),
        DenyList.user_key(user_id) if claims is not None else "",
        claims.issued_at if claims is not None else 0,
    )
    address = Count.of(edge.rate_rules.ip, "ip", ip) if ip is not None else None
    token_keys = DenyList.token_checks(claims.token_id, claims.family_id) if claims else []
    counts = [user] if address is None else [address, user]
    try:
        answers = await _one_round_trip(edge, token_keys, counts)
    except (RedisError, OSError):
        if claims is not None:
            raise
        log.warning("ratelimit.unavailable")
        return
    token_denied = any(answers[: len(token_keys)])
    user_outcome, user_wait = RateLimiter.verdict(answers[-1])
    address_outcome, address_wait = (
        RateLimiter.verdict(answers[len(token_keys)]) if address is not None else (COUNTED, 0)
    )
    if address_outcome == REFUSED or token_denied:
        if user_outcome == COUNTED:
            await edge.limiter.refund(user)
        if address_outcome == REFUSED:
            raise refusal(address_wait)
    if token_denied or user_outcome == STAMP_DENIED:
        raise Unauthenticated("this token has been revoked", reason="token-revoked")
    if user_outcome == REFUSED:
        raise refusal(user_wait)


async def _one_round_trip(edge: EdgeState, exists: list[str], counts: list[Count]) -> list[Any]:
    for attempt in (1, 2):
        async with edge.redis.pipeline(transaction=False) as pipe:
            for key in exists:
                pipe.exists(key)
            for count in counts:
                edge.limiter.queue(pipe, count)
            try:
                answers: list[Any] = await pipe.execute()
                return answers
            except NoScriptError:
                # Redis restarted or its scripts were flushed: nothing was counted.
                if attempt == 2:
                    raise
        await edge.limiter.load()
    raise AssertionError("unreachable")


async def current_user(request: Request) -> Identity:
    """The signed-in caller; binds it so upstream calls carry it."""
    edge = edge_of(request)
    token = _bearer(request)
    state: dict[str, object] = request.scope.setdefault("state", {})
    admitted = state.get(ADMITTED_STATE_KEY)
    if isinstance(admitted, tuple) and admitted[0] == token:
        outcome = admitted[1]
        if isinstance(outcome, Unauthenticated):
            raise outcome
        identity: Identity = outcome
    else:
        # A route outside the address's limits: the deny-list and the user's limits only.
        verified = state.get(VERIFIED_STATE_KEY)
        if isinstance(verified, tuple) and verified[0] == token:
            identity = verified[1]
            await admit(edge, identity.user_id, None)
        else:
            claims = await locally_verified(token, edge)
            await admit(edge, claims.user_id, None, claims)
            identity = identity_of(claims, client_ip(request))
    set_current_identity(identity)
    return identity


async def optional_user(request: Request) -> Identity | None:
    """The caller when a token is sent, else None (public reads that personalise)."""
    if "authorization" not in request.headers:
        return None
    return await current_user(request)


_USER_DEPENDENCIES = frozenset({current_user, optional_user})
# Route -> whether it authenticates, found once per route; the route is kept with its
# answer so that a new route at a reused address is never taken for the old one.
_AUTHENTICATING_ROUTES: dict[int, tuple[object, bool]] = {}


def _authenticates(route: object) -> bool:
    """Whether the route's dependencies ask for the caller (`current_user`, `optional_user`)."""
    known = _AUTHENTICATING_ROUTES.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    dependant: Dependant | None = getattr(route, "dependant", None)
    answer = dependant is not None and _asks_for_user(dependant)
    _AUTHENTICATING_ROUTES[id(route)] = (route, answer)
    return answer


def _asks_for_user(dependant: Dependant) -> bool:
    return any(
        sub.call in _USER_DEPENDENCIES or _asks_for_user(sub) for sub in dependant.dependencies
    )


async def moderator(identity: Annotated[Identity, Depends(current_user)]) -> Identity:
    if not identity.is_moderator:
        raise Problem(403, "permission-denied", "Permission denied", "moderators only")
    return identity


CurrentUser = Annotated[Identity, Depends(current_user)]
OptionalUser = Annotated[Identity | None, Depends(optional_user)]
Moderator = Annotated[Identity, Depends(moderator)]


async def auth_stub(request: Request) -> AuthClient:
    return edge_of(request).upstreams.auth


async def feed_stub(request: Request) -> FeedClient:
    return edge_of(request).upstreams.feed


async def graph_stub(request: Request) -> GraphClient:
    return edge_of(request).upstreams.graph


async def media_stub(request: Request) -> MediaClient:
    return edge_of(request).upstreams.media


async def moderation_stub(request: Request) -> ModerationClient:
    return edge_of(request).upstreams.moderation


async def notification_stub(request: Request) -> NotificationClient:
    return edge_of(request).upstreams.notification


async def upstreams_of(request: Request) -> Upstreams:
    return edge_of(request).upstreams


async def people_of(request: Request) -> People:
    return edge_of(request).people


# One dependency for a route that calls several services (each dependency costs a solve).
UpstreamsDep = Annotated[Upstreams, Depends(upstreams_of)]
PeopleDep = Annotated[People, Depends(people_of)]
AuthStub = Annotated[AuthClient, Depends(auth_stub)]
FeedStub = Annotated[FeedClient, Depends(feed_stub)]
GraphStub = Annotated[GraphClient, Depends(graph_stub)]
MediaStub = Annotated[MediaClient, Depends(media_stub)]
ModerationStub = Annotated[ModerationClient, Depends(moderation_stub)]
NotificationStub = Annotated[NotificationClient, Depends(notification_stub)]
