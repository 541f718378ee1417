"""The WebSocket relay's own rules, with the socket and the upstream stream played by fakes:
a client that falls behind is closed with 1013 (over a real socket, with small buffers:
tests/e2e/test_notifications_socket.py), and a stream the service drops is resumed from the
last cursor without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import grpc
import orjson
import pytest
from redis.asyncio import Redis

from gateway.live import Close, Relay
from gateway.people import People
from gateway.settings import GatewaySettings
from zap.auth.v1 import auth_pb2
from zap.notification.v1 import notification_pb2
from zapcore.access_tokens import AccessClaims
from zapcore.user_cards import UserCards

USER = uuid.uuid4()
ACTOR = str(uuid.uuid4())


class FakeSocket:
    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.stuck = stuck
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(orjson.loads(text))

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()


class FakeCall:
    def __init__(self, items: AsyncIterator[notification_pb2.SubscribeResponse]) -> None:
        self._items = items
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[notification_pb2.SubscribeResponse]:
        return self._items

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeNotification:
    """Subscribe answers with the scripted streams, one per call, recording the requests."""

    def __init__(
        self, *streams: list[notification_pb2.SubscribeResponse | grpc.StatusCode]
    ) -> None:
        self._streams = list(streams)
        self.requests: list[notification_pb2.SubscribeRequest] = []

    def Subscribe(self, request: notification_pb2.SubscribeRequest, timeout: float) -> FakeCall:
        self.requests.append(request)
        script = self._streams.pop(0) if self._streams else []

        async def play() -> AsyncIterator[notification_pb2.SubscribeResponse]:
            for step in script:
                if isinstance(step, grpc.StatusCode):
                    raise grpc.aio.AioRpcError(step, grpc.aio.Metadata(), grpc.aio.Metadata())
                yield step
                await asyncio.sleep(0)
            await asyncio.Event().wait()  # then stays open, quiet

        return FakeCall(play())


class FakeAuth:
    def __init__(self, *, gone: frozenset[str] = frozenset()) -> None:
        self.asked: list[list[str]] = []
        self._gone = gone

    async def GetUsers(self, request: auth_pb2.GetUsersRequest) -> auth_pb2.GetUsersResponse:
        self.asked.append(list(request.user_ids))
        return auth_pb2.GetUsersResponse(
            users=[
                auth_pb2.User(id=i, username=f"u{i[:4]}")
                for i in request.user_ids
                if i not in self._gone
            ]
        )


class FakeDenyList:
    async def is_denied(self, token_id: str, user_id: uuid.UUID, issued_at: int) -> bool:
        return False


def heartbeat(cursor: str) -> notification_pb2.SubscribeResponse:
    return notification_pb2.SubscribeResponse(
        heartbeat=notification_pb2.Heartbeat(cursor=cursor, sent_at={"seconds": 1})
    )


def notification(n: int) -> notification_pb2.SubscribeResponse:
    return notification_pb2.SubscribeResponse(
        notification=notification_pb2.Notification(
            id=f"n{n}",
            kind=notification_pb2.NOTIFICATION_KIND_LIKE,
            actor_ids=[ACTOR],
            actor_count=1,
            cursor=f"c{n}",
            created_at={"seconds": 1},
            updated_at={"seconds": 1},
        )
    )


def relay(
    socket: FakeSocket,
    upstream: FakeNotification,
    cursor: str = "",
    *,
    auth: FakeAuth | None = None,
    redis: Redis | None = None,
    **settings: Any,
) -> Relay:
    auth = auth or FakeAuth()
    # Nothing listens there: every card lookup fails and auth is asked, as in an outage.
    redis = redis or Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    edge: Any = SimpleNamespace(
        settings=GatewaySettings(**settings),
        upstreams=SimpleNamespace(notification=upstream, auth=auth),
        deny_list=FakeDenyList(),
        redis=redis,
        people=People(UserCards(redis), auth),  # type: ignore[arg-type]
    )
    now = int(time.time())
    claims = AccessClaims(USER, "user", "jti", now, now + 600)
    return Relay(socket, edge, claims, "127.0.0.1", cursor)  # type: ignore[arg-type]


async def test_a_client_whose_queue_fills_is_closed_with_1013() -> None:
    upstream = FakeNotification([heartbeat("c0"), *(notification(n) for n in range(1, 20))])
    with pytest.raises(Close) as closed:
        await asyncio.wait_for(
            relay(FakeSocket(stuck=True), upstream, ws_send_queue_size=4).run(), 5
        )
    assert closed.value.code == 1013
    assert "too slow" in closed.value.reason


async def test_a_socket_that_accepts_nothing_is_closed_with_1013() -> None:
    upstream = FakeNotification([heartbeat("c0")])
    socket = FakeSocket(stuck=True)
    with pytest.raises(Close) as closed:
        await asyncio.wait_for(relay(socket, upstream, ws_send_timeout_seconds=0.2).run(), 5)
    assert closed.value.code == 1013


async def test_a_dropped_stream_is_resumed_from_the_last_cursor() -> None:
    upstream = FakeNotification(
        [heartbeat("c0"), notification(1), notification(2), grpc.StatusCode.UNAVAILABLE],
        [heartbeat("c2"), notification(3)],
    )
    socket = FakeSocket()
    running = asyncio.create_task(relay(socket, upstream, cursor="c0").run())
    try:
        while len(socket.sent) < 5:
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
    assert [r.cursor for r in upstream.requests] == ["c0", "c2"]
    assert [m["type"] for m in socket.sent] == [
        "ready",
        "notification",
        "notification",
        "heartbeat",
        "notification",
    ]
    assert [m["cursor"] for m in socket.sent] == ["c0", "c1", "c2", "c2", "c3"]
    assert socket.sent[1]["notification"]["actors"][0]["id"] == ACTOR


async def test_a_stream_that_cannot_start_is_not_retried() -> None:
    upstream = FakeNotification([grpc.StatusCode.UNAVAILABLE])
    with pytest.raises(Close) as closed:
        await asyncio.wait_for(relay(FakeSocket(), upstream).run(), 5)
    assert closed.value.code == 1013
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 4400),
        (grpc.StatusCode.UNAUTHENTICATED, 4401),
        (grpc.StatusCode.PERMISSION_DENIED, 4403),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 1013),
        (grpc.StatusCode.INTERNAL, 1011),
    ],
)
async def test_stream_failures_become_close_codes(status: grpc.StatusCode, code: int) -> None:
    upstream = FakeNotification([heartbeat("c0"), status])
    with pytest.raises(Close) as closed:
        await asyncio.wait_for(relay(FakeSocket(), upstream).run(), 5)
    assert closed.value.code == code


async def test_actors_come_from_the_cards_in_redis_and_auth_only_for_the_missing(
    redis_db: tuple[str, Redis],
) -> None:
    _, redis = redis_db
    cards = UserCards(redis)
    [generation] = await cards.generations([ACTOR])
    await cards.fill([ACTOR], [generation], {ACTOR: auth_pb2.User(id=ACTOR, username="carded")})
    stranger, deleted = str(uuid.uuid4()), str(uuid.uuid4())
    [gone_generation] = await cards.generations([deleted])
    await cards.fill([deleted], [gone_generation], {})  # a deleted account's "gone" mark
    both = notification_pb2.SubscribeResponse()
    both.CopyFrom(notification(2))
    both.notification.actor_ids[:] = [stranger, ACTOR]
    only_deleted = notification_pb2.SubscribeResponse()
    only_deleted.CopyFrom(notification(3))
    only_deleted.notification.actor_ids[:] = [deleted]
    auth = FakeAuth()
    upstream = FakeNotification(
        [heartbeat("c0"), notification(1), both, only_deleted, notification(4)]
    )
    socket = FakeSocket()
    running = asyncio.create_task(relay(socket, upstream, auth=auth, redis=redis).run())
    try:
        while len(socket.sent) < 4:
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
    shown = [m for m in socket.sent if m["type"] == "notification"]
    # The card, not auth's answer ("u" + id): auth was asked only for the uncarded stranger.
    assert [[a["username"] for a in m["notification"]["actors"]] for m in shown] == [
        ["carded"],
        [f"u{stranger[:4]}", "carded"],
        ["carded"],
    ]
    assert auth.asked == [[stranger]]
    # Everyone in notification 3 deleted their account: it says nothing and is not sent.
    assert [m["cursor"] for m in shown] == ["c1", "c2", "c4"]
