"""Access-token deny-list in Redis, shared by auth (writes) and the gateway (reads).

Access tokens are verified without calling auth, so revocation before expiry needs a
shared list: one token (logout), every token of a login's refresh family (a reused
refresh token: stolen, so every access token it led to is too), or every token of a user
issued before a moment (account deletion, password change). Entries expire with the tokens
they cover.

The gateway checks a token on every request in the same pipeline as its rate limits (one
round trip): `token_checks` are plain EXISTS commands, one key (one cluster slot) each, and the
user's entry is read by the user's rate-limit script, whose keys share its hash tag.
"""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

# One hash tag for the whole list would pin it to one cluster slot; tag per entry instead.
_TOKEN_KEY = "zap:denied-token:{{{}}}"
_USER_KEY = "zap:denied-user:{{{}}}"
_FAMILY_KEY = "zap:denied-family:{{{}}}"


class DenyList:
    def __init__(self, redis: Redis, max_token_ttl_seconds: int) -> None:
        self._redis = redis
        self._max_ttl = max_token_ttl_seconds

    async def deny_token(self, token_id: str, expires_at: int) -> None:
        """Refuse this access token until it expires on its own."""
        ttl = max(1, expires_at - int(time.time()) + 1)
        await self._redis.set(_TOKEN_KEY.format(token_id), b"1", ex=min(ttl, self._max_ttl + 1))

    async def deny_family(self, family_id: str) -> None:
        """Refuse every access token issued in this refresh family (at login or rotations);
        none lives longer than the longest access token."""
        await self._redis.set(_FAMILY_KEY.format(family_id), b"1", ex=self._max_ttl + 1)

    async def deny_user_before(self, user_id: uuid.UUID, moment: int | None = None) -> None:
        """Refuse every access token of this user issued at or before `moment`."""
        stamp = int(time.time()) if moment is None else moment
        await self._redis.set(_USER_KEY.format(user_id), str(stamp).encode(), ex=self._max_ttl + 1)

    @staticmethod
    def user_key(user_id: uuid.UUID) -> str:
        """The key of the user's "tokens issued at or before" stamp (hash tag: the user id)."""
        return _USER_KEY.format(user_id)

    @staticmethod
    def token_checks(token_id: str, family_id: str = "") -> list[str]:
        """Keys whose existence refuses the token: its own entry and its family's."""
        keys = [_TOKEN_KEY.format(token_id)]
        if family_id:
            keys.append(_FAMILY_KEY.format(family_id))
        return keys

    async def is_denied(
        self, token_id: str, user_id: uuid.UUID, issued_at: int, family_id: str = ""
    ) -> bool:
        """True when the token itself, its refresh family or its user's earlier tokens were
        revoked (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(_USER_KEY.format(user_id))
            for key in self.token_checks(token_id, family_id):
                pipe.exists(key)
            stamp, *token_hits = await pipe.execute()
        if any(token_hits):
            return True
        return stamp is not None and issued_at <= int(stamp)
