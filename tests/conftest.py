"""Fixtures: a private PostgreSQL database per service and a private Redis db per run,
real gRPC services and the real gateway on real sockets, and factories for users."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from services.media.object_store import ObjectStore
from services.media.settings import MediaSettings
from tests.support.media import store_of
from tests.support.object_store import run_object_store
from tests.support.resources import TestDatabases, claim_redis_db, flush_except_lock
from tests.support.stack import Stack, run_stack
from zapcore.settings import PlatformSettings
from zapcore.telemetry import configure_telemetry, shutdown_telemetry

SERVICES_WITH_DATABASES = ("auth", "feed", "graph", "media", "moderation", "notification")


@pytest.fixture(scope="session")
async def databases() -> AsyncIterator[dict[str, str]]:
    dbs = TestDatabases(SERVICES_WITH_DATABASES)
    await dbs.create()
    try:
        yield dbs.urls
    finally:
        await dbs.drop()


@pytest.fixture(scope="session")
async def redis_db() -> AsyncIterator[tuple[str, Redis]]:
    url, client = await claim_redis_db()
    try:
        yield url, client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing-keys")


@pytest.fixture(scope="session")
async def object_store() -> AsyncIterator[str]:
    """The embedded S3-compatible store's endpoint (media's objects)."""
    async with run_object_store() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
async def stack(
    databases: dict[str, str], redis_db: tuple[str, Redis], keys_dir: Path, object_store: str
) -> AsyncIterator[Stack]:
    async with run_stack(databases, redis_db[0], keys_dir, object_store) as running:
        yield running


@pytest.fixture(autouse=True)
async def _clean_redis(request: pytest.FixtureRequest) -> None:
    """Each test starts with an empty Redis (rate limits, deny-list, throttles)."""
    if "redis_db" in request.fixturenames or "stack" in request.fixturenames:
        _, client = request.getfixturevalue("redis_db")
        await flush_except_lock(client)


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[ObjectStore]:
    """media's object store, to look at objects the API cannot show."""
    settings = stack.settings["media"]
    assert isinstance(settings, MediaSettings)
    async with store_of(settings) as opened:
        yield opened


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process records while the test runs."""
    exporter = InMemorySpanExporter()
    configure_telemetry("tests", PlatformSettings(), exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_telemetry()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        yield http


os.environ.setdefault("ZAP_LOG_LEVEL", "WARNING")
