"""The real entry points as separate processes: what `make up` starts, and how it stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.feed_helpers import follow, wait_in_home
from tests.e2e.notification_helpers import like, wait_listed
from tests.factories import PASSWORD, make_user, new_identity
from tests.support.stack import SERVICES, TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("auth", "feed", "media", "notification")


@dataclass
class Processes:
    url: str
    running: dict[str, asyncio.subprocess.Process]
    logs: Path

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()


@pytest.fixture
async def processes(
    databases: dict[str, str], redis_db: tuple[str, object], tmp_path: Path, object_store: str
) -> AsyncIterator[Processes]:
    ports = {name: free_port() for name in SERVICES}
    http_port = free_port()
    env = {
        **os.environ,
        "ZAP_ENVIRONMENT": "test",
        "ZAP_INTERNAL_SECRET": TEST_SECRET,
        "ZAP_REDIS_URL": redis_db[0],
        "ZAP_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "ZAP_AUTH_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ZAP_GATEWAY_HTTP_PORT": str(http_port),
        "ZAP_MEDIA_S3_ENDPOINT_URL": object_store,
    }
    for name in SERVICES:
        prefix = f"ZAP_{name.upper()}_"
        env[prefix + "DATABASE_URL"] = databases[name]
        env[prefix + "GRPC_PORT"] = str(ports[name])
        env[prefix + "SHUTDOWN_GRACE_SECONDS"] = "2"
        env[f"ZAP_{name.upper()}_TARGET"] = f"127.0.0.1:{ports[name]}"
    modules = {name: f"services.{name}" for name in SERVICES}
    modules |= {f"{name}-worker": f"services.{name}.worker" for name in WORKERS}
    modules["gateway"] = "gateway"
    # auth writes the signing key on first start; start it before anyone who reads it.
    order = ["auth", *[name for name in modules if name != "auth"]]
    running: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name in order:
            with (tmp_path / f"{name}.log").open("wb") as log:
                running[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", modules[name], cwd=ROOT, env=env, stdout=log, stderr=log
                )
        url = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            # Eleven Python processes start on two cores: give them a minute.
            for _ in range(1200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        yield Processes(url, running, tmp_path)
    finally:
        for process in running.values():
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_entry_points_serve_the_seed_calls_and_stop_on_sigterm(
    processes: Processes,
) -> None:
    running = processes.running
    async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        identity = new_identity()
        created = await client.post(
            "/api/v1/auth/register/",
            json={**identity, "password": PASSWORD, "password_confirm": PASSWORD},
        )
        assert created.status_code == 201, created.text
        tokens = await client.post(
            "/api/v1/auth/login/", json={"email": identity["email"], "password": PASSWORD}
        )
        assert tokens.status_code == 200
        assert {"access", "refresh"} <= set(tokens.json())

        # A post reaches a follower's home feed through the feed worker process.
        author, reader = await make_user(client), await make_user(client)
        await follow(client, reader, author)
        posted = await client.post(
            "/api/v1/posts/",
            json={"content": "Hello, ZAP.", "media_urls": [], "hashtags": ["launch"]},
            headers=author.headers,
        )
        assert posted.status_code == 201, posted.text
        await wait_in_home(client, reader, posted.json()["id"])

        # The follow and a like become the author's notifications through the notification
        # worker process (graph's and feed's events, read by its deliver consumers).
        await like(client, reader, posted.json()["id"])
        liked, followed = await wait_listed(client, author, 2)
        assert (liked["kind"], liked["post_id"]) == ("like", posted.json()["id"])
        assert followed["kind"] == "follow"
        assert [actor["id"] for actor in liked["actors"]] == [reader.id]

        # auth stops: the gateway answers fast with a clear 503, not a hang.
        running["auth"].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(running["auth"].wait(), 10) == 0
        login = await client.post(
            "/api/v1/auth/login/", json={"email": identity["email"], "password": PASSWORD}
        )
        assert login.status_code == 503
        assert login.headers["content-type"] == "application/problem+json"
        assert login.elapsed.total_seconds() < 2
        assert (await client.get("/readyz")).status_code == 503

    for name in running:
        if running[name].returncode is None:
            running[name].send_signal(signal.SIGTERM)
    for name, process in running.items():
        # uvicorn re-raises the signal once it has shut down cleanly, so -SIGTERM is a clean
        # exit for the gateway; its log shows the lifespan ran to its end.
        assert await asyncio.wait_for(process.wait(), 15) in (0, -signal.SIGTERM), name
    assert "Application shutdown complete" in processes.log("gateway")
    for name in SERVICES:
        assert '"event": "grpc.stopped"' in processes.log(name), name
