"""media's gRPC server with everything it holds open (used by `python -m` and by tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.media.processing.images import configure_pillow
from services.media.resources import MediaResources
from services.media.servicer import MediaServicer
from services.media.settings import MediaSettings
from zap.media.v1 import media_pb2, media_pb2_grpc
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name


@asynccontextmanager
async def running(platform: PlatformSettings, settings: MediaSettings) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit.

    The bucket is created (private) before this yields, waiting for the store if need be.
    """
    configure_pillow(settings.max_pixels)
    resources = await MediaResources.open(platform, settings)
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    media_pb2_grpc.add_MediaServiceServicer_to_server(MediaServicer(resources), server.server)
    try:
        yield server
    finally:
        await server.stop()
        await resources.close()
