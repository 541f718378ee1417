"""graph's gRPC server with everything it holds open (used by `python -m` and by tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.graph.forget import forget_user
from services.graph.resources import GraphResources
from services.graph.servicer import GraphServicer
from services.graph.settings import GraphSettings
from zap.graph.v1 import graph_pb2, graph_pb2_grpc
from zapcore.deletion import deletion_consumer
from zapcore.events import consuming
from zapcore.grpc_server import GrpcServer
from zapcore.identity import IdentitySigner
from zapcore.settings import PlatformSettings

SERVICE_NAME = graph_pb2.DESCRIPTOR.services_by_name["GraphService"].full_name


@asynccontextmanager
async def running(platform: PlatformSettings, settings: GraphSettings) -> AsyncIterator[GrpcServer]:
    """A configured, not yet started server; resources are released on exit."""
    resources = GraphResources.open(platform, settings)
    server = GrpcServer(
        service_names=[SERVICE_NAME],
        signer=IdentitySigner(platform.internal_secret.get_secret_value()),
        host=settings.grpc_host,
        port=settings.grpc_port,
        default_deadline_seconds=settings.default_deadline_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        reflection_enabled=settings.reflection_enabled(platform),
    )
    graph_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(resources), server.server)
    deletions = deletion_consumer(
        resources.redis, "graph", lambda user_id: forget_user(resources, user_id)
    )
    # Graph has no job worker: the deletion cascade and the outbox relay run beside it.
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
