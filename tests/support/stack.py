"""Start real services and the real gateway in this process, on real sockets (port 0)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from arq.worker import Worker

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.auth.settings import AuthSettings
from zapcore.settings import PlatformSettings, ServiceSettings

TEST_SECRET = "test-internal-secret-" + "x" * 40


SERVICES = ("auth", "graph", "feed", "media", "moderation", "notification")
# Followers from which an author's posts are pulled at read time in the test stack.
PULL_THRESHOLD = 5
# Services whose worker runs beside them in the test stack.
WORKERS = ("auth", "feed", "media", "moderation", "notification")


@dataclass
class Stack:
    platform: PlatformSettings
    settings: dict[str, ServiceSettings]
    targets: dict[str, str]
    gateway_url: str
    # The arq workers running in this process, by service.
    workers: dict[str, Worker] = field(default_factory=dict)

    def dsn(self, service: str) -> str:
        """The service database's URL for asyncpg (tests look at rows the API cannot show)."""
        return self.settings[service].database_url.replace("postgresql+asyncpg", "postgresql")

    @property
    def auth_settings(self) -> AuthSettings:
        settings = self.settings["auth"]
        assert isinstance(settings, AuthSettings)
        return settings

    @property
    def auth_target(self) -> str:
        return self.targets["auth"]


@contextlib.asynccontextmanager
async def run_worker(
    name: str, platform: PlatformSettings, settings: ServiceSettings
) -> AsyncIterator[Worker]:
    """A service's arq worker in this process, as `python -m services.<name>.worker` runs it."""
    build = getattr(importlib.import_module(f"services.{name}.worker"), f"{name}_worker")
    worker: Worker = build(platform, settings, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def free_port() -> int:
    """A port nobody listens on now; services need each other's address before they start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_settings(name: str, **values: object) -> ServiceSettings:
    settings_class = importlib.import_module(f"services.{name}.settings").Settings
    return settings_class(**values)  # type: ignore[no-any-return]


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
        # A socket whose handler does not end must not hold the test run: after this long
        # uvicorn cancels what is left (it waits for ever by default).
        timeout_graceful_shutdown=5,
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
    database_urls: dict[str, str], redis_url: str, keys_dir: Path, object_store_url: str
) -> AsyncIterator[Stack]:
    """Every service and the gateway, wired together over real gRPC and HTTP sockets."""
    ports = {name: free_port() for name in SERVICES}
    targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    platform = PlatformSettings.model_validate(
        {
            "environment": "test",
            "internal_secret": TEST_SECRET,
            "redis_url": redis_url,
            **{f"{name}_target": target for name, target in targets.items()},
        }
    )
    extra: dict[str, dict[str, object]] = {
        "auth": {"signing_keys_dir": keys_dir},
        # Low, so that tests can make an author who is pulled instead of pushed.
        "graph": {"fanout_threshold": PULL_THRESHOLD},
        "media": {"s3_endpoint_url": object_store_url},
        # Every service, worker and the tests share one event loop here, so a stall anywhere
        # (a traceback rendered, a burst of scoring) counts against a home read's half-second
        # database budget and gives a spurious 503; the budget's own tests set their own.
        "feed": {"home_db_budget_seconds": 2.0},
    }
    settings = {
        name: service_settings(
            name,
            database_url=database_urls[name],
            grpc_port=ports[name],
            shutdown_grace_seconds=1,
            **extra.get(name, {}),
        )
        for name in SERVICES
    }
    async with contextlib.AsyncExitStack() as running:
        for name in SERVICES:
            app = importlib.import_module(f"services.{name}.app")
            server = await running.enter_async_context(app.running(platform, settings[name]))
            await server.start()
        workers = {}
        for name in WORKERS:
            workers[name] = await running.enter_async_context(
                run_worker(name, platform, settings[name])
            )
        url = await running.enter_async_context(serve_gateway(platform, gateway_settings()))
        yield Stack(
            platform=platform,
            settings=settings,
            targets=targets,
            gateway_url=url,
            workers=workers,
        )
