"""Who is calling: the verified identity that crosses service boundaries.

The gateway verifies the user's access JWT, then signs a short-lived internal assertion
(HS256 with a key derived from ZAP_INTERNAL_SECRET) and sends it in the `x-zap-identity`
metadata of every gRPC call. Services accept no call without a valid assertion, so a
client that reaches a service port directly cannot act anonymously or as someone else.
Services calling services forward the assertion they received (same user, new hop).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from jose import JWTError, jwt
from jose.exceptions import JOSEError

from zapcore.errors import PermissionDenied, Unauthenticated

IDENTITY_METADATA_KEY = "x-zap-identity"
_AUDIENCE = "zap-internal"
_ALGORITHM = "HS256"
# Long enough for a slow fan-out chain, short enough that a leaked assertion is soon useless.
ASSERTION_TTL_SECONDS = 60

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller: the service that made the call and, if any, the end user."""

    service: str
    user_id: uuid.UUID | None = None
    role: str = "user"
    client_ip: str = ""
    # The access token's id, so services can revoke the very token in use (logout).
    token_id: str = ""
    expires_at: int = field(default=0, compare=False)

    @property
    def is_moderator(self) -> bool:
        return self.role in ("moderator", "admin")


_current: ContextVar[Identity | None] = ContextVar("zap_identity", default=None)


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, so a value signed for one use is never valid for another."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


class IdentitySigner:
    """Signs and verifies internal identity assertions.

    Both ends remember their recent work, because every call of every request carries an
    assertion and HMAC-JWT encoding or decoding through python-jose costs more than the rest
    of a small call: an identity's assertion is reused while it has at least half its
    lifetime left, and an assertion once verified is trusted again until it expires."""

    def __init__(self, internal_secret: str, remembered: int = 10_000) -> None:
        self._key = derive_key(internal_secret, "internal-identity").hex()
        self._remembered = remembered
        self._signed: OrderedDict[Identity, tuple[str, int]] = OrderedDict()
        self._verified: OrderedDict[str, Identity] = OrderedDict()

    def sign(self, identity: Identity, ttl_seconds: int = ASSERTION_TTL_SECONDS) -> str:
        now = int(time.time())
        if ttl_seconds == ASSERTION_TTL_SECONDS:
            known = self._signed.get(identity)
            if known is not None and known[1] - now >= ttl_seconds // 2:
                self._signed.move_to_end(identity)
                return known[0]
        assertion = self._encode(identity, now, ttl_seconds)
        if ttl_seconds == ASSERTION_TTL_SECONDS:
            _remember(self._signed, identity, (assertion, now + ttl_seconds), self._remembered)
        return assertion

    def _encode(self, identity: Identity, now: int, ttl_seconds: int) -> str:
        claims: dict[str, object] = {
            "iss": identity.service,
            "aud": _AUDIENCE,
            "iat": now,
            "exp": now + ttl_seconds,
            "role": identity.role,
        }
        if identity.user_id is not None:
            claims["sub"] = str(identity.user_id)
        if identity.client_ip:
            claims["ip"] = identity.client_ip
        if identity.token_id:
            claims["jti"] = identity.token_id
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, assertion: str) -> Identity:
        known = self._verified.get(assertion)
        if known is not None and known.expires_at > time.time():
            self._verified.move_to_end(assertion)
            return known
        identity = self._decode(assertion)
        _remember(self._verified, assertion, identity, self._remembered)
        return identity

    def _decode(self, assertion: str) -> Identity:
        try:
            claims = jwt.decode(
                assertion,
                self._key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require_exp": True, "require_iat": True, "require_aud": True},
            )
            subject = claims.get("sub")
            return Identity(
                service=str(claims["iss"]),
                user_id=uuid.UUID(subject) if subject else None,
                role=str(claims.get("role", "user")),
                client_ip=str(claims.get("ip", "")),
                token_id=str(claims.get("jti", "")),
                expires_at=int(claims["exp"]),
            )
        except (JWTError, JOSEError, KeyError, ValueError, TypeError):
            raise Unauthenticated("internal identity is missing or invalid") from None


def _remember(memory: OrderedDict[K, V], key: K, value: V, bound: int) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > bound:
        memory.popitem(last=False)


def current_identity() -> Identity | None:
    """The verified caller of the call being handled, if any."""
    return _current.get()


def set_current_identity(identity: Identity | None) -> None:
    """Bind the caller for the rest of this task (called by the server interceptor)."""
    _current.set(identity)


def require_user() -> Identity:
    """The caller, who must be acting for an end user."""
    identity = _current.get()
    if identity is None or identity.user_id is None:
        raise Unauthenticated("this call needs a signed-in user")
    return identity


def require_user_id() -> uuid.UUID:
    """The end user's id of this call."""
    user_id = require_user().user_id
    assert user_id is not None  # require_user guarantees it
    return user_id


def require_moderator() -> Identity:
    """The caller, who must hold the moderator or admin role."""
    identity = require_user()
    if not identity.is_moderator:
        raise PermissionDenied("this call needs the moderator role")
    return identity


@contextmanager
def acting_as_service() -> Iterator[None]:
    """Calls made inside carry the service's own identity, not the user's it is serving.

    For calls that only the service itself may make (moderation applying a decision to
    feed), whoever asked for the work.
    """
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)
