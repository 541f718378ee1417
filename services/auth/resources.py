"""What auth holds open while it runs: database, Redis, hashing pool, keys, throttles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis

from services.auth.accounts.throttle import LoginThrottle
from services.auth.passwords.hasher import PasswordHasher
from services.auth.settings import AuthSettings
from services.auth.tokens.keys import KeyRing, write_new_key
from zapcore.db import Database
from zapcore.ratelimit import limiter_storage
from zapcore.redis import create_redis
from zapcore.revocation import DenyList
from zapcore.settings import PlatformSettings
from zapcore.user_cards import UserCards


@dataclass
class AuthResources:
    platform: PlatformSettings
    settings: AuthSettings
    db: Database
    redis: Redis
    hasher: PasswordHasher
    keys: KeyRing
    deny_list: DenyList
    throttle: LoginThrottle
    # Public profiles for readers, kept by auth (GetUsers fills, changes drop).
    cards: UserCards

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.access_token_ttl_seconds)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.refresh_token_ttl_seconds)

    @classmethod
    def open(cls, platform: PlatformSettings, settings: AuthSettings) -> AuthResources:
        keys_dir = settings.signing_keys_dir
        if not any(keys_dir.glob("*.pem")):
            if platform.is_production or not settings.generate_missing_key:
                raise RuntimeError(
                    f"no signing keys in {keys_dir}; create one with `zap-auth rotate-key`"
                )
            write_new_key(keys_dir)
        redis = create_redis(platform.redis_url)
        return cls(
            platform=platform,
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.db_pool_size),
            redis=redis,
            hasher=PasswordHasher(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
                workers=settings.hash_workers,
            ),
            keys=KeyRing.load(keys_dir),
            deny_list=DenyList(redis, settings.access_token_ttl_seconds),
            throttle=LoginThrottle(
                redis,
                limiter_storage(platform.redis_url, redis),
                per_client=settings.login_failures_per_client,
                per_account=settings.login_failures_per_account,
                window_seconds=settings.login_failure_window_seconds,
            ),
            cards=UserCards(redis),
        )

    async def close(self) -> None:
        self.hasher.close()
        await self.db.dispose()
        await self.redis.aclose()
