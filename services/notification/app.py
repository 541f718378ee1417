"""notification's gRPC server (used by `python -m` and by tests).

The NotificationService contract is drafted in protos/zap/notification/v1/; until its implementation lands
the server answers health checks and reflection, and UNIMPLEMENTED for every RPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.notification.settings import NotificationSettings
from zap.notification.v1 import notification_pb2
from zapcore.db import Database
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name


@asynccontextmanager
async def running(
    platform: PlatformSettings, settings: NotificationSettings
) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection,
    )
    try:
        yield server
    finally:
        await server.stop()
        await db.dispose()
