"""The stack as real processes (what `make up` runs), for tests that kill and restart parts
of it: each process can be stopped, killed and started again on the same ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from tests.support.resources import TestDatabases
from tests.support.stack import SERVICES, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("auth", "feed", "media", "moderation", "notification")


def modules() -> dict[str, str]:
    """Process name -> the module `python -m` runs, in a start order that works."""
    names = {name: f"services.{name}" for name in SERVICES}
    names |= {f"{name}-worker": f"services.{name}.worker" for name in WORKERS}
    names["gateway"] = "gateway"
    return names


@dataclass
class RedisServer:
    """A private redis-server with its AOF in `folder`, so a restart keeps the data."""

    port: int
    folder: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        with (self.folder / "redis.log").open("ab") as log:
            self.process = await self._spawn(binary, log)
        await wait_for_port(self.port)

    async def _spawn(self, binary: str, log: BinaryIO) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--appendonly", "yes",
            "--save", "",
            stdout=log,
            stderr=log,
        )  # fmt: skip

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 15)


@dataclass
class Processes:
    url: str
    env: dict[str, str]
    logs: Path
    running: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    async def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                modules()[name],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
            )

    async def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine or container dies."""
        process = self.running[name]
        process.kill()
        await process.wait()

    async def stop_all(self) -> None:
        for process in self.running.values():
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def wait_ready(self, seconds: float = 120) -> None:
        last = "no answer"
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            deadline = asyncio.get_running_loop().time() + seconds
            while asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    answer = await client.get("/readyz")
                    if answer.status_code == 200:
                        return
                    last = answer.text
                await asyncio.sleep(0.1)
        exited = {
            name: self.log(name)[-2000:]
            for name, process in self.running.items()
            if process.returncode is not None
        }
        raise AssertionError(f"the stack did not become ready: {last}; exited: {exited}")


async def wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return


@contextlib.asynccontextmanager
async def process_stack(
    folder: Path,
    object_store: str,
    *,
    env: Mapping[str, str] = {},
    only: tuple[str, ...] | None = None,
) -> AsyncIterator[tuple[Processes, RedisServer, dict[str, str]]]:
    """Fresh databases, a private Redis and every process (or `only` these), started."""
    databases = TestDatabases(SERVICES)
    await databases.create()
    redis = RedisServer(free_port(), folder)
    await redis.start()
    ports = {name: free_port() for name in SERVICES}
    http_port = free_port()
    values = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZAP_")},
        "ZAP_ENVIRONMENT": "test",
        "ZAP_INTERNAL_SECRET": TEST_SECRET,
        "ZAP_REDIS_URL": redis.url,
        "ZAP_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "ZAP_AUTH_SIGNING_KEYS_DIR": str(folder / "keys"),
        "ZAP_GATEWAY_HTTP_PORT": str(http_port),
        "ZAP_GATEWAY_RATE_LIMIT_IP": "100000/minute",
        "ZAP_GATEWAY_RATE_LIMIT_USER": "100000/minute",
        "ZAP_GATEWAY_RATE_LIMIT_LOGIN": "100000/minute",
        "ZAP_GATEWAY_RATE_LIMIT_REGISTER": "100000/minute",
        "ZAP_MEDIA_S3_ENDPOINT_URL": object_store,
    }
    for name in SERVICES:
        prefix = f"ZAP_{name.upper()}_"
        values[prefix + "DATABASE_URL"] = databases.urls[name]
        values[prefix + "GRPC_PORT"] = str(ports[name])
        values[prefix + "SHUTDOWN_GRACE_SECONDS"] = "2"
        values[f"ZAP_{name.upper()}_TARGET"] = f"127.0.0.1:{ports[name]}"
    values |= env
    processes = Processes(f"http://127.0.0.1:{http_port}", values, folder)
    try:
        # auth writes the signing key on first start; start it before anyone who reads it.
        for name in modules():
            if only is None or name in only:
                await processes.start(name)
                if name == "auth":
                    await wait_for_port(ports["auth"], 60)
        yield processes, redis, databases.urls
    finally:
        await processes.stop_all()
        await redis.stop()
        await databases.drop()
