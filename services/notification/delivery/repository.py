"""SQL of delivery: idempotency, the recipient lock and cursor, groups and their actors."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    Uuid,
    any_,
    column,
    delete,
    func,
    literal,
    select,
    tuple_,
    union,
    update,
    values,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import distinct_on, insert
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
    (Core statements, not the ORM's unit of work: this is the worker's hot path.)"""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, claims: Sequence[Claim], now: datetime) -> set[Claim]:
        """Record each event as delivered to its recipient; the claims that were new. A
        concurrent claim of the same pair waits until the first one's transaction ends."""
        if not claims:
            return set()
        rows = [
            {"event_id": event_id, "recipient_id": recipient_id, "delivered_at": now}
            # In one order everywhere, so two batches that overlap (a takeover) cannot deadlock.
            for event_id, recipient_id in sorted(set(claims))
        ]
        result = await self._session.execute(
            insert(DeliveredEvent)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=[DeliveredEvent.event_id, DeliveredEvent.recipient_id]
            )
            .returning(DeliveredEvent.event_id, DeliveredEvent.recipient_id)
        )
        return {(row[0], row[1]) for row in result.all()}

    async def lock_recipients(self, recipient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Lock the recipients' sequence rows until the transaction ends (in id order, so
        batches never deadlock on each other); each one's last cursor."""
        wanted = sorted(set(recipient_ids))
        if not wanted:
            return {}
        statement = (
            insert(RecipientSequence)
            .values([{"recipient_id": r, "last_cursor": 0} for r in wanted])
            # A no-op update still takes the row lock, and answers the current value.
            .on_conflict_do_update(
                index_elements=[RecipientSequence.recipient_id],
                set_={"last_cursor": RecipientSequence.__table__.c.last_cursor},
            )
            .returning(RecipientSequence.recipient_id, RecipientSequence.last_cursor)
        )
        result = await self._session.execute(statement)
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
        table = _NOTIFICATIONS
        result = await self._session.execute(
            select(table)
            .where(
                tuple_(table.c.recipient_id, table.c.group_key).in_(wanted),
                table.c.group_key != "",
                table.c.created_at >= since,
            )
            .ext(distinct_on(table.c.recipient_id, table.c.group_key))
            .order_by(table.c.recipient_id, table.c.group_key, table.c.created_at.desc())
        )
        found = [Notification(**row._asdict()) for row in result.all()]
        return {(n.recipient_id, n.group_key): n for n in found}

    async def marks(self, refs: Iterable[ActorRef]) -> dict[ActorRef, ActorMark]:
        """Where and when these actors were last recorded (the notification they are counted
        in, when they acted): a few key lookups."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        table = NotificationActor
        result = await self._session.execute(
            select(
                table.recipient_id,
                table.group_key,
                table.actor_id,
                table.notification_id,
                table.acted_at,
            ).where(tuple_(table.recipient_id, table.group_key, table.actor_id).in_(wanted))
        )
        return {(row[0], row[1], row[2]): ActorMark(*row) for row in result.all()}

    async def write(
        self,
        new: Sequence[Notification],
        changed: Sequence[Notification],
        marks: Sequence[ActorMark],
        last_cursors: Mapping[uuid.UUID, int],
    ) -> None:
        """Insert the new notifications, update the changed ones, record the actors and move
        the recipients' cursors: one statement (a notification appears in one list once)."""
        parts: list[Any] = []
        if new:
            rows = [{name: getattr(n, name) for name in _COLUMNS} for n in new]
            parts.append(insert(_NOTIFICATIONS).values(rows).cte("created"))
        if changed:
            parts.append(_update_notifications(changed).cte("regrouped"))
        if marks:
            parts.append(_record_actors(marks).cte("marked"))
        moved = values(
            column("recipient_id", Uuid), column("last_cursor", BigInteger), name="moved"
        ).data(sorted(last_cursors.items()))
        sequences = cast(Table, RecipientSequence.__table__)
        statement = (
            update(sequences)
            .where(sequences.c.recipient_id == moved.c.recipient_id)
            .values(last_cursor=moved.c.last_cursor)
        )
        await self._session.execute(statement.add_cte(*parts))

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


# What a regrouping changes; the rest of a notification never does.
_REGROUPED = ("actor_ids", "actor_count", "comment_id", "read_at", "updated_at", "cursor")


def _update_notifications(changed: Sequence[Notification]) -> Any:
    table = _NOTIFICATIONS
    data = values(
        column("id", Uuid),
        *(column(name, table.c[name].type) for name in _REGROUPED),
        name="changes",
    ).data([(n.id, *(getattr(n, name) for name in _REGROUPED)) for n in changed])
    return (
        update(table)
        .where(table.c.id == data.c.id)
        # Typed: a column whose values are all NULL would otherwise be text.
        .values({name: sql_cast(data.c[name], table.c[name].type) for name in _REGROUPED})
    )


def _record_actors(marks: Sequence[ActorMark]) -> Any:
    statement = insert(NotificationActor).values(
        [
            {
                "recipient_id": m.recipient_id,
                "group_key": m.key,
                "actor_id": m.actor_id,
                "notification_id": m.notification_id,
                "acted_at": m.acted_at,
            }
            for m in marks
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=[
            NotificationActor.recipient_id,
            NotificationActor.group_key,
            NotificationActor.actor_id,
        ],
        set_={
            "notification_id": statement.excluded.notification_id,
            "acted_at": func.greatest(
                NotificationActor.__table__.c.acted_at, statement.excluded.acted_at
            ),
        },
    )
