"""Retention: notifications nobody touched for a long time, and the bookkeeping behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notification.delivery.repository import DeliveryRepository
from services.notification.resources import NotificationResources
from zapcore.logging import get_logger

log = get_logger(__name__)

BATCH = 5000


async def prune(resources: NotificationResources) -> int:
    """Delete expired rows in small transactions (no long locks); how many."""
    settings = resources.settings
    now = datetime.now(UTC)
    kept_until = now - timedelta(days=settings.retention_days)
    dedup_until = now - timedelta(days=settings.dedup_days)
    total = 0
    for table in ("notifications", "actors", "events"):
        while True:
            async with resources.db.unit_of_work() as session:
                store = DeliveryRepository(session)
                if table == "notifications":
                    deleted = await store.prune_notifications(kept_until, BATCH)
                elif table == "actors":
                    deleted = await store.prune_actors(kept_until, BATCH)
                else:
                    deleted = await store.prune_events(dedup_until, BATCH)
            total += deleted
            if deleted < BATCH:
                break
    log.info("notification.pruned", rows=total)
    return total
