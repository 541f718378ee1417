"""The real entry points as separate processes: what `make up` starts, and how it stops."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.feed_helpers import follow, wait_in_home
from tests.e2e.notification_helpers import like, wait_listed
from tests.factories import PASSWORD, make_user, new_identity
from tests.support.processes import Processes, process_stack
from tests.support.stack import SERVICES


@pytest.fixture
async def processes(tmp_path: Path, object_store: str) -> AsyncIterator[Processes]:
    """Every entry point as its own process, on fresh databases and a private Redis."""
    async with process_stack(tmp_path, object_store) as (running, _, _):
        await running.wait_ready()
        yield running


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
