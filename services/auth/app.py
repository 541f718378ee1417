"""auth's gRPC server with everything it holds open (used by `python -m` and by tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.auth.deletion.cascade import receipts_consumer
from services.auth.resources import AuthResources
from services.auth.servicer import AuthServicer
from services.auth.settings import AuthSettings
from zap.auth.v1 import auth_pb2, auth_pb2_grpc
from zapcore.events import consuming
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


@asynccontextmanager
async def running(platform: PlatformSettings, settings: AuthSettings) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    resources = AuthResources.open(platform, settings)
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(resources), server.server)
    try:
        async with consuming(receipts_consumer(resources.db, resources.redis)):
            yield server
    finally:
        await server.stop()
        await resources.close()
