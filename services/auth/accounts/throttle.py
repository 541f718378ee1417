"""Failed-login throttling that slows guessing without letting anyone lock a victim out.

Two counters of failures, in a moving window:
- per (account, client IP): a guesser from one address is stopped after a few tries;
- per account, across addresses: a distributed guesser is stopped too, but only for
  addresses that have never signed in to this account. The owner's known addresses
  (remembered for 30 days after a successful login) keep working, so an attacker who
  burns the account-wide budget does not lock the owner out.
"""

from __future__ import annotations

import hashlib

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from zapcore.errors import RateLimited

_KNOWN_TTL_SECONDS = 30 * 24 * 3600


def _account_key(email: str) -> str:
    # Hash, so no email (PII) appears in Redis keys.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        storage: RedisStorage,
        *,
        per_client: int,
        per_account: int,
        window_seconds: int,
    ) -> None:
        self._redis = redis
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_client = RateLimitItemPerSecond(per_client, window_seconds)
        self._per_account = RateLimitItemPerSecond(per_account, window_seconds)
        self._window = window_seconds

    def _known_key(self, account: str) -> str:
        return f"zap:auth:known-ips:{{{account}}}"

    async def check(self, email: str, client_ip: str) -> None:
        """Raise RateLimited when this client may not try this account right now."""
        account = _account_key(email)
        if not await self._limiter.test(self._per_client, "login-client", account, client_ip):
            raise self._refusal()
        if not await self._limiter.test(self._per_account, "login-account", account):
            known = await self._redis.sismember(self._known_key(account), client_ip)  # type: ignore[misc]
            if not known:
                raise self._refusal()

    async def record_failure(self, email: str, client_ip: str) -> None:
        account = _account_key(email)
        await self._limiter.hit(self._per_client, "login-client", account, client_ip)
        await self._limiter.hit(self._per_account, "login-account", account)

    async def record_success(self, email: str, client_ip: str) -> None:
        account = _account_key(email)
        key = self._known_key(account)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, client_ip)
            pipe.expire(key, _KNOWN_TTL_SECONDS)
            await pipe.execute()
        await self._limiter.clear(self._per_client, "login-client", account, client_ip)

    async def forget(self, email: str) -> None:
        """A deleted account: the addresses it signed in from go too."""
        await self._redis.delete(self._known_key(_account_key(email)))

    def _refusal(self) -> RateLimited:
        return RateLimited(
            "too many failed sign-in attempts; try again later",
            reason="login-throttled",
            retry_after_seconds=self._window,
        )
