"""NotificationService over real gRPC: identity required, Subscribe's stream and errors,
read state and the GDPR export."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from services.notification.delivery.rules import Intent, Kind
from services.notification.delivery.service import Delivery
from services.notification.resources import NotificationResources
from tests.support.stack import TEST_SECRET, Stack
from zap.notification.v1 import notification_pb2, notification_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner
from zapcore.ids import new_id
from zapcore.rpc_errors import failure_from_rpc_error

SIGNER = IdentitySigner(TEST_SECRET)
Stub = notification_pb2_grpc.NotificationServiceStub


def as_user(user_id: uuid.UUID) -> tuple[tuple[str, str], ...]:
    return ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service="gateway", user_id=user_id))),)


@pytest.fixture
async def notifications(
    stack: Stack,
) -> AsyncIterator[notification_pb2_grpc.NotificationServiceStub]:
    async with grpc.aio.insecure_channel(stack.targets["notification"]) as channel:
        yield notification_pb2_grpc.NotificationServiceStub(channel)


async def test_every_rpc_needs_an_identity(notifications: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await notifications.GetUnreadCount(notification_pb2.GetUnreadCountRequest(), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    call = notifications.Subscribe(notification_pb2.SubscribeRequest(), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_subscribe_replays_streams_and_refuses_forged_cursors(
    notifications: Stub, delivery: Delivery, resources: NotificationResources
) -> None:
    owner = uuid.uuid4()
    stored = await delivery.deliver(new_id(), Intent(owner, Kind.FOLLOW, actor_id=uuid.uuid4()))
    assert stored is not None
    call = notifications.Subscribe(
        notification_pb2.SubscribeRequest(cursor=resources.cursors.position(0)),
        metadata=as_user(owner),
        timeout=10,
    )
    try:
        first = await call.read()
        assert first.notification.id == str(stored.id)
        assert first.notification.kind == notification_pb2.NOTIFICATION_KIND_FOLLOW
        ready = await call.read()
        assert ready.heartbeat.cursor == first.notification.cursor
        live = await delivery.deliver(new_id(), Intent(owner, Kind.FOLLOW, actor_id=uuid.uuid4()))
        assert live is not None
        regrouped = await asyncio.wait_for(call.read(), 5)
        assert regrouped.notification.id == str(stored.id)
        assert regrouped.notification.actor_count == 2
    finally:
        call.cancel()

    forged = notifications.Subscribe(
        notification_pb2.SubscribeRequest(cursor="forged"), metadata=as_user(owner), timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await forged.read()
    failure = failure_from_rpc_error(refused.value)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid-cursor")


async def test_mark_read_count_and_export(notifications: Stub, delivery: Delivery) -> None:
    owner = uuid.uuid4()
    for _ in range(3):
        await delivery.deliver(
            new_id(), Intent(owner, Kind.LIKE, actor_id=uuid.uuid4(), post_id=uuid.uuid4())
        )
    me = as_user(owner)
    count = await notifications.GetUnreadCount(
        notification_pb2.GetUnreadCountRequest(), metadata=me
    )
    assert count.unread_count == 3
    marked = await notifications.MarkRead(notification_pb2.MarkReadRequest(), metadata=me)
    assert (marked.marked, marked.unread_count) == (3, 0)
    export = await notifications.ExportUserData(
        notification_pb2.ExportUserDataRequest(), metadata=me
    )
    assert len(export.notifications) == 3
    assert all(n.read for n in export.notifications)
    # Someone else's export holds none of it.
    other = await notifications.ExportUserData(
        notification_pb2.ExportUserDataRequest(), metadata=as_user(uuid.uuid4())
    )
    assert list(other.notifications) == []
