"""The worker's side: clean variants in the store, the sweeper, deleted accounts, the bucket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import grpc
import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from services.media.object_store import ObjectStore, policy_allows_public_listing
from services.media.processing.images import Rendered, render
from services.media.processing.service import Processing
from services.media.resources import JOB_QUEUE, MediaResources
from services.media.settings import ImageType
from tests.services.media.conftest import Client, media_settings
from tests.support.media import jpeg_with_gps, keys_of, metadata_of, png, upload
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.events.v1 import events_pb2
from zap.media.v1 import media_pb2
from zapcore.events import ACCOUNT_DELETIONS, DELETION_RECEIPTS, FEED, EventPublisher, stream_key


@pytest.fixture
async def jobs(stack: Stack) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(stack.platform.redis_url))
    try:
        yield pool
    finally:
        await pool.aclose()


async def media_sql(stack: Stack, query: str, *args: object) -> object:
    """One statement on media's own database (for what the API cannot do: age a record)."""
    dsn = media_settings(stack).database_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def ready_upload(client: Client, http: httpx.AsyncClient, photo: bytes) -> media_pb2.Media:
    answer = await client.presign("image/jpeg", len(photo))
    await upload(http, answer.upload.url, answer.upload.fields, photo)
    await client.complete(answer.media.id)
    media = await client.settled(answer.media.id)
    assert media.status == media_pb2.MEDIA_STATUS_READY, media.failure_reason
    return media


def key_of(url: str, stack: Stack) -> str:
    base = media_settings(stack).public_base_url
    assert url.startswith(base + "/")
    return url.removeprefix(base + "/")


async def test_a_photo_with_gps_comes_back_without_any_metadata(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack
) -> None:
    client: Client = new_client()
    photo = jpeg_with_gps(1600, 1200)
    sent = metadata_of(photo)
    assert sent["gps"]
    assert sent["comment"]

    media = await ready_upload(client, http, photo)

    sizes = {}
    for variant in media.variants:
        stored = await store.read(key_of(variant.url, stack), etag="", max_bytes=10**8)
        found = metadata_of(stored)
        assert found["exif"] == {}, variant.name
        assert found["gps"] == {}, variant.name
        assert found["icc_profile"] is None
        assert found["comment"] is None
        assert found["xmp"] is None
        assert found["format"] == "JPEG"
        assert found["size"] == (variant.width, variant.height)
        assert variant.size_bytes == len(stored)
        assert variant.mime_type == "image/jpeg"
        sizes[variant.name] = found["size"]
    # Orientation 6 applied: the 1600x1200 sensor image is a 1200x1600 portrait.
    assert sizes == {"original": (1200, 1600), "medium": (810, 1080), "thumbnail": (240, 320)}


async def test_uploads_never_completed_are_swept_away(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, jobs: ArqRedis
) -> None:
    client: Client = new_client()
    answer = await client.presign("image/png", 10_000)
    await upload(http, answer.upload.url, answer.upload.fields, png())
    assert await keys_of(store, str(client.user_id)) != []
    # As if the presigned upload had expired long ago.
    await media_sql(
        stack,
        "UPDATE media SET upload_expires_at = now() - interval '1 day' WHERE id = $1::uuid",
        answer.media.id,
    )
    job = await jobs.enqueue_job("sweep", _queue_name=JOB_QUEUE)
    assert job is not None
    assert await job.result(timeout=30) >= 1

    media = await client.get(answer.media.id)
    assert media.status == media_pb2.MEDIA_STATUS_FAILED
    assert "not completed" in media.failure_reason
    assert await keys_of(store, str(client.user_id)) == []


async def test_a_deleted_account_leaves_the_store(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, redis_db
) -> None:
    client: Client = new_client()
    media = await ready_upload(client, http, jpeg_with_gps(640, 480))
    pending = await client.presign("image/png", 10_000)
    await upload(http, pending.upload.url, pending.upload.fields, png())
    assert len(await keys_of(store, str(client.user_id))) == 4

    _, redis = redis_db
    await EventPublisher(redis, producer="auth").publish(
        ACCOUNT_DELETIONS, events_pb2.AccountDeleted(user_id=str(client.user_id))
    )

    async def gone() -> bool:
        try:
            await client.get(media.id)
        except grpc.aio.AioRpcError as error:
            return error.code() == grpc.StatusCode.NOT_FOUND
        return False

    await eventually(gone, bool, timeout=30)
    assert await keys_of(store, str(client.user_id)) == []
    assert (
        await media_sql(
            stack, "SELECT count(*) FROM media WHERE owner_id = $1::uuid", str(client.user_id)
        )
        == 0
    )
    receipts = await redis.xrange(stream_key(DELETION_RECEIPTS))
    decoded = [events_pb2.Envelope.FromString(fields[b"e"]) for _, fields in receipts]
    assert any(
        e.deletion_completed.user_id == str(client.user_id)
        and e.deletion_completed.service == "media"
        for e in decoded
    )


class HeldRenderer:
    """Renders in this process, once released: the job is caught between reading the
    upload and storing the variants."""

    def __init__(self, resources: MediaResources) -> None:
        self._spec = resources.render_spec
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def render(self, data: bytes, kind: ImageType) -> list[Rendered]:
        self.started.set()
        await self.release.wait()
        return await asyncio.to_thread(render, data, kind, self._spec)


@asynccontextmanager
async def media_resources(stack: Stack) -> AsyncIterator[MediaResources]:
    resources = await MediaResources.open(stack.platform, media_settings(stack))
    try:
        yield resources
    finally:
        await resources.close()


async def post_deleted(redis, author_id: uuid.UUID, *media_ids: str) -> None:
    event = events_pb2.PostDeleted(
        post_id=str(uuid.uuid4()), author_id=str(author_id), media_ids=list(media_ids)
    )
    await EventPublisher(redis, producer="feed").publish(FEED, event)


async def not_found(client: Client, media_id: str) -> bool:
    try:
        await client.get(media_id)
    except grpc.aio.AioRpcError as error:
        return error.code() == grpc.StatusCode.NOT_FOUND
    return False


async def test_media_deleted_while_it_is_processed_leaves_nothing_behind(
    new_client, http: httpx.AsyncClient, store: ObjectStore, stack: Stack, redis_db, jobs: ArqRedis
) -> None:
    client: Client = new_client()
    owner = str(client.user_id)
    photo = jpeg_with_gps(640, 480)
    answer = await client.presign("image/jpeg", len(photo))
    media_id = answer.media.id
    await upload(http, answer.upload.url, answer.upload.fields, photo)
    # Completed by hand, so that no worker job is queued: this test runs the job itself.
    stored = await store.head(answer.upload.fields["key"])
    await media_sql(
        stack,
        "UPDATE media SET status = 'processing', size_bytes = $2, upload_etag = $3,"
        " completed_at = now() WHERE id = $1::uuid",
        media_id,
        stored.size,
        stored.etag,
    )
    _, redis = redis_db
    async with media_resources(stack) as resources:
        renderer = HeldRenderer(resources)
        job = asyncio.create_task(Processing(resources, renderer).run(uuid.UUID(media_id)))
        await asyncio.wait_for(renderer.started.wait(), timeout=10)

        # The post that showed it is deleted while the job holds the upload in memory.
        await post_deleted(redis, client.user_id, media_id)
        await eventually(lambda: not_found(client, media_id), bool)
        assert await keys_of(store, owner) == []
        renderer.release.set()
        # The job stores its variants, cannot make the media ready, and deletes them again.
        assert await asyncio.wait_for(job, timeout=30) == "skipped"
    assert await keys_of(store, owner) == []

    # Its presigned upload has not expired: the row waits (invisible) for the sweeper, which
    # also empties a file sent to the upload key after the deletion.
    assert await media_sql(
        stack, "SELECT deleted_at IS NOT NULL FROM media WHERE id = $1::uuid", media_id
    )
    await upload(http, answer.upload.url, answer.upload.fields, photo)
    assert await not_found(client, media_id)
    await media_sql(
        stack,
        "UPDATE media SET upload_expires_at = now() - interval '1 day' WHERE id = $1::uuid",
        media_id,
    )
    sweep = await jobs.enqueue_job("sweep", _queue_name=JOB_QUEUE)
    assert sweep is not None
    assert await sweep.result(timeout=30) >= 1
    assert await keys_of(store, owner) == []
    assert await media_sql(stack, "SELECT count(*) FROM media WHERE id = $1::uuid", media_id) == 0

    # A re-delivered event finds nothing to do, and fails nothing.
    await post_deleted(redis, client.user_id, media_id)
    witness = await ready_upload(client, http, jpeg_with_gps(64, 48))
    await post_deleted(redis, client.user_id, witness.id)
    await eventually(lambda: not_found(client, witness.id), bool)
    assert [k async for k in redis.scan_iter(match="zap:events:*:dead:*")] == []


async def test_the_bucket_is_private_and_not_listable(store: ObjectStore) -> None:
    client = store._client  # the service's own client, for the bucket's settings
    block = (await client.get_public_access_block(Bucket=store.bucket))[
        "PublicAccessBlockConfiguration"
    ]
    assert block["BlockPublicPolicy"]
    assert block["RestrictPublicBuckets"]
    grants = (await client.get_bucket_acl(Bucket=store.bucket))["Grants"]
    assert not [g for g in grants if "URI" in g["Grantee"]]


@pytest.mark.parametrize(
    ("policy", "listable"),
    [
        ({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket"}]}, True),
        ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:*"]}]}, True),
        ({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}}, False),
        ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket"}]}, False),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "*"}
                ]
            },
            False,
        ),
    ],
)
def test_public_listing_in_bucket_policies_is_recognised(
    policy: dict[str, object], listable: bool
) -> None:
    assert policy_allows_public_listing(policy) is listable
