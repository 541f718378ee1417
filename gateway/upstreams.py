"""gRPC channels to the services, opened in the app's lifespan and kept on app.state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.graph.v1 import graph_pb2
from zap.media.v1 import media_pb2
from zap.moderation.v1 import moderation_pb2
from zap.notification.v1 import notification_pb2

if TYPE_CHECKING:
    # mypy-protobuf types grpc.aio stubs as *AsyncStub, a name that exists only for type checkers.
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient
    from zap.feed.v1.feed_pb2_grpc import FeedServiceAsyncStub as FeedClient
    from zap.graph.v1.graph_pb2_grpc import GraphServiceAsyncStub as GraphClient
    from zap.media.v1.media_pb2_grpc import MediaServiceAsyncStub as MediaClient
    from zap.moderation.v1.moderation_pb2_grpc import (
        ModerationServiceAsyncStub as ModerationClient,
    )
    from zap.notification.v1.notification_pb2_grpc import (
        NotificationServiceAsyncStub as NotificationClient,
    )
else:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceStub as AuthClient
    from zap.feed.v1.feed_pb2_grpc import FeedServiceStub as FeedClient
    from zap.graph.v1.graph_pb2_grpc import GraphServiceStub as GraphClient
    from zap.media.v1.media_pb2_grpc import MediaServiceStub as MediaClient
    from zap.moderation.v1.moderation_pb2_grpc import ModerationServiceStub as ModerationClient
    from zap.notification.v1.notification_pb2_grpc import (
        NotificationServiceStub as NotificationClient,
    )
from gateway.breakers import Breakers
from zapcore.grpc_client import open_channel
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

__all__ = [
    "AuthClient",
    "FeedClient",
    "GraphClient",
    "MediaClient",
    "ModerationClient",
    "NotificationClient",
    "Upstreams",
]


@dataclass
class Upstreams:
    auth: AuthClient
    feed: FeedClient
    graph: GraphClient
    media: MediaClient
    moderation: ModerationClient
    notification: NotificationClient
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        platform: PlatformSettings,
        signer: IdentitySigner,
        timeout: float,
        breakers: Breakers,
    ) -> Upstreams:
        def channel(name: str, target: str, file: FileDescriptor) -> grpc.aio.Channel:
            service = file.services_by_name[f"{name.capitalize()}Service"]
            return open_channel(
                target,
                service,
                signer=signer,
                caller="gateway",
                default_timeout=timeout,
                guard=breakers.guard(name),
            )

        channels = {
            "auth": channel("auth", platform.auth_target, auth_pb2.DESCRIPTOR),
            "feed": channel("feed", platform.feed_target, feed_pb2.DESCRIPTOR),
            "graph": channel("graph", platform.graph_target, graph_pb2.DESCRIPTOR),
            "media": channel("media", platform.media_target, media_pb2.DESCRIPTOR),
            "moderation": channel(
                "moderation", platform.moderation_target, moderation_pb2.DESCRIPTOR
            ),
            "notification": channel(
                "notification", platform.notification_target, notification_pb2.DESCRIPTOR
            ),
        }
        return cls(
            auth=AuthClient(channels["auth"]),
            feed=FeedClient(channels["feed"]),
            graph=GraphClient(channels["graph"]),
            media=MediaClient(channels["media"]),
            moderation=ModerationClient(channels["moderation"]),
            notification=NotificationClient(channels["notification"]),
            channels=channels,
        )

    async def health(self, per_check_seconds: float = 1.0) -> dict[str, bool]:
        """Each upstream's gRPC health, checked concurrently."""

        async def check(channel: grpc.aio.Channel) -> bool:
            try:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=per_check_seconds
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

        names = list(self.channels)
        answers = await asyncio.gather(*(check(self.channels[name]) for name in names))
        return dict(zip(names, answers, strict=True))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close(None)
