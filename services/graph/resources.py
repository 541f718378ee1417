"""What graph holds open while it runs: database, Redis (events) and cursor codecs."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from services.graph.models import EVENT_OUTBOX
from services.graph.settings import GraphSettings
from zapcore.db import Database
from zapcore.events import EventPublisher
from zapcore.exclusions import ExclusionsCache
from zapcore.outbox import Outbox
from zapcore.pagination import CursorCodec
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings


@dataclass
class GraphResources:
    platform: PlatformSettings
    settings: GraphSettings
    db: Database
    redis: Redis
    events: EventPublisher
    outbox: Outbox
    # The read model of blocks and mutes that readers use instead of calling graph.
    exclusions: ExclusionsCache
    # One codec per list, each with its own derived key, so a followers cursor is never
    # accepted by the following list (and no cursor is valid as anything else).
    followers_cursors: CursorCodec
    following_cursors: CursorCodec

    @classmethod
    def open(cls, platform: PlatformSettings, settings: GraphSettings) -> GraphResources:
        secret = platform.internal_secret.get_secret_value()
        redis = create_redis(platform.redis_url)
        db = Database(settings.database_url, pool_size=settings.db_pool_size)
        events = EventPublisher(redis, producer="graph")
        return cls(
            platform=platform,
            settings=settings,
            db=db,
            redis=redis,
            events=events,
            outbox=Outbox(EVENT_OUTBOX, db, events, producer="graph"),
            exclusions=ExclusionsCache(redis),
            followers_cursors=CursorCodec(secret, "graph.followers"),
            following_cursors=CursorCodec(secret, "graph.following"),
        )

    async def close(self) -> None:
        await self.outbox.close()
        await self.db.dispose()
        await self.redis.aclose()
