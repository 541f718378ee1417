"""Per-service databases and alembic migrations, usable from scripts, tests and env.py."""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path

import asyncpg
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine


def migrations_dir(service: str) -> Path:
    """services/<service>/migrations, wherever the services package is installed."""
    spec = importlib.util.find_spec(f"services.{service}")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"unknown service: {service}")
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


def alembic_config(service: str, database_url: str) -> Config:
    """Alembic configuration for one service's migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(service, database_url), revision)


def _admin_dsn(database_url: str) -> tuple[str, str]:
    url = make_url(database_url)
    name = url.database or ""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {name!r}")
    admin = url.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), name


async def create_database(database_url: str) -> bool:
    """Create the database named in the URL if missing; True when it was created."""
    dsn, name = _admin_dsn(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    """Drop the database named in the URL, disconnecting whoever still uses it."""
    dsn, name = _admin_dsn(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


_PARTITION = re.compile(r"^(?P<parent>\w+)_p\d+$")


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave out the partitions of a partitioned table: models describe only the parent."""
    if type_ == "table" and reflected and compare_to is None and name:
        return _PARTITION.match(name) is None
    if type_ == "index" and reflected and compare_to is None:
        table = getattr(obj, "table", None)
        return not (table is not None and _PARTITION.match(str(table.name)))
    return True


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode, asyncpg)."""
    url = str(
        context.config.attributes.get("database_url")
        or context.config.get_main_option("sqlalchemy.url")
    )

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            include_object=include_object,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run())
