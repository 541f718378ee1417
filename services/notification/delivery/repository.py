"""SQL of delivery: idempotency, the recipient lock and cursor, groups and their actors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Table,
    Uuid,
    any_,
    delete,
    func,
    literal,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert
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
    """Record that `actor_id` appears in the notification, under `key`, as of `acted_at`."""

    key: str
    actor_id: uuid.UUID
    acted_at: datetime


class DeliveryRepository:
    """One delivery is four round trips: claim and lock, the actor's past, the open group,
    and one statement that writes the notification, the cursor and the actor together.
    (Core statements, not the ORM's unit of work: this is the worker's hot path.)"""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_and_lock(
        self, event_id: uuid.UUID, recipient_id: uuid.UUID, now: datetime
    ) -> int | None:
        """Record the event as delivered to the recipient and lock the recipient's sequence
        row until the transaction ends; the last cursor, or None when the event was already
        delivered. A concurrent delivery of the same event waits until the first commits."""
        claimed = (
            insert(DeliveredEvent)
            .values(event_id=event_id, recipient_id=recipient_id, delivered_at=now)
            .on_conflict_do_nothing(
                index_elements=[DeliveredEvent.event_id, DeliveredEvent.recipient_id]
            )
            .returning(DeliveredEvent.recipient_id)
            .cte("claimed")
        )
        lock = (
            insert(RecipientSequence)
            .from_select(
                ["recipient_id", "last_cursor"],
                select(claimed.c.recipient_id, literal(0, BigInteger)),
            )
            # A no-op update still takes the row lock, and answers the current value.
            .on_conflict_do_update(
                index_elements=[RecipientSequence.recipient_id],
                set_={"last_cursor": RecipientSequence.__table__.c.last_cursor},
            )
            .returning(RecipientSequence.last_cursor)
            .add_cte(claimed)
        )
        row = (await self._session.execute(lock)).first()
        return None if row is None else int(row[0])

    async def lock_recipient(self, recipient_id: uuid.UUID) -> int:
        """Lock the recipient's sequence row until the transaction ends; its last cursor."""
        statement = (
            insert(RecipientSequence)
            .values(recipient_id=recipient_id, last_cursor=0)
            .on_conflict_do_update(
                index_elements=[RecipientSequence.recipient_id],
                set_={"last_cursor": RecipientSequence.__table__.c.last_cursor},
            )
            .returning(RecipientSequence.last_cursor)
        )
        return int((await self._session.execute(statement)).scalar_one())

    async def counted_in(
        self, recipient_id: uuid.UUID, key: str, actor_id: uuid.UUID
    ) -> uuid.UUID | None:
        """The notification the actor is already counted in under this key, if any."""
        result = await self._session.execute(
            select(NotificationActor.notification_id).where(
                NotificationActor.recipient_id == recipient_id,
                NotificationActor.group_key == key,
                NotificationActor.actor_id == actor_id,
            )
        )
        return result.scalar_one_or_none()

    async def acted_at(
        self, recipient_id: uuid.UUID, group_key: str, actor_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, datetime]:
        """When each of these actors last acted in the group (a few key lookups)."""
        if not actor_ids:
            return {}
        result = await self._session.execute(
            select(NotificationActor.actor_id, NotificationActor.acted_at).where(
                NotificationActor.recipient_id == recipient_id,
                NotificationActor.group_key == group_key,
                NotificationActor.actor_id.in_(actor_ids),
            )
        )
        return {row[0]: row[1] for row in result.all()}

    async def open_group(
        self, recipient_id: uuid.UUID, group_key: str, since: datetime
    ) -> Notification | None:
        """The recipient's latest notification of this group key, if created since `since`
        (a detached copy: changes are written back with `write`)."""
        table = _NOTIFICATIONS
        result = await self._session.execute(
            select(table)
            .where(
                table.c.recipient_id == recipient_id,
                table.c.group_key == group_key,
                table.c.group_key != "",
                table.c.created_at >= since,
            )
            .order_by(table.c.created_at.desc())
            .limit(1)
        )
        row = result.first()
        return None if row is None else Notification(**row._asdict())

    async def write(
        self, notification: Notification, *, new: bool, actor: ActorMark | None
    ) -> None:
        """Insert or update the notification, move the recipient's cursor to it and record
        its actor: one statement."""
        values = {name: getattr(notification, name) for name in _COLUMNS}
        recipient_id = notification.recipient_id
        parts: list[Any] = [
            update(RecipientSequence)
            .where(RecipientSequence.recipient_id == recipient_id)
            .values(last_cursor=notification.cursor)
            .cte("moved")
        ]
        if actor is not None:
            mark = insert(NotificationActor).values(
                recipient_id=recipient_id,
                group_key=actor.key,
                actor_id=actor.actor_id,
                notification_id=notification.id,
                acted_at=actor.acted_at,
            )
            parts.append(
                mark.on_conflict_do_update(
                    index_elements=[
                        NotificationActor.recipient_id,
                        NotificationActor.group_key,
                        NotificationActor.actor_id,
                    ],
                    set_={
                        "notification_id": mark.excluded.notification_id,
                        "acted_at": func.greatest(
                            NotificationActor.__table__.c.acted_at, mark.excluded.acted_at
                        ),
                    },
                ).cte("marked")
            )
        table = _NOTIFICATIONS
        statement: Any
        if new:
            statement = insert(table).values(**values)
        else:
            statement = update(table).where(table.c.id == notification.id).values(**values)
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
