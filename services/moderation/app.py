"""moderation's gRPC server (used by `python -m` and by tests).

Tier 1 answers in the call; tier 2 runs in the worker (services/moderation/worker.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.moderation.forget import forget_user
from services.moderation.resources import ModerationResources
from services.moderation.servicer import ModerationServicer
from services.moderation.settings import ModerationSettings
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.deletion import deletion_consumer
from zapcore.events import consuming
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = moderation_pb2.DESCRIPTOR.services_by_name["ModerationService"].full_name


@asynccontextmanager
async def running(
    platform: PlatformSettings, settings: ModerationSettings
) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    resources = ModerationResources.open(platform, settings)
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    moderation_pb2_grpc.add_ModerationServiceServicer_to_server(
        ModerationServicer(resources), server.server
    )
    deletions = deletion_consumer(
        resources.redis, "moderation", lambda u: forget_user(resources, u)
    )
    # Decisions are made here and in the worker; this process relays what either left.
    stop_relay = asyncio.Event()
    relay = asyncio.create_task(resources.outbox.run(stop_relay))
    try:
        async with consuming(deletions):
            yield server
    finally:
        stop_relay.set()
        await relay
        await server.stop()
        await resources.close()
