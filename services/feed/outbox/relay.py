"""Feed's events, published at least once (a transactional outbox).

`stage` writes the event in the unit of work of the change it announces; once that commits
the event is published and its row deleted. If publishing fails then (Redis down for that
instant, the process killed between the two), the row stays and `relay_stale`, run by the
worker every few seconds, publishes it with the same envelope id. Consumers deduplicate on
that id, so the rare repeat is harmless; a lost event (a missed notification, media never
removed with its post) is no longer possible.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from services.feed.outbox.repository import OutboxRepository
from services.feed.resources import FeedResources
from zap.events.v1 import events_pb2
from zapcore.db import after_commit
from zapcore.events import FEED, envelope
from zapcore.logging import get_logger

log = get_logger(__name__)

PRODUCER = "feed"


def stage(resources: FeedResources, session: AsyncSession, payload: Message) -> None:
    """Announce `payload` on the feed topic if, and once, the session's unit of work commits."""
    env = envelope(payload, producer=PRODUCER)
    event_id = uuid.UUID(env.id)
    OutboxRepository(session).add(event_id, FEED, env.SerializeToString())
    after_commit(session, lambda: _publish_now(resources, env))


async def _publish_now(resources: FeedResources, env: events_pb2.Envelope) -> None:
    try:
        await resources.events.publish_envelope(FEED, env)
    except RedisError as error:
        # The relay publishes it later; the change itself is committed.
        log.warning("feed.event_deferred", event_id=env.id, error=str(error))
        return
    # Off the caller's path: if this delete is lost, the relay publishes the event again
    # under the same id, which consumers already deduplicate.
    resources.in_background(_forget(resources, uuid.UUID(env.id)))


async def _forget(resources: FeedResources, event_id: uuid.UUID) -> None:
    async with resources.db.unit_of_work() as session:
        await OutboxRepository(session).remove([event_id])


async def relay_stale(resources: FeedResources, *, older_than_seconds: float, limit: int) -> int:
    """Publish the events whose publishing after commit did not happen; how many."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    async with resources.db.unit_of_work() as session:
        store = OutboxRepository(session)
        stale = await store.claim_stale(cutoff, limit)
        for row in stale:
            env = events_pb2.Envelope.FromString(row.envelope)
            await resources.events.publish_envelope(row.topic, env)
        await store.remove([row.id for row in stale])
    if stale:
        log.warning("feed.events_relayed", count=len(stale))
    return len(stale)
