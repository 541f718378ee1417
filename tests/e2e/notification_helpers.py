"""Shared steps of the notification tests: real WebSockets through the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests import factories
from tests.factories import TestUser
from tests.support.stack import Stack
from tests.support.waiting import eventually


def socket_url(base_url: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = base_url.replace("http://", "ws://", 1) + "/ws/notifications/"
    return f"{url}?{query}" if query else url


class LiveSocket:
    """A connected notification socket: read messages by type, remember the last cursor."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.cursor: str | None = None
        self.ready: dict[str, Any] | None = None

    async def message(self, timeout: float = 15.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        body: dict[str, Any] = json.loads(raw)
        if "cursor" in body:
            self.cursor = body["cursor"]
        if body["type"] == "ready":
            self.ready = body
        return body

    async def until_ready(self, timeout: float = 15.0) -> dict[str, Any]:
        while self.ready is None:
            message = await self.message(timeout)
            assert message["type"] in ("ready", "heartbeat"), message
        return self.ready

    async def notification(self, timeout: float = 15.0) -> dict[str, Any]:
        """The next notification (heartbeats and ready are skipped)."""
        while True:
            message = await self.message(timeout)
            if message["type"] == "notification":
                notification: dict[str, Any] = message["notification"]
                assert notification["cursor"] == message["cursor"]
                return notification

    async def notifications(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        return [await self.notification(timeout) for _ in range(count)]

    async def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """The notifications that arrive within `seconds` (expected: none)."""
        seen: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    seen.append(await self.notification(seconds + 1))
        return seen

    async def closed(self, timeout: float = 15.0) -> tuple[int, str]:
        """Wait for the server to close; (code, reason)."""
        received = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd
        assert received is not None, "closed without a close frame"
        return received.code, received.reason


class StalledSocket:
    """A notification socket on a bare TCP socket that reads nothing after "ready" until
    `read_to_close`, with a receive buffer of a few KiB so that the server backs up at once.
    (websockets' sans-I/O protocol makes the handshake and parses the frames.)"""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self._sock = sock
        self._protocol = protocol

    @classmethod
    async def open(cls, url: str, timeout: float = 15.0) -> StalledSocket:
        loop = asyncio.get_running_loop()
        uri = parse_uri(url)
        sock = socket.socket()
        # Before connecting: the buffer size decides the window the client announces.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.setblocking(False)
        protocol = ClientProtocol(uri)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (uri.host, uri.port))
                protocol.send_request(protocol.connect())
                await loop.sock_sendall(sock, b"".join(protocol.data_to_send()))
                ready = False
                while not ready:
                    data = await loop.sock_recv(sock, 4096)
                    assert data, "the server closed the connection"
                    protocol.receive_data(data)
                    for event in protocol.events_received():
                        if isinstance(event, Response):
                            assert event.status_code == 101, event
                        elif _text(event) is not None:
                            ready = json.loads(_text(event) or "{}").get("type") == "ready"
        except BaseException:
            sock.close()
            raise
        return cls(sock, protocol)

    async def read_to_close(self, timeout: float = 15.0) -> tuple[int, int]:
        """Read everything the server sent, up to its close frame: (messages, close code)."""
        loop = asyncio.get_running_loop()
        messages = 0
        async with asyncio.timeout(timeout):
            while self._protocol.close_rcvd is None:
                data = await loop.sock_recv(self._sock, 65536)
                if not data:
                    break
                self._protocol.receive_data(data)
                messages += sum(_text(e) is not None for e in self._protocol.events_received())
        closed = self._protocol.close_rcvd
        assert closed is not None, "closed without a close frame"
        return messages, closed.code

    def close(self) -> None:
        self._sock.close()


def _text(event: object) -> str | None:
    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
        return bytes(event.data).decode()
    return None


@contextlib.asynccontextmanager
async def live_socket(
    base_url: str,
    user: TestUser | None = None,
    *,
    cursor: str | None = None,
    token: str | None = None,
    subprotocol: bool = False,
    wait_ready: bool = True,
    **options: Any,
) -> AsyncIterator[LiveSocket]:
    """A socket for `user` (token in the query, or as the bearer subprotocol pair)."""
    access = token if token is not None else (user.access if user else None)
    params: dict[str, Any] = {"cursor": cursor}
    subprotocols = None
    if subprotocol:
        subprotocols = ["bearer", access]
    else:
        params["token"] = access
    async with connect(
        socket_url(base_url, **params),
        subprotocols=subprotocols,  # type: ignore[arg-type]
        proxy=None,
        compression=None,
        **options,
    ) as ws:
        socket = LiveSocket(ws)
        if wait_ready:
            await socket.until_ready()
        yield socket


async def like(client: httpx.AsyncClient, user: TestUser, post_id: str) -> None:
    answer = await client.post(f"/api/v1/posts/{post_id}/like/", headers=user.headers)
    assert answer.status_code == 200, answer.text


async def unlike(client: httpx.AsyncClient, user: TestUser, post_id: str) -> None:
    answer = await client.delete(f"/api/v1/posts/{post_id}/like/", headers=user.headers)
    assert answer.status_code == 200, answer.text


async def listed(client: httpx.AsyncClient, user: TestUser, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/notifications/", params=params, headers=user.headers)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def wait_listed(
    client: httpx.AsyncClient, user: TestUser, count: int, **params: Any
) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        return await listed(client, user, **params)

    return await eventually(probe, lambda items: len(items) >= count)


async def unread_count(client: httpx.AsyncClient, user: TestUser) -> int:
    answer = await client.get("/api/v1/notifications/unread-count/", headers=user.headers)
    assert answer.status_code == 200, answer.text
    count: int = answer.json()["unread_count"]
    return count


async def make_moderator(client: httpx.AsyncClient, stack: Stack) -> TestUser:
    """A new user with the moderator role."""
    return await factories.make_moderator(client, stack.settings["auth"].database_url)
