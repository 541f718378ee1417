"""A processing job that met a database outage, or crashed, is not the end of the upload: the
real worker retries it, the upkeep queues it again within minutes, and an upload that cannot be
processed at all fails with a reason instead of staying "processing"."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy.engine import make_url

from services.media.object_store import ObjectStore
from services.media.resources import JOB_QUEUE
from services.media.uploads.service import process_job_id
from tests.services.media.conftest import Client, media_settings
from tests.support.media import jpeg_with_gps, keys_of, upload
from tests.support.stack import Stack
from tests.support.waiting import eventually


@pytest.fixture
async def jobs(stack: Stack) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(stack.platform.redis_url))
    try:
        yield pool
    finally:
        await pool.aclose()


async def media_sql(stack: Stack, query: str, *args: object) -> object:
    dsn = media_settings(stack).database_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def database_down(stack: Stack) -> AsyncIterator[None]:
    """media's database refuses new connections and loses its open ones, until the block ends."""
    url = make_url(media_settings(stack).database_url)
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false')
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                url.database,
            )
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def variants_table_gone(stack: Stack) -> AsyncIterator[None]:
    """Every write of variants fails with an error that is no outage (a bug, a bad migration)."""
    await media_sql(stack, "ALTER TABLE media_variants RENAME TO media_variants_away")
    try:
        yield
    finally:
        await media_sql(stack, "ALTER TABLE media_variants_away RENAME TO media_variants")


async def uploaded_for_processing(
    client: Client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack
) -> str:
    """An upload in "processing" with no job queued yet (completed by hand)."""
    photo = jpeg_with_gps(320, 240)
    answer = await client.presign("image/jpeg", len(photo))
    await upload(http, answer.upload.url, answer.upload.fields, photo)
    stored = await store.head(answer.upload.fields["key"])
    await media_sql(
        stack,
        "UPDATE media SET status = 'processing', size_bytes = $2, upload_etag = $3,"
        " completed_at = now() WHERE id = $1::uuid",
        answer.media.id,
        stored.size,
        stored.etag,
    )
    return answer.media.id


async def status_of(stack: Stack, media_id: str) -> object:
    return await media_sql(stack, "SELECT status FROM media WHERE id = $1::uuid", media_id)


async def job_over(jobs: ArqRedis, job_id: str) -> bool:
    return not await jobs.exists(f"arq:job:{job_id}")


async def job_started(jobs: ArqRedis, job_id: str) -> bool:
    return bool(await jobs.exists(f"arq:retry:{job_id}"))


async def sweep(jobs: ArqRedis) -> None:
    job = await jobs.enqueue_job("sweep", _queue_name=JOB_QUEUE)
    assert job is not None
    await job.result(timeout=30)


async def test_processing_that_meets_a_database_outage_is_retried_once_it_is_over(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, jobs: ArqRedis
) -> None:
    client: Client = new_client()
    media_id = await uploaded_for_processing(client, http, store, stack)
    job_id = process_job_id(uuid.UUID(media_id))
    async with database_down(stack):
        await jobs.enqueue_job("process_media", media_id, _job_id=job_id, _queue_name=JOB_QUEUE)
        await eventually(lambda: job_started(jobs, job_id), bool, timeout=10)
        await asyncio.sleep(1)  # the job met the outage
    # The worker itself tries again a few seconds later: no upkeep, no hour-long wait.
    assert await eventually(lambda: status_of(stack, media_id), "ready".__eq__, timeout=30)
    await pool_recovered(client, media_id)


async def pool_recovered(client: Client, media_id: str) -> None:
    """The service's pooled connections the outage killed are found dead (once each) and
    replaced, so that the tests after this one meet a healthy service."""
    answered = 0
    for _ in range(60):
        try:
            await client.get(media_id)
        except grpc.aio.AioRpcError:
            answered = 0
            continue
        answered += 1
        if answered == 25:
            return
    raise AssertionError("media did not recover from its database outage")


async def test_a_crashed_processing_job_is_queued_again_by_the_upkeep(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, jobs: ArqRedis
) -> None:
    client: Client = new_client()
    media_id = await uploaded_for_processing(client, http, store, stack)
    job_id = process_job_id(uuid.UUID(media_id))
    async with variants_table_gone(stack):
        await jobs.enqueue_job("process_media", media_id, _job_id=job_id, _queue_name=JOB_QUEUE)
        await eventually(lambda: job_over(jobs, job_id), bool, timeout=30)
    assert await status_of(stack, media_id) == "processing"

    # Minutes later (not an hour: arq must not keep the crashed job's id taken), the upkeep.
    await media_sql(
        stack,
        "UPDATE media SET completed_at = now() - interval '5 minutes' WHERE id = $1::uuid",
        media_id,
    )
    await sweep(jobs)
    assert await eventually(lambda: status_of(stack, media_id), "ready".__eq__, timeout=30)


async def test_an_upload_that_cannot_be_processed_fails_with_a_reason(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, jobs: ArqRedis
) -> None:
    client: Client = new_client()
    media_id = await uploaded_for_processing(client, http, store, stack)
    give_up = media_settings(stack).processing_give_up_after_seconds
    async with variants_table_gone(stack):
        # Every attempt for longer than the service gives an upload has crashed.
        await media_sql(
            stack,
            "UPDATE media SET completed_at = now() - make_interval(secs => $2) WHERE id = $1::uuid",
            media_id,
            float(give_up + 60),
        )
        await sweep(jobs)
        assert await status_of(stack, media_id) == "failed"
    media = await client.get(media_id)
    assert "could not be processed" in media.failure_reason
    assert await keys_of(store, str(client.user_id)) == []
