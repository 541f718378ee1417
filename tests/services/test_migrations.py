"""Each service's migrations produce exactly the schema its models describe."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from zapcore.migrations import include_object

SERVICES = ("auth", "feed", "graph", "media", "moderation", "notification")


@pytest.mark.parametrize("service", SERVICES)
async def test_models_and_migrations_agree(databases: dict[str, str], service: str) -> None:
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(databases[service])
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == [], f"services/{service}: models and migrations differ: {diff}"
