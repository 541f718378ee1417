"""Access-token deny-list in Redis, shared by auth (writes) and the gateway (reads).

Access tokens are verified without calling auth, so revocation before expiry needs a
shared list: one token (logout) or every token of a user issued before a moment
(account deletion, password change). Entries expire with the tokens they cover.
"""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

# One hash tag for the whole list would pin it to one cluster slot; tag per entry instead.
_TOKEN_KEY = "zap:denied-token:{{{}}}"
_USER_KEY = "zap:denied-user:{{{}}}"


class DenyList:
    def __init__(self, redis: Redis, max_token_ttl_seconds: int) -> None:
        self._redis = redis
        self._max_ttl = max_token_ttl_seconds

    async def deny_token(self, token_id: str, expires_at: int) -> None:
        """Refuse this access token until it expires on its own."""
        ttl = max(1, expires_at - int(time.time()) + 1)
        await self._redis.set(_TOKEN_KEY.format(token_id), b"1", ex=min(ttl, self._max_ttl + 1))

    async def deny_user_before(self, user_id: uuid.UUID, moment: int | None = None) -> None:
        """Refuse every access token of this user issued at or before `moment`."""
        stamp = int(time.time()) if moment is None else moment
        await self._redis.set(_USER_KEY.format(user_id), str(stamp).encode(), ex=self._max_ttl + 1)

    async def is_denied(self, token_id: str, user_id: uuid.UUID, issued_at: int) -> bool:
        """True when the token itself or its user's earlier tokens were revoked (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(_TOKEN_KEY.format(token_id))
            pipe.get(_USER_KEY.format(user_id))
            token_hit, stamp = await pipe.execute()
        return bool(token_hit) or (stamp is not None and issued_at <= int(stamp))
