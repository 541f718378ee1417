"""The one entry point shape every service uses: settings, logs, metrics, traces, serve, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import uvloop

from zapcore.grpc_server import GrpcServer
from zapcore.logging import configure_logging
from zapcore.metrics import serve_metrics
from zapcore.settings import PlatformSettings, ServiceSettings
from zapcore.telemetry import configure_telemetry

S = TypeVar("S", bound=ServiceSettings)


def run_service(
    name: str,
    settings_type: type[S],
    running: Callable[[PlatformSettings, S], AbstractAsyncContextManager[GrpcServer]],
) -> None:
    """Load settings (refusing unsafe production ones), then serve until SIGTERM/SIGINT."""
    platform = PlatformSettings()
    settings = settings_type()
    if platform.is_production:
        settings.check_production(platform)
    configure_logging(name, platform.log_level)
    serve_metrics(settings.metrics_port)
    configure_telemetry(name, platform)

    async def main() -> None:
        async with running(platform, settings) as server:
            await server.serve_until_signalled()

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())
