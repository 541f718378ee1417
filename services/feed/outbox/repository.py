"""SQL of the event outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.feed.models import EventOutbox


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def add(self, event_id: uuid.UUID, topic: str, envelope: bytes) -> None:
        self._s.add(EventOutbox(id=event_id, topic=topic, envelope=envelope))

    async def remove(self, event_ids: Sequence[uuid.UUID]) -> None:
        await self._s.execute(delete(EventOutbox).where(EventOutbox.id.in_(event_ids)))

    async def claim_stale(self, older_than: datetime, limit: int) -> list[EventOutbox]:
        """The oldest events left unpublished, locked (other relays skip them)."""
        rows = await self._s.execute(
            select(EventOutbox)
            .where(EventOutbox.created_at < older_than)
            .order_by(EventOutbox.created_at, EventOutbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars().all())
