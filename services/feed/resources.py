"""What feed holds open while it runs: database, Redis, job queue, peers, feed caches."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from redis.asyncio import Redis

from services.feed.models import EVENT_OUTBOX
from services.feed.posts.audience import Audience
from services.feed.posts.authors import Authors
from services.feed.posts.cards import PostCards
from services.feed.posts.engagement import Engagement
from services.feed.posts.hydration import Hydration
from services.feed.posts.images import Images
from services.feed.posts.presentation import Presentation
from services.feed.settings import FeedSettings
from services.feed.timeline.cache import FeedCache
from zap.auth.v1 import auth_pb2
from zap.graph.v1 import graph_pb2
from zap.media.v1 import media_pb2
from zap.moderation.v1 import moderation_pb2
from zapcore.db import Database
from zapcore.events import EventPublisher
from zapcore.exclusions import ExclusionsCache
from zapcore.identity import IdentitySigner
from zapcore.media_cards import MediaCards
from zapcore.outbox import Outbox
from zapcore.pagination import CursorCodec
from zapcore.peers import Peers
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings
from zapcore.user_cards import UserCards

if TYPE_CHECKING:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient
    from zap.graph.v1.graph_pb2_grpc import GraphServiceAsyncStub as GraphClient
    from zap.media.v1.media_pb2_grpc import MediaServiceAsyncStub as MediaClient
    from zap.moderation.v1.moderation_pb2_grpc import (
        ModerationServiceAsyncStub as ModerationClient,
    )
else:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceStub as AuthClient
    from zap.graph.v1.graph_pb2_grpc import GraphServiceStub as GraphClient
    from zap.media.v1.media_pb2_grpc import MediaServiceStub as MediaClient
    from zap.moderation.v1.moderation_pb2_grpc import ModerationServiceStub as ModerationClient

JOB_QUEUE = "zap:feed:jobs"


@dataclass
class FeedResources:
    platform: PlatformSettings
    settings: FeedSettings
    db: Database
    redis: Redis
    jobs: ArqRedis
    cache: FeedCache
    cards: PostCards
    engagement: Engagement
    hydration: Hydration
    events: EventPublisher
    outbox: Outbox
    cursors: CursorCodec
    peers: Peers
    graph: GraphClient
    moderation: ModerationClient
    media: MediaClient
    auth: AuthClient
    audience: Audience
    authors: Authors
    presentation: Presentation
    _background: set[asyncio.Task[object]] = field(default_factory=set)

    @classmethod
    def open(cls, platform: PlatformSettings, settings: FeedSettings) -> FeedResources:
        redis = create_redis(platform.redis_url)
        secret = platform.internal_secret.get_secret_value()
        peers = Peers(IdentitySigner(secret), caller="feed")
        db = Database(settings.database_url, pool_size=settings.db_pool_size)
        events = EventPublisher(redis, producer="feed")
        graph = GraphClient(peers.channel(platform.graph_target, graph_pb2.DESCRIPTOR))
        auth = AuthClient(peers.channel(platform.auth_target, auth_pb2.DESCRIPTOR))
        media = MediaClient(peers.channel(platform.media_target, media_pb2.DESCRIPTOR))
        authors = Authors(UserCards(redis), auth)
        cards = PostCards(
            redis,
            ttl_seconds=settings.post_card_ttl_seconds,
            refresh_seconds=settings.post_card_refresh_seconds,
        )
        engagement = Engagement(
            redis,
            window_days=settings.engagement_window_days,
            max_entries=settings.engagement_max_entries,
            ttl_seconds=settings.engagement_ttl_seconds,
        )
        return cls(
            platform=platform,
            settings=settings,
            db=db,
            redis=redis,
            # arq's client shares the connection pool; it only adds the enqueue commands.
            jobs=ArqRedis(connection_pool=redis.connection_pool),
            cache=FeedCache(
                redis,
                size=settings.cache_size,
                ttl_seconds=settings.active_window_seconds,
                paging_ttl_seconds=settings.paging_ttl_seconds,
            ),
            cards=cards,
            engagement=engagement,
            hydration=Hydration(db, redis, cards, engagement),
            events=events,
            outbox=Outbox(EVENT_OUTBOX, db, events, producer="feed"),
            cursors=CursorCodec(secret, "feed"),
            peers=peers,
            graph=graph,
            moderation=ModerationClient(
                peers.channel(platform.moderation_target, moderation_pb2.DESCRIPTOR)
            ),
            media=media,
            auth=auth,
            audience=Audience(ExclusionsCache(redis), graph),
            authors=authors,
            presentation=Presentation(redis, authors, Images(MediaCards(redis), media)),
        )

    def in_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run best-effort follow-up work without making the caller wait for it."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await self.outbox.close()
        await self.peers.close()
        await self.db.dispose()
        await self.redis.aclose()
