"""The S3-compatible object store, through aioboto3: the only module that talks to it.

Keys are chosen by the service and namespaced by owner:
- `uploads/<owner>/<media>`: where the client's presigned POST puts the raw file;
- `media/<owner>/<media>/<variant>.<ext>`: the re-encoded variants the CDN serves.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
)

from services.media.settings import MediaSettings
from zapcore.errors import Unavailable
from zapcore.logging import get_logger

log = get_logger(__name__)

# Variants never change under their key (a new upload is a new media id).
VARIANT_CACHE_CONTROL = "public, max-age=31536000, immutable"
_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_MISSING = {"404", "NoSuchKey", "NotFound"}
_CHANGED = {"412", "PreconditionFailed"}
_UNSUPPORTED = {"NotImplemented", "501", "XNotImplemented"}


def upload_key(owner_id: uuid.UUID, media_id: uuid.UUID) -> str:
    return f"uploads/{owner_id}/{media_id}"


def variant_key(owner_id: uuid.UUID, media_id: uuid.UUID, name: str, extension: str) -> str:
    return f"media/{owner_id}/{media_id}/{name}.{extension}"


def media_prefix(owner_id: uuid.UUID, media_id: uuid.UUID) -> str:
    """Where every variant of one media lives."""
    return f"media/{owner_id}/{media_id}/"


def owner_prefixes(owner_id: uuid.UUID) -> list[str]:
    """Every prefix under which an owner's objects live."""
    return [f"uploads/{owner_id}/", f"media/{owner_id}/"]


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str
    etag: str


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


class ObjectMissing(Exception):
    """The key holds no object (never uploaded, or deleted)."""


class ObjectChanged(Exception):
    """The object under the key is no longer the one that was checked."""


class ObjectTooLarge(Exception):
    """The object is larger than the caller is willing to read."""


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ObjectStore:
    """One bucket on one S3-compatible endpoint; open() before use, close() after."""

    def __init__(self, settings: MediaSettings) -> None:
        self._settings = settings
        self._bucket = settings.s3_bucket
        self._exit = AsyncExitStack()
        self._client: Any = None

    @property
    def bucket(self) -> str:
        return self._bucket

    async def open(self) -> None:
        settings = self._settings
        credentials: dict[str, str] = {}
        if settings.s3_access_key_id.get_secret_value():
            # Without keys, boto's default chain applies (instance or pod role).
            credentials = {
                "aws_access_key_id": settings.s3_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
            }
        session = aioboto3.Session()
        self._client = await self._exit.enter_async_context(
            session.client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.s3_region,
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    connect_timeout=2,
                    read_timeout=20,
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=32,
                ),
                **credentials,
            )
        )

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None

    # --- the bucket -----------------------------------------------------------------------

    async def prepare_bucket(self, *, public_objects: bool, wait_seconds: float) -> None:
        """Create the bucket when missing, block public access, refuse a listable bucket.

        Waits up to `wait_seconds` for the store to answer (it may start beside us).
        """
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            try:
                await self._create_if_missing()
                break
            except (BotoCoreError, OSError) as error:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"object store at {self._settings.endpoint_url} did not answer: {error}"
                    ) from error
                await asyncio.sleep(0.25)
        await self._block_public_access(public_objects=public_objects)
        await self._refuse_public_listing()

    async def _create_if_missing(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as error:
            if _code(error) not in _MISSING | {"NoSuchBucket"}:
                raise
        arguments: dict[str, Any] = {"Bucket": self._bucket, "ACL": "private"}
        if self._settings.s3_region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {
                "LocationConstraint": self._settings.s3_region
            }
        try:
            await self._client.create_bucket(**arguments)
            log.info("media.bucket_created", bucket=self._bucket)
        except ClientError as error:
            if _code(error) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    async def _block_public_access(self, *, public_objects: bool) -> None:
        # Public object ACLs are allowed only when the store itself serves the variants
        # (the embedded development store); bucket policies and listings are never public.
        configuration = {
            "BlockPublicAcls": not public_objects,
            "IgnorePublicAcls": not public_objects,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        try:
            await self._client.put_public_access_block(
                Bucket=self._bucket, PublicAccessBlockConfiguration=configuration
            )
        except ClientError as error:
            # MinIO has no public access block; the checks below still hold.
            if _code(error) not in _UNSUPPORTED:
                raise
            log.info("media.public_access_block_unsupported", bucket=self._bucket)

    async def _refuse_public_listing(self) -> None:
        acl = await self._client.get_bucket_acl(Bucket=self._bucket)
        for grant in acl.get("Grants", []):
            if grant.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES and grant.get(
                "Permission"
            ) in ("READ", "FULL_CONTROL"):
                raise RuntimeError(f"bucket {self._bucket} is publicly listable (bucket ACL)")
        try:
            answer = await self._client.get_bucket_policy(Bucket=self._bucket)
        except ClientError as error:
            if _code(error) in {"NoSuchBucketPolicy", *_UNSUPPORTED}:
                return
            raise
        if policy_allows_public_listing(json.loads(answer.get("Policy") or "{}")):
            raise RuntimeError(f"bucket {self._bucket} is publicly listable (bucket policy)")

    # --- uploads --------------------------------------------------------------------------

    async def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedPost:
        """A browser-form upload to exactly `key`, of 1..max_bytes bytes of `content_type`."""
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        answer = await self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        # The signature covers the policy, not the host: clients may reach the store by
        # another name than the service does.
        url = f"{self._settings.upload_endpoint_url}/{self._bucket}"
        fields = {str(k): str(v) for k, v in answer["fields"].items()}
        return PresignedPost(url=url, fields=fields, expires_at=expires_at)

    async def head(self, key: str) -> StoredObject:
        try:
            answer = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise ObjectMissing(key) from None
            raise
        return StoredObject(
            size=int(answer["ContentLength"]),
            content_type=str(answer.get("ContentType", "")),
            etag=str(answer.get("ETag", "")),
        )

    async def read(
        self, key: str, *, etag: str, max_bytes: int, first_bytes: int | None = None
    ) -> bytes:
        """The object's bytes (or its first `first_bytes`), only if it is still `etag`."""
        arguments: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if etag:
            arguments["IfMatch"] = etag
        if first_bytes is not None:
            arguments["Range"] = f"bytes=0-{first_bytes - 1}"
        try:
            answer = await self._client.get_object(**arguments)
        except ClientError as error:
            code = _code(error)
            if code in _MISSING:
                raise ObjectMissing(key) from None
            if code in _CHANGED:
                raise ObjectChanged(key) from None
            raise
        limit = max_bytes if first_bytes is None else min(max_bytes, first_bytes)
        chunks: list[bytes] = []
        received = 0
        body = answer["Body"]
        # Entered for its release only: the context yields the raw response.
        async with body:
            while chunk := await body.read(256 * 1024):
                received += len(chunk)
                if received > limit:
                    raise ObjectTooLarge(key)
                chunks.append(chunk)
        return b"".join(chunks)

    # --- variants -------------------------------------------------------------------------

    async def put(self, key: str, body: bytes, *, content_type: str) -> None:
        await self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl=VARIANT_CACHE_CONTROL,
            ACL=self._settings.object_acl,
        )

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete keys (missing ones are fine), in batches of 1000."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            answer = await self._client.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                raise RuntimeError(f"object store refused to delete: {answer['Errors'][:3]}")

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; the number deleted."""
        paginator = self._client.get_paginator("list_objects_v2")
        deleted = 0
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            if keys:
                await self.delete(keys)
                deleted += len(keys)
        return deleted

    async def keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found


def policy_allows_public_listing(policy: dict[str, Any]) -> bool:
    """True when a bucket policy lets anyone list the bucket."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        public = principal == "*" or (
            isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))
        )
        actions = {str(a).lower() for a in _as_list(statement.get("Action"))}
        if public and actions & {"s3:listbucket", "s3:*", "*", "s3:list*"}:
            return True
    return False


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def store_unavailable(error: Exception) -> Unavailable:
    """What callers see when the store failed to answer."""
    log.warning("media.store_unavailable", error=str(error)[:200])
    return Unavailable("the object store is not answering; try again shortly")
