"""No secret reaches a log line: the stack's processes, as `make up` runs them, write their own
logs; a WebSocket session with its token in the query (and logins, with passwords and tokens)
must leave none of them there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.notification_helpers import live_socket
from tests.factories import PASSWORD, make_user
from tests.support.processes import Processes, modules, process_stack


@pytest.fixture
async def processes(tmp_path: Path, object_store: str) -> AsyncIterator[Processes]:
    async with process_stack(tmp_path, object_store) as (running, _, _):
        await running.wait_ready()
        yield running


async def test_a_websocket_session_leaves_no_token_in_any_log(processes: Processes) -> None:
    async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
        user = await make_user(client)
        async with live_socket(processes.url, user) as socket:
            await socket.ws.send('{"type": "ping"}')
            await socket.message()
        # A bad token in the query is logged no more than a good one.
        async with live_socket(processes.url, token=user.access + "x", wait_ready=False) as bad:
            await bad.closed()
        refreshed = await client.post("/api/v1/auth/refresh/", json={"refresh": user.refresh})
        assert refreshed.status_code == 200, refreshed.text

    logs = {name: processes.log(name) for name in modules() if name in processes.running}
    # The gateway did log the sessions (uvicorn's line for each), only not their secrets.
    assert logs["gateway"].count("/ws/notifications/") >= 2
    secrets = {
        "access token": user.access,
        "its signature": user.access.rsplit(".", 1)[-1],
        "refresh token": user.refresh,
        "new access token": refreshed.json()["access"],
        "password": PASSWORD,
    }
    for name, text in logs.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} in {name}'s log"
