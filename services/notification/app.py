"""notification's gRPC server with everything it holds open (used by `python -m` and by tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.notification.live.hub import LiveHub
from services.notification.resources import NotificationResources
from services.notification.servicer import NotificationServicer
from services.notification.settings import NotificationSettings
from zap.notification.v1 import notification_pb2, notification_pb2_grpc
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.logging import get_logger
from zapcore.settings import PlatformSettings

log = get_logger(__name__)

SERVICE_NAME = notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name


@asynccontextmanager
async def running(
    platform: PlatformSettings, settings: NotificationSettings
) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    resources = NotificationResources.open(platform, settings)
    hub = LiveHub(
        platform.redis_url,
        queue_size=settings.subscriber_queue_size,
        max_subscribers=settings.max_subscribers,
        confirm_timeout=settings.subscribe_timeout_seconds,
    )
    await hub.start()
    if not await hub.wait_connected(5.0):
        # Subscribe answers UNAVAILABLE until Redis is back; every other RPC works.
        log.warning("notification.live_not_connected")
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(
        NotificationServicer(resources, hub), server.server
    )
    # Open Subscribe streams would hold the whole grace period: end them as shutdown begins.
    server.on_shutdown(hub.end_streams)
    try:
        yield server
    finally:
        await server.stop()
        await hub.close()
        await resources.close()
