"""feed's gRPC server with everything it holds open (used by `python -m` and by tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.feed.resources import FeedResources
from services.feed.servicer import FeedServicer
from services.feed.settings import FeedSettings
from zap.feed.v1 import feed_pb2, feed_pb2_grpc
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = feed_pb2.DESCRIPTOR.services_by_name["FeedService"].full_name


@asynccontextmanager
async def running(platform: PlatformSettings, settings: FeedSettings) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    resources = FeedResources.open(platform, settings)
    # Home reads give the database half a second; the first connection alone can take that.
    await resources.db.warm_up()
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    feed_pb2_grpc.add_FeedServiceServicer_to_server(FeedServicer(resources), server.server)
    try:
        yield server
    finally:
        await server.stop()
        await resources.close()
