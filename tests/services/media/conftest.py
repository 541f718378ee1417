"""media's gRPC API on a real server, with its worker, PostgreSQL, Redis and the embedded
S3-compatible store; files go up through real presigned POSTs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import httpx
import pytest

from services.media.object_store import ObjectStore
from services.media.settings import MediaSettings
from tests.support.media import store_of
from tests.support.stack import TEST_SECRET, Stack
from tests.support.waiting import eventually
from zap.media.v1 import media_pb2, media_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner

SIGNER = IdentitySigner(TEST_SECRET)


def as_user(user_id: uuid.UUID) -> tuple[tuple[str, str], ...]:
    # Signed per call: an assertion lives 60 seconds, shorter than a test session.
    return ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service="gateway", user_id=user_id))),)


def as_service(name: str = "feed") -> tuple[tuple[str, str], ...]:
    return ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service=name))),)


def media_settings(stack: Stack) -> MediaSettings:
    settings = stack.settings["media"]
    assert isinstance(settings, MediaSettings)
    return settings


@pytest.fixture
async def media(stack: Stack) -> AsyncIterator[media_pb2_grpc.MediaServiceStub]:
    async with grpc.aio.insecure_channel(stack.targets["media"]) as channel:
        yield media_pb2_grpc.MediaServiceStub(channel)


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[ObjectStore]:
    async with store_of(media_settings(stack)) as opened:
        yield opened


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


class Client:
    """One user's calls to media."""

    def __init__(self, stub: media_pb2_grpc.MediaServiceStub, user_id: uuid.UUID) -> None:
        self.stub = stub
        self.user_id = user_id

    async def presign(self, mime_type: str, size: int) -> media_pb2.PresignResponse:
        return await self.stub.Presign(
            media_pb2.PresignRequest(mime_type=mime_type, file_size_bytes=size),
            metadata=as_user(self.user_id),
        )

    async def complete(self, media_id: str) -> media_pb2.Media:
        answer = await self.stub.CompleteUpload(
            media_pb2.CompleteUploadRequest(media_id=media_id), metadata=as_user(self.user_id)
        )
        return answer.media

    async def get(self, media_id: str) -> media_pb2.Media:
        answer = await self.stub.GetMedia(
            media_pb2.GetMediaRequest(media_id=media_id), metadata=as_user(self.user_id)
        )
        return answer.media

    async def settled(self, media_id: str) -> media_pb2.Media:
        """The media once processing is over (ready or failed)."""
        return await eventually(
            lambda: self.get(media_id),
            lambda m: m.status in (media_pb2.MEDIA_STATUS_READY, media_pb2.MEDIA_STATUS_FAILED),
            timeout=30,
        )


@pytest.fixture
def new_client(media: media_pb2_grpc.MediaServiceStub) -> Callable[[], Client]:
    """A factory of clients, each acting as a fresh random user."""

    def make() -> Client:
        return Client(media, uuid.uuid4())

    return make
