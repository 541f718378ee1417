"""WS /ws/notifications/ admission and close codes: tokens (bad, expired, expiring, revoked),
cursors, origins, rate limits, what clients may send, and a client that stops reading.
(The relay's own rules, with fakes: tests/gateway/test_notification_relay.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.app import create_app
from services.auth.tokens.keys import KeyRing
from tests import factories
from tests.e2e.feed_helpers import post
from tests.e2e.notification_helpers import LiveSocket, StalledSocket, live_socket, socket_url
from tests.factories import PASSWORD, make_user
from tests.support.stack import Stack, gateway_settings, serve_gateway
from tests.support.waiting import eventually


def forged(stack: Stack, user: factories.TestUser, **claims: Any) -> str:
    """An access token signed with auth's real key, with these claims changed."""
    ring = KeyRing.load(stack.auth_settings.signing_keys_dir)
    now = int(time.time())
    body = {
        "iss": "zap-auth",
        "aud": "zap-api",
        "sub": user.id,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "typ": "access",
        "role": "user",
        **claims,
    }
    return jwt.encode(body, ring.signing_key, algorithm="ES256", headers={"kid": ring.active_kid})


@contextlib.asynccontextmanager
async def gateway(stack: Stack, **settings: Any) -> AsyncIterator[str]:
    """A second gateway over the same services, with these settings."""
    async with serve_gateway(stack.platform, gateway_settings(**settings)) as url:
        yield url


async def close_code(base_url: str, **params: str) -> tuple[int, str]:
    async with live_socket(base_url, wait_ready=False, **params) as socket:
        return await socket.closed()


# --- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="missing"),
        pytest.param("not-a-jwt", id="garbage"),
        pytest.param("a.b.c", id="three dots"),
    ],
)
async def test_bad_tokens_are_refused_with_4401(stack: Stack, token: str) -> None:
    code, reason = await close_code(stack.gateway_url, token=token)
    assert code == 4401
    assert reason


async def test_expired_and_refresh_tokens_are_refused_with_4401(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    expired = forged(stack, user, iat=int(time.time()) - 3600, exp=int(time.time()) - 1800)
    assert (await close_code(stack.gateway_url, token=expired))[0] == 4401
    assert (await close_code(stack.gateway_url, token=user.refresh))[0] == 4401
    # The same refusal when the token comes as the bearer subprotocol.
    async with live_socket(
        stack.gateway_url, token=expired, subprotocol=True, wait_ready=False
    ) as s:
        assert s.ws.subprotocol == "bearer"
        assert (await s.closed())[0] == 4401


async def test_the_socket_closes_when_its_token_expires(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    token = forged(stack, user, exp=int(time.time()) + 3)
    async with live_socket(stack.gateway_url, token=token) as socket:
        code, reason = await socket.closed(timeout=10)
    assert code == 4401
    assert "expired" in reason


async def test_logout_and_account_deletion_close_open_sockets(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    leaving, deleting = await make_user(client), await make_user(client)
    async with (
        gateway(stack, ws_token_check_seconds=0.2) as url,
        live_socket(url, leaving) as logged_out,
        live_socket(url, deleting) as deleted,
    ):
        answer = await client.post(
            "/api/v1/auth/logout/", json={"refresh": leaving.refresh}, headers=leaving.headers
        )
        assert answer.status_code == 204, answer.text
        answer = await client.request(
            "DELETE", "/api/v1/auth/me/", json={"password": PASSWORD}, headers=deleting.headers
        )
        assert answer.status_code == 202, answer.text
        for socket in (logged_out, deleted):
            code, reason = await socket.closed(timeout=10)
            assert code == 4401
            assert "revoked" in reason


async def test_reusing_a_refresh_token_closes_the_family_s_open_sockets(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    async with gateway(stack, ws_token_check_seconds=0.2) as url, live_socket(url, user) as live:
        rotated = await client.post("/api/v1/auth/refresh/", json={"refresh": user.refresh})
        assert rotated.status_code == 200, rotated.text
        reused = await client.post("/api/v1/auth/refresh/", json={"refresh": user.refresh})
        assert reused.status_code == 401, reused.text
        code, reason = await live.closed(timeout=10)
        assert code == 4401
        assert "revoked" in reason


# --- requests -------------------------------------------------------------------------------


async def test_an_invalid_cursor_is_refused_with_4400(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    code, _ = await close_code(stack.gateway_url, token=user.access, cursor="not-a-cursor")
    assert code == 4400
    code, _ = await close_code(stack.gateway_url, token=user.access, cursor="x" * 2000)
    assert code == 4400


async def test_a_foreign_origin_is_refused_with_4403(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    async with gateway(stack, cors_origins=["https://app.zap.example"]) as url:
        async with live_socket(url, user, origin="https://evil.example", wait_ready=False) as s:
            assert (await s.closed())[0] == 4403
        async with live_socket(url, user, origin="https://app.zap.example") as s:
            assert s.ready is not None


async def test_too_many_connections_are_refused_with_1008(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    async with (
        gateway(stack, rate_limit_user="2/minute") as url,
        live_socket(url, user),
        live_socket(url, user),
        live_socket(url, user, wait_ready=False) as third,
    ):
        code, reason = await third.closed()
    assert code == 1008
    assert "rate limited" in reason


async def test_a_user_may_hold_only_so_many_sockets_across_gateways(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user, other = await make_user(client), await make_user(client)
    async with (
        gateway(stack, ws_max_sockets_per_user=3) as first,
        gateway(stack, ws_max_sockets_per_user=3) as second,
        live_socket(first, user),
        live_socket(first, user),
        live_socket(second, user) as third,
    ):
        # The fourth, on either gateway, is refused with a code that says why.
        for url in (first, second):
            async with live_socket(url, user, wait_ready=False) as refused:
                code, reason = await refused.closed()
            assert code == 4429
            assert "too many open sockets (at most 3)" in reason
        # Another user is not affected.
        async with live_socket(second, other) as theirs:
            assert theirs.ready is not None
        # A socket closed gives its slot back at once.
        await third.ws.close()
        async with live_socket(first, user) as again:
            assert again.ready is not None


async def test_the_sockets_of_a_gateway_that_died_stop_counting(
    stack: Stack, client: httpx.AsyncClient, redis_db
) -> None:
    user = await make_user(client)
    _, redis = redis_db
    # What a gateway that died leaves: slots whose lease it stopped renewing (a second ago).
    key = f"zap:ws:sockets:{user.id}"
    await redis.zadd(key, {f"dead-{n}": time.time() - 1 for n in range(2)})
    async with gateway(stack, ws_max_sockets_per_user=2, ws_socket_lease_seconds=3) as url:
        async with live_socket(url, user), live_socket(url, user) as held:
            # Open sockets renew their lease: still held after several leases.
            await asyncio.sleep(7)
            async with live_socket(url, user, wait_ready=False) as refused:
                assert (await refused.closed())[0] == 4429
            assert held.ready is not None
        # Closed, they give their slots back (the gateway notices the close a moment later).
        await eventually(lambda: redis.zcard(key), lambda n: n == 0)


async def test_ping_is_answered_and_anything_else_closes_with_1008(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    async with live_socket(stack.gateway_url, user) as socket:
        await socket.ws.send('{"type": "ping"}')
        assert await _next_non_heartbeat(socket) == {"type": "pong"}
        await socket.ws.send('{"type": "subscribe", "to": "everything"}')
        assert (await socket.closed())[0] == 1008


async def test_plain_http_is_not_a_websocket(stack: Stack, client: httpx.AsyncClient) -> None:
    answer = await client.get("/ws/notifications/")
    assert answer.status_code in (400, 403, 404, 426)
    with pytest.raises(InvalidStatus):
        async with connect(socket_url(stack.gateway_url).replace("/ws/", "/ws/nope/"), proxy=None):
            pass


async def _next_non_heartbeat(socket: LiveSocket) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(socket.message(), 10)
        if message["type"] != "heartbeat":
            return message


# --- clients that fall behind ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway_with_small_send_buffers(stack: Stack, **settings: Any) -> AsyncIterator[str]:
    """A second gateway whose sockets keep at most a few KiB in the kernel's send buffer.

    Accepted sockets inherit the listener's SO_SNDBUF. Left to itself, Linux grows the send
    buffer of a loopback connection to megabytes, which a client that reads nothing would
    take minutes of notifications to fill; across a real network the client's window and the
    bytes in flight bound it. What the gateway does once writes back up is the same."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    config = uvicorn.Config(
        create_app(stack.platform, gateway_settings(**settings)),
        log_config=None,
        lifespan="on",
        loop="none",
        http="httptools",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def test_a_client_that_stops_reading_is_closed_with_1013_and_others_keep_up(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(10)]
    # Big profiles make big messages (each names up to ten actors): a few fill the buffers.
    for n, fan in enumerate(fans):
        answer = await client.patch(
            "/api/v1/auth/me/",
            json={"display_name": f"fan {n} " * 10, "avatar_url": "https://cdn.zap/" + "a" * 1500},
            headers=fan.headers,
        )
        assert answer.status_code == 200, answer.text
    written = await post(client, author, "talk to me")
    too_slow = {"code": "1013"}
    closed_before = REGISTRY.get_sample_value("zap_ws_closed_total", too_slow) or 0.0

    async def closed_too_slow() -> float:
        return REGISTRY.get_sample_value("zap_ws_closed_total", too_slow) or 0.0

    async with (
        gateway_with_small_send_buffers(
            stack, ws_send_queue_size=4, ws_send_timeout_seconds=5
        ) as url,
        live_socket(url, author) as reader,
    ):
        stalled = await StalledSocket.open(socket_url(url, token=author.access))

        async def stalled_closes() -> tuple[int, int]:
            # The close frame waits behind what the client has not read: read once it is due.
            await eventually(closed_too_slow, lambda closed: closed > closed_before, timeout=60)
            return await stalled.read_to_close()

        stalled_outcome = asyncio.create_task(stalled_closes())
        try:
            comments = 40
            for n in range(comments):
                fan = fans[n % len(fans)]
                answer = await client.post(
                    f"/api/v1/posts/{written['id']}/comments/",
                    json={"content": f"comment number {n} from {fan.username}"},
                    headers=fan.headers,
                )
                assert answer.status_code == 201, answer.text
                sent = time.monotonic()
                # The reader gets every comment promptly, before the next one is written.
                notification = await reader.notification(timeout=5)
                assert notification["comment_id"] == answer.json()["id"]
                assert time.monotonic() - sent < 2
            messages, code = await asyncio.wait_for(stalled_outcome, 30)
        finally:
            stalled_outcome.cancel()
            stalled.close()
    assert code == 1013
    assert 1 <= messages < comments  # ready, then what got through before it fell behind
