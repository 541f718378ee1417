"""PostgreSQL access: one async engine per service database, one unit of work per call.

Repositories and services receive an `AsyncSession` and never commit; the edge (a
servicer method or a job) wraps its work in `Database.unit_of_work()`, which commits on
success, rolls back on error, and only then runs the callbacks registered with
`after_commit` (enqueueing jobs, publishing events), so nothing announces a change
that did not happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy.exc
from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from zapcore.logging import get_logger

# Stable constraint names, so alembic autogenerate and hand-written migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_AFTER_COMMIT = "zap_after_commit"

log = get_logger(__name__)


def service_metadata() -> MetaData:
    """A fresh MetaData for one service's models, with ZAP's naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


# SQLSTATE classes that say "the database cannot answer now", not "this query is wrong":
# 08 connection exception, 53 insufficient resources (too many connections, out of memory),
# 57 operator intervention (statement timeout, admin shutdown, cannot connect now).
_UNAVAILABLE_CLASSES = ("08", "53", "57")
# object_not_in_prerequisite_state: what connecting to a database closed to connections says.
_NOT_ACCEPTING_CONNECTIONS = "55000"


def database_unavailable(error: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether an error means the database could not answer (down, unreachable, refusing
    connections, overloaded, too slow) rather than a bug or a bad query; `also` names other
    passing failures the caller treats alike (an object store's, say)."""
    current: BaseException | None = error
    for _ in range(8):  # SQLAlchemy's error, the driver adapter's, the driver's own
        if current is None:
            return False
        if isinstance(current, (*also, TimeoutError, OSError, sqlalchemy.exc.TimeoutError)):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.OperationalError):
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (
            state[:2] in _UNAVAILABLE_CLASSES or state == _NOT_ACCEPTING_CONNECTIONS
        ):
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


class ConnectionLost(ConnectionError):
    """The database connection broke under a driver read (closed, reset, shut down)."""


# asyncpg's own errors that mean the connection itself is gone (SQLAlchemy wraps these for
# ORM and Core statements; driver reads see them raw).
_CONNECTION_LOST = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


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
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_sessions = async_sessionmaker(self._autocommit, expire_on_commit=False)

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

    @asynccontextmanager
    async def driver_reads(self) -> AsyncIterator[asyncpg.Connection]:
        """asyncpg itself, outside any transaction, for the hottest reads: a statement
        through the ORM costs about ten times the CPU of the same statement here (asyncpg
        keeps it prepared). Repositories only; the connection goes back to the pool."""
        async with self._autocommit.connect() as connection:
            raw = await connection.get_raw_connection()
            try:
                yield raw.driver_connection
            except _CONNECTION_LOST as error:
                # What SQLAlchemy does for its own statements: the pool drops the connection.
                await connection.invalidate(error)
                raise ConnectionLost(str(error)) from error

    @asynccontextmanager
    async def driver_unit_of_work(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on asyncpg itself, for the hottest writes (the saving of
        `driver_reads`): commit on success, roll back on error. It has no after-commit
        hooks: the caller acts on the commit once the block is left."""
        async with self.driver_reads() as connection, connection.transaction():
            yield connection

    async def warm_up(self, timeout_seconds: float = 5.0) -> bool:
        """Open a pooled connection before serving: the first one also initialises the
        dialect, which alone can take longer than a read's database budget. Best effort:
        a service whose database is down still starts (and serves what it can without)."""
        try:
            async with asyncio.timeout(timeout_seconds), self.driver_reads() as connection:
                await connection.fetchval("SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError, SQLAlchemyError) as error:
            log.warning("db.warm_up_failed", error=repr(error))
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the unit of work that owns `session` has committed."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)
