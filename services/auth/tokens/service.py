"""Token rules: issue access + refresh, rotate refresh tokens with reuse detection, log out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.accounts.repository import UserRepository
from services.auth.models import User
from services.auth.tokens.keys import KeyRing
from services.auth.tokens.repository import FamilySummary, RefreshTokenRepository
from zapcore.access_tokens import (
    ACCESS_TYPE,
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    REFRESH_TYPE,
    decode_verified,
)
from zapcore.errors import Unauthenticated
from zapcore.ids import new_id
from zapcore.revocation import DenyList


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    """The result of presenting a refresh token: new tokens, or proof of reuse."""

    tokens: IssuedTokens | None
    reused: bool = False


class TokenService:
    def __init__(
        self,
        session: AsyncSession,
        keys: KeyRing,
        deny_list: DenyList,
        *,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self._tokens = RefreshTokenRepository(session)
        self._users = UserRepository(session)
        self._keys = keys
        self._deny_list = deny_list
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl

    def _sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(
            claims,
            self._keys.signing_key,  # type: ignore[arg-type]  # jose takes key objects too
            algorithm=ALGORITHM,
            headers={"kid": self._keys.active_kid},
        )

    async def issue(self, user: User, family_id: uuid.UUID | None = None) -> IssuedTokens:
        """A new access token and a refresh token in `family_id` (a new family at login)."""
        now = datetime.now(UTC)
        access_expires = now + self._access_ttl
        refresh_expires = now + self._refresh_ttl
        refresh_id = new_id()
        family = family_id or new_id()
        await self._tokens.add(
            token_id=refresh_id, user_id=user.id, family_id=family, expires_at=refresh_expires
        )
        common = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(user.id), "iat": int(now.timestamp())}
        access = self._sign(
            {
                **common,
                "typ": ACCESS_TYPE,
                "jti": str(new_id()),
                "role": user.role,
                # Its login: a reused refresh token denies every access token of the family.
                "fam": str(family),
                "exp": int(access_expires.timestamp()),
            }
        )
        refresh = self._sign(
            {
                **common,
                "typ": REFRESH_TYPE,
                "jti": str(refresh_id),
                "fam": str(family),
                "exp": int(refresh_expires.timestamp()),
            }
        )
        return IssuedTokens(access, refresh, access_expires, refresh_expires)

    def _refresh_id(self, token: str) -> uuid.UUID:
        claims = decode_verified(token, self._keys.public_keys(), REFRESH_TYPE)
        try:
            return uuid.UUID(str(claims["jti"]))
        except ValueError:
            raise Unauthenticated("refresh token is invalid", reason="invalid-token") from None

    async def rotate(self, refresh_token: str) -> Rotation:
        """Spend a refresh token for a new pair; a token presented twice revokes its family."""
        token_id = self._refresh_id(refresh_token)
        await self._tokens.hold(token_id)
        now = datetime.now(UTC)
        spent = await self._tokens.spend(token_id, now)
        if spent is None:
            known = await self._tokens.find(token_id)
            if known is not None:
                await self._tokens.revoke_family(known.family_id, now)
                # Whoever holds the family's access tokens (the thief, or the owner) is cut
                # off now, not when they expire.
                await self._deny_list.deny_family(str(known.family_id))
            return Rotation(tokens=None, reused=known is not None)
        user = await self._users.get_active(spent.user_id)
        if user is None:
            return Rotation(tokens=None)
        return Rotation(tokens=await self.issue(user, spent.family_id))

    async def logout(
        self,
        user_id: uuid.UUID,
        *,
        refresh_token: str,
        access_token_id: str,
        access_expires_at: int,
    ) -> None:
        """End a session: deny the access token in use and revoke the refresh family."""
        if access_token_id:
            await self._deny_list.deny_token(access_token_id, access_expires_at)
        if not refresh_token:
            return
        token_id = self._refresh_id(refresh_token)
        known = await self._tokens.find(token_id)
        if known is not None and known.user_id == user_id:
            await self._tokens.revoke_family(known.family_id, datetime.now(UTC))
            await self._deny_list.deny_family(str(known.family_id))

    async def revoke_everything(self, user_id: uuid.UUID) -> None:
        """Revoke every refresh token and every access token issued so far."""
        await self._tokens.revoke_user(user_id, datetime.now(UTC))
        await self._deny_list.deny_user_before(user_id)

    async def forget(self, user_id: uuid.UUID) -> None:
        """A deleted account: no refresh token stays, and no access token works any more."""
        await self._tokens.delete_user(user_id)
        await self._deny_list.deny_user_before(user_id)

    async def sessions(self, user_id: uuid.UUID) -> list[FamilySummary]:
        return list(await self._tokens.live_families(user_id, datetime.now(UTC)))

    async def delete_expired(self, before: datetime) -> int:
        return await self._tokens.delete_expired(before)
