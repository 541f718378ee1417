"""SQL for refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.models import RefreshToken


@dataclass(frozen=True, slots=True)
class TokenOwner:
    user_id: uuid.UUID
    family_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class FamilySummary:
    family_id: uuid.UUID
    created_at: datetime
    last_used_at: datetime


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        token_id: uuid.UUID,
        user_id: uuid.UUID,
        family_id: uuid.UUID,
        expires_at: datetime,
    ) -> None:
        self._session.add(
            RefreshToken(id=token_id, user_id=user_id, family_id=family_id, expires_at=expires_at)
        )
        await self._session.flush()

    async def hold(self, token_id: uuid.UUID) -> None:
        """Until this transaction ends, nobody else presents this refresh token: concurrent
        replays are judged one after the other (the first rotates, the others find it spent
        and revoke the family) instead of deadlocking on the family's rows."""
        await self._session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(str(token_id), 0)))
        )

    async def spend(self, token_id: uuid.UUID, now: datetime) -> TokenOwner | None:
        """Mark a live token used, atomically; None when it is unknown, spent, revoked or expired."""
        result = await self._session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
        row = result.one_or_none()
        return TokenOwner(row.user_id, row.family_id) if row else None

    async def find(self, token_id: uuid.UUID) -> TokenOwner | None:
        """Owner and family of a token, whatever its state."""
        result = await self._session.execute(
            select(RefreshToken.user_id, RefreshToken.family_id).where(RefreshToken.id == token_id)
        )
        row = result.one_or_none()
        return TokenOwner(row.user_id, row.family_id) if row else None

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_user(self, user_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def delete_user(self, user_id: uuid.UUID) -> None:
        await self._session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))

    async def delete_expired(self, before: datetime, batch: int = 10_000) -> int:
        """Delete up to `batch` tokens that expired before `before`; returns how many."""
        doomed = (
            select(RefreshToken.id).where(RefreshToken.expires_at < before).limit(batch)
        ).scalar_subquery()
        result = await self._session.execute(
            delete(RefreshToken).where(RefreshToken.id.in_(doomed))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def live_families(self, user_id: uuid.UUID, now: datetime) -> Sequence[FamilySummary]:
        result = await self._session.execute(
            select(
                RefreshToken.family_id,
                func.min(RefreshToken.created_at).label("created_at"),
                func.max(RefreshToken.created_at).label("last_used_at"),
            )
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .group_by(RefreshToken.family_id)
        )
        return [FamilySummary(r.family_id, r.created_at, r.last_used_at) for r in result]
