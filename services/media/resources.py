"""What media holds open while it runs: database, Redis, job queue, object store, limits."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from services.media.object_store import ObjectStore
from services.media.processing.images import RenderSpec
from services.media.settings import MediaSettings
from zapcore.db import Database
from zapcore.media_cards import MediaCards
from zapcore.ratelimit import limiter_storage
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

JOB_QUEUE = "zap:media:jobs"


@dataclass
class MediaResources:
    platform: PlatformSettings
    settings: MediaSettings
    db: Database
    redis: Redis
    jobs: ArqRedis
    store: ObjectStore
    limiter: MovingWindowRateLimiter
    presign_rules: list[RateLimitItem]
    cards: MediaCards

    @property
    def public_base_url(self) -> str:
        return self.settings.public_base_url

    @property
    def render_spec(self) -> RenderSpec:
        return RenderSpec.from_settings(self.settings)

    @classmethod
    async def open(cls, platform: PlatformSettings, settings: MediaSettings) -> MediaResources:
        """Everything connected; the bucket exists, private, once this returns."""
        redis = create_redis(platform.redis_url)
        store = ObjectStore(settings)
        await store.open()
        try:
            await store.prepare_bucket(
                public_objects=settings.object_acl == "public-read",
                wait_seconds=settings.store_startup_timeout_seconds,
            )
        except BaseException:
            await store.close()
            await redis.aclose()
            raise
        return cls(
            platform=platform,
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.db_pool_size),
            redis=redis,
            # arq's client shares the connection pool; it only adds the enqueue commands.
            jobs=ArqRedis(connection_pool=redis.connection_pool),
            store=store,
            limiter=MovingWindowRateLimiter(limiter_storage(platform.redis_url, redis)),
            presign_rules=list(parse_many(settings.presign_rate_limit)),
            cards=MediaCards(redis),
        )

    async def close(self) -> None:
        await self.store.close()
        await self.db.dispose()
        await self.redis.aclose()
