"""What notification holds open while it runs: database, Redis, cursors and graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from services.notification.inbox.cursors import Cursors
from services.notification.live.channel import LivePublisher
from services.notification.settings import NotificationSettings
from zap.graph.v1 import graph_pb2
from zapcore.db import Database
from zapcore.identity import IdentitySigner
from zapcore.peers import Peers
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

if TYPE_CHECKING:
    from zap.graph.v1.graph_pb2_grpc import GraphServiceAsyncStub as GraphClient
else:
    from zap.graph.v1.graph_pb2_grpc import GraphServiceStub as GraphClient

JOB_QUEUE = "zap:notification:jobs"


@dataclass
class NotificationResources:
    platform: PlatformSettings
    settings: NotificationSettings
    db: Database
    redis: Redis
    cursors: Cursors
    live: LivePublisher
    peers: Peers
    graph: GraphClient

    @classmethod
    def open(
        cls, platform: PlatformSettings, settings: NotificationSettings
    ) -> NotificationResources:
        secret = platform.internal_secret.get_secret_value()
        redis = create_redis(platform.redis_url)
        peers = Peers(IdentitySigner(secret), caller="notification")
        return cls(
            platform=platform,
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.db_pool_size),
            redis=redis,
            cursors=Cursors(secret),
            live=LivePublisher(redis),
            peers=peers,
            graph=GraphClient(peers.channel(platform.graph_target, graph_pb2.DESCRIPTOR)),
        )

    async def close(self) -> None:
        await self.peers.close()
        await self.db.dispose()
        await self.redis.aclose()
