"""Presign and complete: what is signed, and what the service accepts once the file is stored.

The embedded store enforces none of a presigned POST's conditions, so the policy is checked
as signed, and every lie a client can tell through it is caught at completion.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest

from services.media.object_store import ObjectStore
from tests.services.media.conftest import Client, as_service, as_user, media_settings
from tests.support.media import (
    TEXT_FILE,
    jpeg_bomb_behind_padding,
    jpeg_with_gps,
    keys_of,
    png,
    png_bomb,
    upload,
)
from tests.support.stack import Stack
from zap.media.v1 import media_pb2
from zapcore.rpc_errors import failure_from_rpc_error


def reason_of(error: grpc.aio.AioRpcError) -> str:
    return failure_from_rpc_error(error).reason


def policy_of(answer: media_pb2.PresignResponse) -> dict[str, object]:
    policy: dict[str, object] = json.loads(base64.b64decode(answer.upload.fields["policy"]))
    return policy


async def test_presign_signs_a_short_lived_policy_for_one_key_size_and_type(
    new_client, stack: Stack
) -> None:
    client: Client = new_client()
    before = datetime.now(UTC)
    answer = await client.presign("image/jpeg", 204_800)

    media = answer.media
    assert media.status == media_pb2.MEDIA_STATUS_PENDING
    assert media.owner_id == str(client.user_id)
    assert media.mime_type == "image/jpeg"
    assert media.size_bytes == 204_800
    assert not media.variants
    fields = answer.upload.fields
    # The key is the server's, under the owner's prefix; the client names nothing.
    assert fields["key"] == f"uploads/{client.user_id}/{media.id}"
    assert fields["Content-Type"] == "image/jpeg"
    settings = media_settings(stack)
    assert answer.upload.url == f"{settings.endpoint_url}/{settings.s3_bucket}"

    policy = policy_of(answer)
    conditions = policy["conditions"]
    assert isinstance(conditions, list)
    assert ["content-length-range", 1, 204_800] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert {"key": fields["key"]} in conditions
    assert {"bucket": settings.s3_bucket} in conditions
    expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
    assert expires - before <= timedelta(seconds=settings.presign_expiry_seconds + 5)
    assert expires > before + timedelta(seconds=settings.presign_expiry_seconds - 5)
    assert abs(answer.upload.expires_at.ToDatetime(tzinfo=UTC) - expires) < timedelta(seconds=2)


@pytest.mark.parametrize(
    ("mime_type", "size", "reason", "field"),
    [
        ("image/svg+xml", 1000, "unsupported-media-type", "mime_type"),
        ("text/html", 1000, "unsupported-media-type", "mime_type"),
        ("application/octet-stream", 1000, "unsupported-media-type", "mime_type"),
        ("image/jpeg", 0, "invalid-argument", "file_size_bytes"),
        ("image/jpeg", -5, "invalid-argument", "file_size_bytes"),
        ("image/jpeg", 20 * 1024 * 1024 + 1, "file-too-large", "file_size_bytes"),
        ("image/gif", 10 * 1024 * 1024 + 1, "file-too-large", "file_size_bytes"),
    ],
)
async def test_presign_refuses_other_types_and_sizes(
    new_client, mime_type: str, size: int, reason: str, field: str
) -> None:
    client: Client = new_client()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.presign(mime_type, size)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    failure = failure_from_rpc_error(refused.value)
    assert failure.reason == reason
    assert field in failure.fields


async def test_presign_needs_a_user(media) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await media.Presign(
            media_pb2.PresignRequest(mime_type="image/png", file_size_bytes=10),
            metadata=as_service(),
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_presign_is_rate_limited_per_user(new_client) -> None:
    client: Client = new_client()
    for _ in range(60):
        await client.presign("image/png", 1000)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.presign("image/png", 1000)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure_from_rpc_error(refused.value).retry_after_seconds >= 1
    await new_client().presign("image/png", 1000)  # someone else is not affected


async def test_an_upload_is_processed_and_completing_twice_is_harmless(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    client: Client = new_client()
    photo = jpeg_with_gps()
    answer = await client.presign("image/jpeg", len(photo))
    media_id = answer.media.id
    await upload(http, answer.upload.url, answer.upload.fields, photo)

    first = await client.complete(media_id)
    second = await client.complete(media_id)
    assert first.status in (media_pb2.MEDIA_STATUS_PROCESSING, media_pb2.MEDIA_STATUS_READY)
    assert second.status in (media_pb2.MEDIA_STATUS_PROCESSING, media_pb2.MEDIA_STATUS_READY)
    assert first.size_bytes == len(photo)

    ready = await client.settled(media_id)
    assert ready.status == media_pb2.MEDIA_STATUS_READY, ready.failure_reason
    assert (await client.complete(media_id)) == ready  # and once ready, unchanged
    assert [v.name for v in ready.variants] == ["thumbnail", "medium", "original"]
    # The raw upload (with its EXIF) is gone; three variants remain, under the owner's prefix.
    keys = await keys_of(store, str(client.user_id))
    assert sorted(keys) == sorted(
        f"media/{client.user_id}/{media_id}/{name}.jpg"
        for name in ("thumbnail", "medium", "original")
    )


async def test_completion_is_for_the_owner_only(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    owner, stranger = new_client(), new_client()
    answer = await owner.presign("image/png", 10_000)
    await upload(http, answer.upload.url, answer.upload.fields, png())

    for call in (stranger.complete, stranger.get):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(answer.media.id)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert reason_of(refused.value) == "media-not-found"
    assert (await owner.get(answer.media.id)).status == media_pb2.MEDIA_STATUS_PENDING


async def test_unknown_and_malformed_ids(new_client) -> None:
    client: Client = new_client()
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await client.complete(str(uuid.uuid4()))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await client.complete("../../etc/passwd")
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_completing_before_uploading_is_a_precondition_failure(new_client) -> None:
    client: Client = new_client()
    answer = await client.presign("image/png", 1000)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.complete(answer.media.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == "upload-missing"
    assert (await client.get(answer.media.id)).status == media_pb2.MEDIA_STATUS_PENDING


async def refused_at_completion(
    client: Client,
    http: httpx.AsyncClient,
    store: ObjectStore,
    *,
    declared: str,
    size: int,
    content: bytes,
    reason: str,
    content_type: str | None = None,
) -> media_pb2.Media:
    answer = await client.presign(declared, size)
    await upload(http, answer.upload.url, answer.upload.fields, content, content_type=content_type)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.complete(answer.media.id)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    failure = failure_from_rpc_error(refused.value)
    assert failure.reason == reason, failure
    assert "file" in failure.fields
    media = await client.get(answer.media.id)
    assert media.status == media_pb2.MEDIA_STATUS_FAILED
    assert media.failure_reason
    assert await keys_of(store, str(client.user_id)) == []  # nothing left behind
    # Completing again gives the same verdict, as a state, not a new check.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await client.complete(answer.media.id)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(again.value) == "media-failed"
    return media


async def test_a_text_file_named_jpg_is_refused_and_deleted(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    await refused_at_completion(
        new_client(),
        http,
        store,
        declared="image/jpeg",
        size=len(TEXT_FILE),
        content=TEXT_FILE,
        reason="not-an-image",
    )


async def test_an_upload_larger_than_declared_is_caught_at_completion(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    photo = jpeg_with_gps()
    # The real store would refuse the POST (content-length-range); the stand-in does not.
    await refused_at_completion(
        new_client(),
        http,
        store,
        declared="image/jpeg",
        size=len(photo) // 2,
        content=photo,
        reason="upload-too-large",
    )


async def test_a_png_declared_as_jpeg_is_refused(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    picture = png()
    await refused_at_completion(
        new_client(),
        http,
        store,
        declared="image/jpeg",
        size=len(picture),
        content=picture,
        reason="type-mismatch",
    )


async def test_a_content_type_other_than_signed_is_refused(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    picture = png()
    # A browser could be served this file as HTML if the store kept the client's type.
    await refused_at_completion(
        new_client(),
        http,
        store,
        declared="image/png",
        size=len(picture),
        content=picture,
        content_type="text/html",
        reason="content-type-mismatch",
    )


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    bomb = png_bomb(30_000, 30_000)  # 900 megapixels in ~100 bytes
    assert len(bomb) < 200
    media = await refused_at_completion(
        new_client(),
        http,
        store,
        declared="image/png",
        size=len(bomb),
        content=bomb,
        reason="image-too-large",
    )
    assert "pixels" in media.failure_reason


async def test_a_bomb_hidden_past_the_first_bytes_is_refused_by_the_worker(
    new_client, http: httpx.AsyncClient, store: ObjectStore
) -> None:
    client: Client = new_client()
    bomb = jpeg_bomb_behind_padding(30_000, 30_000)
    answer = await client.presign("image/jpeg", len(bomb))
    await upload(http, answer.upload.url, answer.upload.fields, bomb)
    # Its header is past what completion reads, so it is accepted for processing ...
    assert (await client.complete(answer.media.id)).status == media_pb2.MEDIA_STATUS_PROCESSING
    # ... where it is refused, and every object deleted.
    media = await client.settled(answer.media.id)
    assert media.status == media_pb2.MEDIA_STATUS_FAILED
    assert "pixels" in media.failure_reason
    assert not media.variants
    assert await keys_of(store, str(client.user_id)) == []


async def test_reads_show_others_only_ready_media(
    new_client, http: httpx.AsyncClient, media, stack: Stack
) -> None:
    owner, other = new_client(), new_client()
    pending = (await owner.presign("image/png", 1000)).media.id
    photo = jpeg_with_gps(320, 240)
    answer = await owner.presign("image/jpeg", len(photo))
    await upload(http, answer.upload.url, answer.upload.fields, photo)
    await owner.complete(answer.media.id)
    ready = await owner.settled(answer.media.id)
    unknown = str(uuid.uuid4())
    ids = [pending, ready.id, unknown]

    async def medias(metadata: tuple[tuple[str, str], ...]) -> list[media_pb2.Media]:
        answer = await media.GetMedias(media_pb2.GetMediasRequest(media_ids=ids), metadata=metadata)
        return list(answer.medias)

    assert [m.id for m in await medias(as_user(owner.user_id))] == [pending, ready.id]
    assert [m.id for m in await medias(as_user(other.user_id))] == [ready.id]
    assert [m.id for m in await medias(as_service())] == [ready.id]
    assert (await other.get(ready.id)) == ready
    base = media_settings(stack).public_base_url
    assert all(v.url.startswith(f"{base}/media/{owner.user_id}/") for v in ready.variants)

    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await media.GetMedias(
            media_pb2.GetMediasRequest(media_ids=[str(uuid.uuid4()) for _ in range(101)]),
            metadata=as_service(),
        )
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_export_lists_everything_the_caller_uploaded(new_client, media) -> None:
    client: Client = new_client()
    first = (await client.presign("image/png", 1000)).media.id
    second = (await client.presign("image/webp", 2000)).media.id
    await new_client().presign("image/png", 1000)
    answer = await media.ExportUserData(
        media_pb2.ExportUserDataRequest(), metadata=as_user(client.user_id)
    )
    assert [m.id for m in answer.medias] == [first, second]
