"""SQL for users."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.models import AccountState, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: User) -> User:
        self._session.add(user)
        await self._session.flush()
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        result = await self._session.execute(
            select(User).where(User.id == user_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def get_active(self, user_id: uuid.UUID) -> User | None:
        result = await self._session.execute(
            select(User).where(User.id == user_id, User.state == AccountState.ACTIVE)
        )
        return result.scalar_one_or_none()

    async def list_active(self, user_ids: Sequence[uuid.UUID]) -> Sequence[User]:
        if not user_ids:
            return []
        result = await self._session.execute(
            select(User).where(User.id.in_(user_ids), User.state == AccountState.ACTIVE)
        )
        return result.scalars().all()

    async def find_by_email(self, email: str) -> User | None:
        result = await self._session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        )
        return result.scalar_one_or_none()

    async def find_active_by_username(self, username: str) -> User | None:
        result = await self._session.execute(
            select(User).where(
                func.lower(User.username) == username.lower(),
                User.state == AccountState.ACTIVE,
            )
        )
        return result.scalar_one_or_none()

    async def list_active_by_usernames(self, usernames: Sequence[str]) -> Sequence[User]:
        if not usernames:
            return []
        result = await self._session.execute(
            select(User).where(
                func.lower(User.username).in_([u.lower() for u in usernames]),
                User.state == AccountState.ACTIVE,
            )
        )
        return result.scalars().all()

    async def email_taken(self, email: str) -> bool:
        result = await self._session.execute(
            select(func.count()).where(func.lower(User.email) == email.lower())
        )
        return bool(result.scalar_one())

    async def username_taken(self, username: str, *, excluding: uuid.UUID | None = None) -> bool:
        query = select(func.count()).where(func.lower(User.username) == username.lower())
        if excluding is not None:
            query = query.where(User.id != excluding)
        return bool((await self._session.execute(query)).scalar_one())

    async def set_password_hash(self, user_id: uuid.UUID, digest: str) -> None:
        await self._session.execute(
            update(User).where(User.id == user_id).values(password_hash=digest)
        )

    async def set_role(self, user_id: uuid.UUID, role: str) -> None:
        await self._session.execute(update(User).where(User.id == user_id).values(role=role))

    async def soft_delete(
        self, user_id: uuid.UUID, *, scrambled_email: str, scrambled_username: str, at: datetime
    ) -> None:
        await self._session.execute(
            update(User)
            .where(User.id == user_id)
            .values(
                state=AccountState.DELETED,
                email=scrambled_email,
                username=scrambled_username,
                display_name="",
                bio="",
                avatar_url="",
                password_hash="!",
                deleted_at=at,
            )
        )


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account as the hot reads read it: plain values, no ORM state."""

    id: uuid.UUID
    email: str
    username: str
    display_name: str
    bio: str
    avatar_url: str
    role: str
    state: str
    created_at: datetime


_ACTIVE_ACCOUNT = """
SELECT id, email, username, display_name, bio, avatar_url, role, state, created_at
FROM users
WHERE id = $1 AND state = $2
"""


class AccountReads:
    """The signed-in user's own account (GET /auth/me/, on every app start) on asyncpg
    itself: a tenth of the CPU of the same read through the ORM (Database.driver_reads)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._c = connection

    async def active(self, user_id: uuid.UUID) -> AccountRecord | None:
        row = await self._c.fetchrow(_ACTIVE_ACCOUNT, user_id, AccountState.ACTIVE.value)
        return None if row is None else AccountRecord(*row)
