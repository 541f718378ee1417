"""auth's side of the deletion cascade: announce deletions durably, collect receipts, purge.

A deletion is announced right after its transaction commits; if that publish is lost
(Redis down, a crash), the worker's `announce_due` finds the account still unannounced and
publishes again. Services report in on deletion_receipts; auth records who has finished.
A deletion still missing a service's receipt a while after its announcement (the event
dropped, trimmed or lost with Redis) is announced again, as often as that delay, until
every service has reported; meanwhile it counts in zap_account_deletions_overdue.
After the grace period the tombstone itself is deleted, selected by state, so runs missed
while workers were down are caught up.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge
from redis.asyncio import Redis

from services.auth.deletion.repository import DeletionRepository
from zap.events.v1 import events_pb2
from zapcore.db import Database
from zapcore.events import (
    ACCOUNT_DELETIONS,
    DELETION_RECEIPTS,
    ConsumerConfig,
    EventConsumer,
    EventPublisher,
)
from zapcore.logging import get_logger
from zapcore.timestamps import to_timestamp
from zapcore.user_cards import UserCards

log = get_logger(__name__)

OVERDUE_DELETIONS = Gauge(
    "zap_account_deletions_overdue",
    "Account deletions made longer ago than the re-announce delay that a service has not"
    " yet reported done, sampled by auth's worker each minute.",
)


async def announce(db: Database, redis: Redis, limit: int = 500) -> int:
    """Publish AccountDeleted for every deletion never announced."""
    async with db.read_only() as session:
        pending = await DeletionRepository(session).unannounced(limit)
    return await _publish(db, redis, pending)


async def announce_due(
    db: Database, redis: Redis, services: Collection[str], after: timedelta, limit: int = 500
) -> int:
    """Publish AccountDeleted for every deletion never announced, and again for every one
    announced more than `after` ago that one of `services` has not reported done; count
    those made more than `after` ago and not done (the overdue gauge)."""
    now = datetime.now(UTC)
    async with db.read_only() as session:
        repository = DeletionRepository(session)
        overdue = await repository.overdue(services, now - after)
        pending = await repository.due(services, now - after, limit)
    OVERDUE_DELETIONS.set(overdue)
    if overdue:
        log.warning("auth.deletions_overdue", count=overdue, after_seconds=after.total_seconds())
    return await _publish(db, redis, pending)


async def _publish(db: Database, redis: Redis, pending: list[tuple[uuid.UUID, datetime]]) -> int:
    publisher = EventPublisher(redis, producer="auth")
    cards = UserCards(redis)
    for user_id, deleted_at in pending:
        # Readers stop showing the account's content before anyone hears of the deletion.
        await cards.invalidate([str(user_id)])
        await publisher.publish(
            ACCOUNT_DELETIONS,
            events_pb2.AccountDeleted(user_id=str(user_id), deleted_at=to_timestamp(deleted_at)),
        )
        async with db.unit_of_work() as session:
            await DeletionRepository(session).mark_announced(user_id, datetime.now(UTC))
    return len(pending)


def receipts_consumer(db: Database, redis: Redis) -> EventConsumer:
    async def record(env: events_pb2.Envelope) -> None:
        if env.WhichOneof("payload") != "deletion_completed":
            return
        receipt = env.deletion_completed
        async with db.unit_of_work() as session:
            await DeletionRepository(session).add_receipt(
                uuid.UUID(receipt.user_id), receipt.service
            )

    return EventConsumer(redis, ConsumerConfig(group="auth", topics=[DELETION_RECEIPTS]), record)


async def purge(db: Database, grace_days: int, batch: int = 1000) -> int:
    """Hard-delete every account soft-deleted more than `grace_days` ago."""
    cutoff = datetime.now(UTC) - timedelta(days=grace_days)
    total = 0
    while True:
        async with db.unit_of_work() as session:
            purged = await DeletionRepository(session).purge(cutoff, batch)
        total += purged
        if purged < batch:
            break
    log.info("auth.accounts_purged", count=total, grace_days=grace_days)
    return total
