"""moderation's gRPC server (used by `python -m` and by tests).

Tier 1 (CheckText) is served; the other RPCs of protos/zap/moderation/v1/ answer
UNIMPLEMENTED until their implementation lands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.moderation.servicer import ModerationServicer
from services.moderation.settings import ModerationSettings
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.db import Database
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = moderation_pb2.DESCRIPTOR.services_by_name["ModerationService"].full_name


@asynccontextmanager
async def running(
    platform: PlatformSettings, settings: ModerationSettings
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
    moderation_pb2_grpc.add_ModerationServiceServicer_to_server(
        # The RPCs beyond tier 1 are not implemented yet (issue #4) and answer UNIMPLEMENTED.
        ModerationServicer(settings.rules()),  # type: ignore[abstract]
        server.server,
    )
    try:
        yield server
    finally:
        await server.stop()
        await db.dispose()
