"""Uploads and media as the public API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.schemas.common import StrictBody, when
from zap.media.v1 import media_pb2

STATUS_NAMES = {
    media_pb2.MEDIA_STATUS_PENDING: "pending",
    media_pb2.MEDIA_STATUS_PROCESSING: "processing",
    media_pb2.MEDIA_STATUS_READY: "ready",
    media_pb2.MEDIA_STATUS_FAILED: "failed",
}
MediaStatusName = Literal["pending", "processing", "ready", "failed"]


class PresignIn(StrictBody):
    mime_type: Annotated[str, Field(min_length=1, max_length=100, examples=["image/jpeg"])] = Field(
        description="image/jpeg, image/png, image/webp or image/gif"
    )
    file_size_bytes: Annotated[int, Field(ge=0, le=2**53, examples=[204800])] = Field(
        description="The exact size of the file; the store refuses a larger upload."
    )


class VariantOut(BaseModel):
    url: str
    mime_type: str
    width: int
    height: int
    size_bytes: int

    @classmethod
    def from_proto(cls, variant: media_pb2.Variant) -> VariantOut:
        return cls(
            url=variant.url,
            mime_type=variant.mime_type,
            width=variant.width,
            height=variant.height,
            size_bytes=variant.size_bytes,
        )


def variants_of(media: media_pb2.Media) -> dict[str, VariantOut]:
    return {v.name: VariantOut.from_proto(v) for v in media.variants}


class MediaOut(BaseModel):
    id: str
    owner_id: str
    mime_type: str
    size_bytes: int
    status: MediaStatusName
    failure_reason: str | None = Field(description="Why the upload was refused, when failed.")
    variants: dict[str, VariantOut] = Field(
        description='When ready: "thumbnail" (320 px), "medium" (1080 px), "original" '
        "(full size), each re-encoded without metadata, on the CDN."
    )
    created_at: datetime

    @classmethod
    def from_proto(cls, media: media_pb2.Media) -> MediaOut:
        return cls(
            id=media.id,
            owner_id=media.owner_id,
            mime_type=media.mime_type,
            size_bytes=media.size_bytes,
            status=STATUS_NAMES.get(media.status, "pending"),
            failure_reason=media.failure_reason or None,
            variants=variants_of(media),
            created_at=when(media.created_at),
        )


class UploadOut(BaseModel):
    """A browser-form upload: POST multipart/form-data to `url` with every one of `fields`,
    then the file last, as `file`."""

    url: str
    method: Literal["POST"] = "POST"
    fields: dict[str, str]
    file_field: Literal["file"] = "file"
    expires_at: datetime


class PresignOut(BaseModel):
    media_id: str
    upload: UploadOut
    media: MediaOut

    @classmethod
    def from_proto(cls, answer: media_pb2.PresignResponse) -> PresignOut:
        return cls(
            media_id=answer.media.id,
            upload=UploadOut(
                url=answer.upload.url,
                fields=dict(answer.upload.fields),
                expires_at=when(answer.upload.expires_at),
            ),
            media=MediaOut.from_proto(answer.media),
        )


class PostMediaOut(BaseModel):
    """An image attached to a post."""

    id: str
    mime_type: str
    variants: dict[str, VariantOut]

    @classmethod
    def from_proto(cls, media: media_pb2.Media) -> PostMediaOut:
        return cls(id=media.id, mime_type=media.mime_type, variants=variants_of(media))
