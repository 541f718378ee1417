"""PostgreSQL access: one async engine per service database, one unit of work per call.

Repositories and services receive an `AsyncSession` and never commit; the edge (a
servicer method or a job) wraps its work in `Database.unit_of_work()`, which commits on
success, rolls back on error, and only then runs the callbacks registered with
`after_commit` (enqueueing jobs, publishing events), so nothing announces a change
that did not happen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Stable constraint names, so alembic autogenerate and hand-written migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_AFTER_COMMIT = "zap_after_commit"


def service_metadata() -> MetaData:
    """A fresh MetaData for one service's models, with ZAP's naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """An engine and session factory for one service's database."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            echo=echo,
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A transaction: commit on success, roll back on error, then after-commit hooks."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            for callback in session.info.pop(_AFTER_COMMIT, []):
                await callback()

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        """A session for single-statement reads, outside any transaction (autocommit)."""
        async with self._read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the unit of work that owns `session` has committed."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)
