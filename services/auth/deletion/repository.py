"""SQL for the deletion cascade: deletions to announce, receipts, overdue ones, the purge."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, distinct, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.models import AccountState, DeletionReceipt, User


class DeletionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def unannounced(self, limit: int) -> list[tuple[uuid.UUID, datetime]]:
        rows = await self._s.execute(
            select(User.id, User.deleted_at)
            .where(User.state == AccountState.DELETED, User.deletion_announced_at.is_(None))
            .order_by(User.deleted_at)
            .limit(limit)
        )
        return [(r.id, r.deleted_at) for r in rows.all() if r.deleted_at is not None]

    async def due(
        self, services: Collection[str], announced_before: datetime, limit: int
    ) -> list[tuple[uuid.UUID, datetime]]:
        """Deletions never announced, and those announced before `announced_before` that
        one of `services` has not reported done."""
        rows = await self._s.execute(
            select(User.id, User.deleted_at)
            .where(
                User.state == AccountState.DELETED,
                or_(
                    User.deletion_announced_at.is_(None),
                    and_(
                        User.deletion_announced_at < announced_before,
                        _missing_receipts(services),
                    ),
                ),
            )
            .order_by(User.deleted_at)
            .limit(limit)
        )
        return [(r.id, r.deleted_at) for r in rows.all() if r.deleted_at is not None]

    async def overdue(self, services: Collection[str], deleted_before: datetime) -> int:
        """Deletions made before `deleted_before` that one of `services` has not finished."""
        count = await self._s.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.state == AccountState.DELETED,
                User.deleted_at < deleted_before,
                _missing_receipts(services),
            )
        )
        return int(count or 0)

    async def mark_announced(self, user_id: uuid.UUID, at: datetime) -> None:
        await self._s.execute(
            update(User).where(User.id == user_id).values(deletion_announced_at=at)
        )

    async def add_receipt(self, user_id: uuid.UUID, service: str) -> None:
        exists = select(User.id).where(User.id == user_id, User.state == AccountState.DELETED)
        if (await self._s.execute(exists)).first() is None:
            return  # already purged (or never deleted): nothing to record
        await self._s.execute(
            insert(DeletionReceipt)
            .values(user_id=user_id, service=service)
            .on_conflict_do_nothing()
        )

    async def receipts(self, user_id: uuid.UUID) -> Sequence[DeletionReceipt]:
        rows = await self._s.execute(
            select(DeletionReceipt)
            .where(DeletionReceipt.user_id == user_id)
            .order_by(DeletionReceipt.completed_at)
        )
        return rows.scalars().all()

    async def purge(self, deleted_before: datetime, limit: int) -> int:
        """Hard-delete tombstones soft-deleted before the cutoff (receipts and tokens cascade)."""
        doomed = (
            select(User.id)
            .where(User.state == AccountState.DELETED, User.deleted_at < deleted_before)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._s.execute(delete(User).where(User.id.in_(doomed)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _missing_receipts(services: Collection[str]) -> ColumnElement[bool]:
    """The user (a row of users) lacks the receipt of one of `services`."""
    received = (
        select(func.count(distinct(DeletionReceipt.service)))
        .where(DeletionReceipt.user_id == User.id, DeletionReceipt.service.in_(list(services)))
        .scalar_subquery()
    )
    return received < len(set(services))
