"""The account-deletion cascade, the same in every service.

auth publishes `AccountDeleted` on the account_deletions topic. Each service's worker reads
it through its own consumer group, removes what it owns about the user (`forget`), and then
reports a `DeletionCompleted` receipt on deletion_receipts. The entry is acknowledged only
after both, so a service that was down processes the deletion when it returns, and a
re-delivery runs an idempotent `forget` again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from zap.events.v1 import events_pb2
from zapcore.events import (
    ACCOUNT_DELETIONS,
    DELETION_RECEIPTS,
    ConsumerConfig,
    EventConsumer,
    EventPublisher,
)
from zapcore.logging import get_logger

log = get_logger(__name__)

Forget = Callable[[uuid.UUID], Awaitable[None]]


def deletion_consumer(redis: Redis, service: str, forget: Forget, **config: Any) -> EventConsumer:
    """`config`: ConsumerConfig fields other than the defaults below (tests' timings)."""
    publisher = EventPublisher(redis, producer=service)

    async def handle(env: events_pb2.Envelope) -> None:
        if env.WhichOneof("payload") != "account_deleted":
            return
        try:
            user_id = uuid.UUID(env.account_deleted.user_id)
        except ValueError:
            # Deletions are retried until done (zapcore.events): one that names no account
            # can never be, so it is refused once rather than retried for ever.
            log.error("deletion.invalid_user_id", service=service, event_id=env.id)
            return
        await forget(user_id)
        await publisher.publish(
            DELETION_RECEIPTS,
            events_pb2.DeletionCompleted(user_id=str(user_id), service=service),
        )
        log.info("deletion.completed", service=service, user_id=str(user_id))

    return EventConsumer(
        redis,
        ConsumerConfig(
            **{
                "group": service,
                "topics": [ACCOUNT_DELETIONS],
                "batch_size": 20,
                # A failure (a database, the object store down) is retried after 1 s, 2 s,
                # 4 s ... then every minute until it succeeds: deletions are never dropped.
                "retry_after_ms": 1000,
                **config,
            }
        ),
        handle,
    )
