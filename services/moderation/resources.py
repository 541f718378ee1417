"""What moderation holds open while it runs: database, Redis, job queue, feed, rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from arq.connections import ArqRedis
from redis.asyncio import Redis

from services.moderation.models import EVENT_OUTBOX
from services.moderation.settings import ModerationSettings
from services.moderation.tier1.rules import RuleSet
from services.moderation.tier2.policy import Thresholds
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zapcore.db import Database
from zapcore.events import EventPublisher
from zapcore.identity import IdentitySigner
from zapcore.logging import get_logger
from zapcore.outbox import Outbox
from zapcore.pagination import CursorCodec
from zapcore.peers import Peers
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

if TYPE_CHECKING:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient
    from zap.feed.v1.feed_pb2_grpc import FeedServiceAsyncStub as FeedClient
else:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceStub as AuthClient
    from zap.feed.v1.feed_pb2_grpc import FeedServiceStub as FeedClient

JOB_QUEUE = "zap:moderation:jobs"
log = get_logger(__name__)


@dataclass
class ModerationResources:
    platform: PlatformSettings
    settings: ModerationSettings
    db: Database
    redis: Redis
    jobs: ArqRedis
    events: EventPublisher
    outbox: Outbox
    cursors: CursorCodec
    peers: Peers
    feed: FeedClient
    auth: AuthClient
    rules: RuleSet
    thresholds: Thresholds

    @classmethod
    def open(cls, platform: PlatformSettings, settings: ModerationSettings) -> ModerationResources:
        redis = create_redis(platform.redis_url)
        secret = platform.internal_secret.get_secret_value()
        peers = Peers(IdentitySigner(secret), caller="moderation")
        db = Database(settings.database_url, pool_size=settings.db_pool_size)
        events = EventPublisher(redis, producer="moderation")
        return cls(
            platform=platform,
            settings=settings,
            db=db,
            redis=redis,
            jobs=ArqRedis(connection_pool=redis.connection_pool),
            events=events,
            outbox=Outbox(EVENT_OUTBOX, db, events, producer="moderation"),
            cursors=CursorCodec(secret, "moderation"),
            peers=peers,
            feed=FeedClient(peers.channel(platform.feed_target, feed_pb2.DESCRIPTOR)),
            auth=AuthClient(peers.channel(platform.auth_target, auth_pb2.DESCRIPTOR)),
            rules=settings.rules(),
            thresholds=settings.thresholds(),
        )

    async def close(self) -> None:
        await self.outbox.close()
        await self.peers.close()
        await self.db.dispose()
        await self.redis.aclose()
