"""SQL of the recipient's side: pages, replay, read state, counts and export."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notification.models import Notification, RecipientSequence


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self, recipient_id: uuid.UUID, before: int | None, limit: int, *, unread_only: bool
    ) -> Sequence[Notification]:
        """Newest (latest cursor) first, below `before` when given."""
        query = select(Notification).where(Notification.recipient_id == recipient_id)
        if before is not None:
            query = query.where(Notification.cursor < before)
        if unread_only:
            query = query.where(Notification.read_at.is_(None))
        result = await self._session.execute(
            query.order_by(Notification.cursor.desc()).limit(limit)
        )
        return result.scalars().all()

    async def after(
        self, recipient_id: uuid.UUID, cursor: int, limit: int
    ) -> Sequence[Notification]:
        """What changed after `cursor`, in the order it was committed."""
        result = await self._session.execute(
            select(Notification)
            .where(Notification.recipient_id == recipient_id, Notification.cursor > cursor)
            .order_by(Notification.cursor)
            .limit(limit)
        )
        return result.scalars().all()

    async def last_cursor(self, recipient_id: uuid.UUID) -> int:
        """The recipient's latest committed cursor (0 before their first notification)."""
        result = await self._session.execute(
            select(RecipientSequence.last_cursor).where(
                RecipientSequence.recipient_id == recipient_id
            )
        )
        return int(result.scalar_one_or_none() or 0)

    async def mark_read(
        self,
        recipient_id: uuid.UUID,
        now: datetime,
        *,
        ids: Sequence[uuid.UUID] | None = None,
        up_to: int | None = None,
    ) -> int:
        """Mark unread notifications read: these ids, or up to a cursor, or all; how many."""
        query = update(Notification).where(
            Notification.recipient_id == recipient_id, Notification.read_at.is_(None)
        )
        if ids is not None:
            query = query.where(Notification.id.in_(ids))
        if up_to is not None:
            query = query.where(Notification.cursor <= up_to)
        result = await self._session.execute(query.values(read_at=now).returning(Notification.id))
        return len(result.all())

    async def unread_count(self, recipient_id: uuid.UUID) -> int:
        result = await self._session.execute(
            select(func.count())
            .select_from(Notification)
            .where(Notification.recipient_id == recipient_id, Notification.read_at.is_(None))
        )
        return int(result.scalar_one())
