"""A transactional outbox: events that cannot be lost between a commit and Redis.

`stage` writes the event in the unit of work of the change it announces; once that commits
the event is published and its row deleted (off the caller's path). If publishing fails
then (Redis down for that instant, the process killed between the two), the row stays and
`relay_stale` (a worker cron, or `run` beside a service without a worker) publishes it
later under the same envelope id, which consumers deduplicate on. Each service keeps the
table in its own database (`outbox_table(Base.metadata)` in its models).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from google.protobuf.message import Message
from redis.exceptions import RedisError
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from zap.events.v1 import events_pb2
from zapcore.db import Database, after_commit
from zapcore.events import EventPublisher, envelope
from zapcore.logging import get_logger

log = get_logger(__name__)


_TABLE = "event_outbox"
# The same statements on asyncpg itself (the table's name is always _TABLE).
_INSERT_SQL = "INSERT INTO event_outbox (id, topic, envelope) VALUES ($1, $2, $3)"
_DELETE_SQL = "DELETE FROM event_outbox WHERE id = ANY($1::uuid[])"


def outbox_table(metadata: MetaData) -> Table:
    """The `event_outbox` table, in a service's own metadata (and so its migrations)."""
    return Table(
        _TABLE,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("topic", String(64), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Index("ix_event_outbox_created", "created_at"),
    )


@dataclass(frozen=True)
class Staged:
    """An event written in a transaction on the driver, to publish once that commits."""

    topic: str
    envelope: events_pb2.Envelope


class Outbox:
    def __init__(
        self, table: Table, db: Database, publisher: EventPublisher, *, producer: str
    ) -> None:
        self._table = table
        self._db = db
        self._publisher = publisher
        self._producer = producer
        self._background: set[asyncio.Task[None]] = set()
        self._forgetting: list[uuid.UUID] = []
        self._forgetter: asyncio.Task[None] | None = None

    async def stage(
        self, session: AsyncSession, topic: str, payload: Message
    ) -> events_pb2.Envelope:
        """Announce `payload` on `topic` if, and once, the session's unit of work commits."""
        env = envelope(payload, producer=self._producer)
        await session.execute(
            insert(self._table).values(
                id=uuid.UUID(env.id), topic=topic, envelope=env.SerializeToString()
            )
        )
        after_commit(session, lambda: self._publish_now(topic, env))
        return env

    async def stage_on(
        self, connection: asyncpg.Connection, topic: str, payload: Message
    ) -> Staged:
        """`stage` for a unit of work on asyncpg itself (Database.driver_unit_of_work): the
        row is written in its transaction, and the caller hands the answer to `publish`
        once that has committed (and never otherwise)."""
        env = envelope(payload, producer=self._producer)
        await connection.execute(_INSERT_SQL, uuid.UUID(env.id), topic, env.SerializeToString())
        return Staged(topic, env)

    async def publish(self, staged: Staged) -> None:
        """After the commit of the transaction `stage_on` wrote in."""
        await self._publish_now(staged.topic, staged.envelope)

    async def _publish_now(self, topic: str, env: events_pb2.Envelope) -> None:
        try:
            await self._publisher.publish_envelope(topic, env)
        except RedisError as error:
            # The change is committed and stands; the relay publishes the event later.
            log.warning("outbox.deferred", topic=topic, event_id=env.id, error=str(error))
            return
        self._forget_later(uuid.UUID(env.id))

    def _forget_later(self, event_id: uuid.UUID) -> None:
        # One DELETE in flight at a time, and the events published meanwhile wait for the
        # next: a burst of likes costs a few statements, not one each.
        self._forgetting.append(event_id)
        if self._forgetter is None or self._forgetter.done():
            self._forgetter = asyncio.create_task(self._forget_all())
            self._background.add(self._forgetter)
            self._forgetter.add_done_callback(self._background.discard)

    async def _forget_all(self) -> None:
        while self._forgetting:
            event_ids, self._forgetting = self._forgetting, []
            try:
                # On asyncpg itself: a tenth of the CPU of the same statement on the ORM.
                async with self._db.driver_reads() as connection:
                    await connection.execute(_DELETE_SQL, event_ids)
            except Exception as error:
                # The rows stay; the relay publishes them again under the same ids.
                log.warning("outbox.not_forgotten", count=len(event_ids), error=repr(error))

    async def relay_stale(self, *, older_than_seconds: float, limit: int = 1000) -> int:
        """Publish the events left unpublished after their commit, oldest first; how many.
        Rows are locked while they are published, so relays side by side skip each other's."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        table = self._table
        async with self._db.unit_of_work() as session:
            rows = (
                await session.execute(
                    select(table.c.id, table.c.topic, table.c.envelope)
                    .where(table.c.created_at < cutoff)
                    .order_by(table.c.created_at, table.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                env = events_pb2.Envelope.FromString(row.envelope)
                await self._publisher.publish_envelope(row.topic, env)
            if rows:
                await session.execute(delete(table).where(table.c.id.in_([r.id for r in rows])))
        if rows:
            log.warning("outbox.relayed", count=len(rows), producer=self._producer)
        return len(rows)

    async def run(self, stop: asyncio.Event, *, every_seconds: float = 5.0) -> None:
        """Relay until `stop` is set (services without a worker run this beside them)."""
        while not stop.is_set():
            try:
                await self.relay_stale(older_than_seconds=every_seconds)
            except Exception:
                log.exception("outbox.relay_failed", producer=self._producer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_seconds)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=5)
