"""Start real services and the real gateway in this process, on real sockets (port 0)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.auth.app import running as auth_running
from services.auth.settings import AuthSettings
from zapcore.settings import PlatformSettings

TEST_SECRET = "test-internal-secret-" + "x" * 40


@dataclass
class Stack:
    platform: PlatformSettings
    auth_settings: AuthSettings
    gateway_url: str
    auth_target: str


@contextlib.asynccontextmanager
async def serve_gateway(
    platform: PlatformSettings, settings: GatewaySettings
) -> AsyncIterator[str]:
    """Run the gateway with uvicorn on a free port; yields its base URL."""
    config = uvicorn.Config(
        create_app(platform, settings),
        host="127.0.0.1",
        port=0,
        log_config=None,
        lifespan="on",
        loop="none",
        http="httptools",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def gateway_settings(**overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "rate_limit_ip": "100000/minute",
        "rate_limit_user": "100000/minute",
        "rate_limit_login": "100000/minute",
        "rate_limit_register": "100000/minute",
        "jwks_min_refresh_seconds": 0.5,
        **overrides,
    }
    return GatewaySettings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def run_stack(
    database_urls: dict[str, str], redis_url: str, keys_dir: Path
) -> AsyncIterator[Stack]:
    """auth and the gateway, wired together over real gRPC and HTTP sockets."""
    auth_settings = AuthSettings(
        database_url=database_urls["auth"],
        grpc_port=0,
        signing_keys_dir=keys_dir,
        shutdown_grace_seconds=1,
    )
    base_platform = PlatformSettings(
        environment="test", internal_secret=TEST_SECRET, redis_url=redis_url
    )
    async with auth_running(base_platform, auth_settings) as auth_server:
        port = await auth_server.start()
        platform = base_platform.model_copy(update={"auth_target": f"127.0.0.1:{port}"})
        async with serve_gateway(platform, gateway_settings()) as url:
            yield Stack(
                platform=platform,
                auth_settings=auth_settings,
                gateway_url=url,
                auth_target=f"127.0.0.1:{port}",
            )
