"""SQL of delivery: idempotency, the recipient lock and cursor, groups and their actors."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import (
    Table,
    Uuid,
    any_,
    delete,
    func,
    literal,
    select,
    text,
    tuple_,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.models import (
    DeliveredEvent,
    Notification,
    NotificationActor,
    RecipientSequence,
)

_NOTIFICATIONS = cast(Table, Notification.__table__)
# Every column, written whole by a delivery.
_COLUMNS = [column.name for column in _NOTIFICATIONS.columns]


@dataclass(frozen=True, slots=True)
class ActorMark:
    """Record that `actor_id` appears in notification `notification_id` of the recipient,
    under `key`, as of `acted_at`."""

    recipient_id: uuid.UUID
    key: str
    actor_id: uuid.UUID
    notification_id: uuid.UUID
    acted_at: datetime


Claim = tuple[uuid.UUID, uuid.UUID]  # (event id, recipient id)
GroupRef = tuple[uuid.UUID, str]  # (recipient id, group key)
ActorRef = tuple[uuid.UUID, str, uuid.UUID]  # (recipient id, group key, actor id)


class DeliveryRepository:
    """A batch of deliveries is a handful of round trips whatever its size: claim, lock,
    the open groups, the actors' past, and one statement that writes everything.

    The batch statements take arrays (unnest), so their SQL is the same for any batch size:
    compiled once by SQLAlchemy and prepared once per connection by asyncpg, where a row
    list would make every batch size a new statement (compiling was a quarter of the
    worker's CPU). This is the worker's hot path, hence plain SQL.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, claims: Sequence[Claim], now: datetime) -> set[Claim]:
        """Record each event as delivered to its recipient; the claims that were new. A
        concurrent claim of the same pair waits until the first one's transaction ends."""
        if not claims:
            return set()
        # In one order everywhere, so two batches that overlap (a takeover) cannot deadlock.
        ordered = sorted(set(claims))
        result = await self._session.execute(
            _CLAIM,
            {
                "events": [e for e, _ in ordered],
                "recipients": [r for _, r in ordered],
                "now": now,
            },
        )
        return {(row[0], row[1]) for row in result.all()}

    async def lock_recipients(self, recipient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Lock the recipients' sequence rows until the transaction ends (in id order, so
        batches never deadlock on each other); each one's last cursor."""
        wanted = sorted(set(recipient_ids))
        if not wanted:
            return {}
        result = await self._session.execute(_LOCK, {"recipients": wanted})
        return {row[0]: int(row[1]) for row in result.all()}

    async def lock_recipient(self, recipient_id: uuid.UUID) -> int:
        """Lock the recipient's sequence row until the transaction ends; its last cursor."""
        return (await self.lock_recipients([recipient_id]))[recipient_id]

    async def open_groups(
        self, groups: Iterable[GroupRef], since: datetime
    ) -> dict[GroupRef, Notification]:
        """Each recipient's latest notification of each group key, if created since `since`
        (detached copies: changes are written back with `write`)."""
        wanted = list(dict.fromkeys(groups))
        if not wanted:
            return {}
        result = await self._session.execute(
            _OPEN_GROUPS,
            {
                "recipients": [r for r, _ in wanted],
                "keys": [k for _, k in wanted],
                "since": since,
            },
        )
        found = [Notification(**row._asdict()) for row in result.all()]
        return {(n.recipient_id, n.group_key): n for n in found}

    async def marks(self, refs: Iterable[ActorRef]) -> dict[ActorRef, ActorMark]:
        """Where and when these actors were last recorded (the notification they are counted
        in, when they acted): a few key lookups."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        result = await self._session.execute(
            _MARKS,
            {
                "recipients": [r for r, _, _ in wanted],
                "keys": [k for _, k, _ in wanted],
                "actors": [a for _, _, a in wanted],
            },
        )
        return {(row[0], row[1], row[2]): ActorMark(*row) for row in result.all()}

    async def write(
        self,
        new: Sequence[Notification],
        changed: Sequence[Notification],
        marks: Sequence[ActorMark],
        last_cursors: Mapping[uuid.UUID, int],
        now: datetime,
    ) -> None:
        """Insert the new notifications, update the changed ones (regrouped: unread again,
        updated `now`), record the actors and move the recipients' cursors: one statement
        (a notification appears in one list, once; an actor mark once)."""
        moved = sorted(last_cursors.items())
        await self._session.execute(
            _WRITE,
            {
                "now": now,
                "n_id": [n.id for n in new],
                "n_recipient": [n.recipient_id for n in new],
                "n_kind": [n.kind for n in new],
                "n_key": [n.group_key for n in new],
                "n_actors": [_uuid_array(n.actor_ids) for n in new],
                "n_count": [n.actor_count for n in new],
                "n_post": [n.post_id for n in new],
                "n_comment": [n.comment_id for n in new],
                "n_action": [n.action for n in new],
                "n_reason": [n.reason for n in new],
                "n_cursor": [n.cursor for n in new],
                "c_id": [n.id for n in changed],
                "c_actors": [_uuid_array(n.actor_ids) for n in changed],
                "c_count": [n.actor_count for n in changed],
                "c_comment": [n.comment_id for n in changed],
                "c_cursor": [n.cursor for n in changed],
                "m_recipient": [m.recipient_id for m in marks],
                "m_key": [m.key for m in marks],
                "m_actor": [m.actor_id for m in marks],
                "m_notification": [m.notification_id for m in marks],
                "m_at": [m.acted_at for m in marks],
                "s_recipient": [r for r, _ in moved],
                "s_last": [last for _, last in moved],
            },
        )

    # --- blocks -------------------------------------------------------------------------------

    async def take_actor_out(self, recipient_id: uuid.UUID, actor_id: uuid.UUID) -> int:
        """Remove the actor from the recipient's notifications (and delete those left with
        nobody); the number of notifications changed."""
        counted_in = select(NotificationActor.notification_id).where(
            NotificationActor.recipient_id == recipient_id, NotificationActor.actor_id == actor_id
        )
        shown_in = select(Notification.id).where(
            Notification.recipient_id == recipient_id,
            literal(actor_id, Uuid) == any_(Notification.actor_ids),
        )
        changed = await self._session.execute(
            update(Notification)
            .where(
                Notification.recipient_id == recipient_id,
                Notification.id.in_(union(counted_in, shown_in).scalar_subquery()),
            )
            .values(
                actor_ids=func.array_remove(Notification.actor_ids, actor_id),
                actor_count=func.greatest(Notification.actor_count - 1, 0),
            )
            .returning(Notification.id)
        )
        ids = list(changed.scalars())
        if ids:
            await self._session.execute(
                delete(Notification).where(
                    Notification.recipient_id == recipient_id,
                    Notification.id.in_(ids),
                    Notification.actor_count == 0,
                )
            )
        await self._session.execute(
            delete(NotificationActor).where(
                NotificationActor.actor_id == actor_id,
                NotificationActor.recipient_id == recipient_id,
            )
        )
        return len(ids)

    # --- account deletion ---------------------------------------------------------------------

    async def recipients_of_actor(self, actor_id: uuid.UUID) -> list[uuid.UUID]:
        """Everyone with a notification the actor appears in."""
        result = await self._session.execute(
            select(NotificationActor.recipient_id)
            .where(NotificationActor.actor_id == actor_id)
            .distinct()
        )
        return list(result.scalars())

    async def forget_recipient(self, recipient_id: uuid.UUID) -> int:
        """Every notification of the recipient and the bookkeeping behind them; how many."""
        result = await self._session.execute(
            delete(Notification)
            .where(Notification.recipient_id == recipient_id)
            .returning(Notification.id)
        )
        for table in (NotificationActor, DeliveredEvent, RecipientSequence):
            await self._session.execute(delete(table).where(table.recipient_id == recipient_id))
        return len(result.all())

    # --- retention ----------------------------------------------------------------------------

    async def prune_notifications(self, before: datetime, limit: int) -> int:
        doomed = (
            select(Notification.id).where(Notification.updated_at < before).limit(limit)
        ).scalar_subquery()
        result = await self._session.execute(
            delete(Notification).where(Notification.id.in_(doomed)).returning(Notification.id)
        )
        return len(result.all())

    async def prune_actors(self, before: datetime, limit: int) -> int:
        table = NotificationActor
        doomed = (
            select(table.recipient_id, table.group_key, table.actor_id)
            .where(table.acted_at < before)
            .limit(limit)
        )
        result = await self._session.execute(
            delete(table)
            .where(tuple_(table.recipient_id, table.group_key, table.actor_id).in_(doomed))
            .returning(table.actor_id)
        )
        return len(result.all())

    async def prune_events(self, before: datetime, limit: int) -> int:
        doomed = (
            select(DeliveredEvent.event_id).where(DeliveredEvent.delivered_at < before).limit(limit)
        ).scalar_subquery()
        result = await self._session.execute(
            delete(DeliveredEvent)
            .where(DeliveredEvent.event_id.in_(doomed))
            .returning(DeliveredEvent.event_id)
        )
        return len(result.all())


def _uuid_array(ids: Sequence[uuid.UUID]) -> str:
    """A uuid[] literal: unnest cannot take an array of arrays of different lengths."""
    return "{" + ",".join(str(i) for i in ids) + "}"


_CLAIM = text(
    """
    INSERT INTO delivered_events (event_id, recipient_id, delivered_at)
    SELECT t.event_id, t.recipient_id, CAST(:now AS timestamptz)
    FROM unnest(CAST(:events AS uuid[]), CAST(:recipients AS uuid[])) AS t(event_id, recipient_id)
    ORDER BY t.event_id, t.recipient_id
    ON CONFLICT (event_id, recipient_id) DO NOTHING
    RETURNING event_id, recipient_id
    """
)

# A no-op update still takes the row lock, and answers the current value.
_LOCK = text(
    """
    INSERT INTO recipient_sequences (recipient_id, last_cursor)
    SELECT t.recipient_id, 0 FROM unnest(CAST(:recipients AS uuid[])) AS t(recipient_id)
    ORDER BY t.recipient_id
    ON CONFLICT (recipient_id) DO UPDATE SET last_cursor = recipient_sequences.last_cursor
    RETURNING recipient_id, last_cursor
    """
)

_OPEN_GROUPS = text(
    """
    SELECT DISTINCT ON (n.recipient_id, n.group_key) n.*
    FROM notifications AS n
    JOIN unnest(CAST(:recipients AS uuid[]), CAST(:keys AS text[])) AS w(recipient_id, group_key)
      ON n.recipient_id = w.recipient_id AND n.group_key = w.group_key
    WHERE n.group_key <> '' AND n.created_at >= CAST(:since AS timestamptz)
    ORDER BY n.recipient_id, n.group_key, n.created_at DESC
    """
)

_MARKS = text(
    """
    SELECT a.recipient_id, a.group_key, a.actor_id, a.notification_id, a.acted_at
    FROM notification_actors AS a
    JOIN unnest(CAST(:recipients AS uuid[]), CAST(:keys AS text[]), CAST(:actors AS uuid[]))
      AS w(recipient_id, group_key, actor_id)
      ON a.recipient_id = w.recipient_id AND a.group_key = w.group_key
     AND a.actor_id = w.actor_id
    """
)

# Every column of notifications (services/notification/models.py) is named here.
_WRITE = text(
    """
    WITH created AS (
      INSERT INTO notifications (id, recipient_id, kind, group_key, actor_ids, actor_count,
        post_id, comment_id, action, reason, read_at, created_at, updated_at, cursor)
      SELECT t.id, t.recipient_id, t.kind, t.group_key, CAST(t.actor_ids AS uuid[]),
        t.actor_count, t.post_id, t.comment_id, t.action, t.reason, NULL,
        CAST(:now AS timestamptz), CAST(:now AS timestamptz), t.cursor
      FROM unnest(CAST(:n_id AS uuid[]), CAST(:n_recipient AS uuid[]), CAST(:n_kind AS text[]),
        CAST(:n_key AS text[]), CAST(:n_actors AS text[]), CAST(:n_count AS bigint[]),
        CAST(:n_post AS uuid[]), CAST(:n_comment AS uuid[]), CAST(:n_action AS text[]),
        CAST(:n_reason AS text[]), CAST(:n_cursor AS bigint[]))
        AS t(id, recipient_id, kind, group_key, actor_ids, actor_count, post_id, comment_id,
          action, reason, cursor)
    ), regrouped AS (
      UPDATE notifications AS n
      SET actor_ids = CAST(t.actor_ids AS uuid[]), actor_count = t.actor_count,
        comment_id = t.comment_id, read_at = NULL, updated_at = CAST(:now AS timestamptz),
        cursor = t.cursor
      FROM unnest(CAST(:c_id AS uuid[]), CAST(:c_actors AS text[]), CAST(:c_count AS bigint[]),
        CAST(:c_comment AS uuid[]), CAST(:c_cursor AS bigint[]))
        AS t(id, actor_ids, actor_count, comment_id, cursor)
      WHERE n.id = t.id
    ), marked AS (
      INSERT INTO notification_actors (recipient_id, group_key, actor_id, notification_id,
        acted_at)
      SELECT * FROM unnest(CAST(:m_recipient AS uuid[]), CAST(:m_key AS text[]),
        CAST(:m_actor AS uuid[]), CAST(:m_notification AS uuid[]),
        CAST(:m_at AS timestamptz[]))
      ON CONFLICT (recipient_id, group_key, actor_id) DO UPDATE
        SET notification_id = excluded.notification_id,
            acted_at = greatest(notification_actors.acted_at, excluded.acted_at)
    )
    UPDATE recipient_sequences AS s SET last_cursor = t.last_cursor
    FROM unnest(CAST(:s_recipient AS uuid[]), CAST(:s_last AS bigint[]))
      AS t(recipient_id, last_cursor)
    WHERE s.recipient_id = t.recipient_id
    """
)
