"""The real entry points as separate processes: what `make up` starts, and how it stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import PASSWORD, new_identity
from tests.support.stack import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def processes(
    databases: dict[str, str], redis_db: tuple[str, object], tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, asyncio.subprocess.Process]]]:
    auth_port, http_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "ZAP_ENVIRONMENT": "test",
        "ZAP_INTERNAL_SECRET": TEST_SECRET,
        "ZAP_REDIS_URL": redis_db[0],
        "ZAP_LOG_LEVEL": "INFO",
        "ZAP_AUTH_DATABASE_URL": databases["auth"],
        "ZAP_AUTH_GRPC_PORT": str(auth_port),
        "ZAP_AUTH_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ZAP_AUTH_SHUTDOWN_GRACE_SECONDS": "2",
        "ZAP_AUTH_TARGET": f"127.0.0.1:{auth_port}",
        "ZAP_GATEWAY_HTTP_PORT": str(http_port),
    }
    started = {}
    for name, module in (("auth", "services.auth"), ("gateway", "gateway")):
        started[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        yield url, started
    finally:
        for process in started.values():
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_entry_points_serve_the_seed_calls_and_stop_on_sigterm(processes) -> None:
    url, started = processes
    identity = new_identity()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
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

        # auth stops: the gateway answers fast with a clear 503, not a hang.
        started["auth"].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(started["auth"].wait(), 10) == 0
        login = await client.post(
            "/api/v1/auth/login/", json={"email": identity["email"], "password": PASSWORD}
        )
        assert login.status_code == 503
        assert login.headers["content-type"] == "application/problem+json"
        assert login.elapsed.total_seconds() < 2
        assert (await client.get("/readyz")).status_code == 503

    started["gateway"].send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down cleanly, so -SIGTERM is a clean exit
    # here; the log shows the lifespan ran to its end.
    assert await asyncio.wait_for(started["gateway"].wait(), 10) in (0, -signal.SIGTERM)
    gateway_log = (await started["gateway"].stdout.read()).decode()
    assert "Application shutdown complete" in gateway_log
    auth_log = (await started["auth"].stdout.read()).decode()
    assert '"event": "grpc.stopped"' in auth_log
