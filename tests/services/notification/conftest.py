"""notification's domain code against the test stack's database, graph and Redis."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from services.notification.delivery.service import Delivery
from services.notification.live.channel import Announcement, LivePublisher
from services.notification.resources import NotificationResources
from services.notification.settings import NotificationSettings
from tests.support.stack import Stack
from zap.notification.v1 import notification_pb2


class HeldPublisher:
    """Keeps live messages instead of publishing them; `release` publishes them for real."""

    def __init__(self, real: LivePublisher) -> None:
        self._real = real
        self.held: list[tuple[uuid.UUID, int, notification_pb2.Notification]] = []

    async def publish(
        self, recipient_id: uuid.UUID, cursor: int, notification: notification_pb2.Notification
    ) -> None:
        self.held.append((recipient_id, cursor, notification))

    async def publish_many(self, announcements: Sequence[Announcement]) -> None:
        for a in announcements:
            await self.publish(a.recipient_id, a.cursor, a.notification)

    async def release(self, order: list[int] | None = None) -> None:
        held, self.held = self.held, []
        for index in order if order is not None else range(len(held)):
            await self._real.publish(*held[index])


@pytest.fixture
async def resources(stack: Stack) -> AsyncIterator[NotificationResources]:
    settings = stack.settings["notification"]
    assert isinstance(settings, NotificationSettings)
    opened = NotificationResources.open(stack.platform, settings)
    try:
        yield opened
    finally:
        await opened.close()


def configured(resources: NotificationResources, **changes: Any) -> NotificationResources:
    """The same resources with some settings changed."""
    return dataclasses.replace(resources, settings=resources.settings.model_copy(update=changes))


@pytest.fixture
def delivery(resources: NotificationResources) -> Delivery:
    return Delivery(resources)


@pytest.fixture
def held(resources: NotificationResources) -> tuple[HeldPublisher, Delivery]:
    """A delivery whose live messages are held back until released."""
    publisher = HeldPublisher(resources.live)
    return publisher, Delivery(dataclasses.replace(resources, live=publisher))  # type: ignore[arg-type]
