"""Removing everything notification holds about a deleted account (the deletion cascade)."""

from __future__ import annotations

import uuid

from services.notification.delivery.repository import DeliveryRepository
from services.notification.resources import NotificationResources
from zapcore.logging import get_logger

log = get_logger(__name__)


async def forget_user(resources: NotificationResources, user_id: uuid.UUID) -> None:
    """The user's own notifications, and the user as an actor in everyone else's (counts
    corrected, notifications left with nobody deleted). Idempotent: a redelivered deletion
    finds nothing more to do."""
    async with resources.db.unit_of_work() as session:
        store = DeliveryRepository(session)
        own = await store.forget_recipient(user_id)
        recipients = await store.recipients_of_actor(user_id)
    # One small transaction per recipient, under the recipient's lock like any delivery.
    for recipient_id in recipients:
        async with resources.db.unit_of_work() as session:
            store = DeliveryRepository(session)
            await store.lock_recipient(recipient_id)
            await store.take_actor_out(recipient_id, user_id)
    log.info("notification.user_forgotten", user_id=str(user_id), own=own, others=len(recipients))
