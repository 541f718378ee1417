"""/api/v1/media/: presigned uploads, their completion, and the media they become."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from gateway.deps import CurrentUser, MediaStub
from gateway.schemas.common import ObjectIdPath
from gateway.schemas.media import MediaOut, PresignIn, PresignOut
from zap.media.v1 import media_pb2

router = APIRouter(prefix="/api/v1/media", tags=["media"])

MediaId = Annotated[str, ObjectIdPath]


@router.post(
    "/presign/",
    status_code=status.HTTP_201_CREATED,
    summary="Start an upload",
    description="Checks type and size, records a pending upload and returns a presigned "
    "POST: send its `fields` and then the file (as `file`) to its `url` before it expires, "
    "then call `complete`.",
)
async def presign(body: PresignIn, user: CurrentUser, media: MediaStub) -> PresignOut:
    answer = await media.Presign(
        media_pb2.PresignRequest(mime_type=body.mime_type, file_size_bytes=body.file_size_bytes)
    )
    return PresignOut.from_proto(answer)


@router.post(
    "/{media_id}/complete/",
    summary="Finish an upload",
    description="Checks the stored file (its real size and type) and queues processing; "
    "calling it again is harmless. Poll `GET /media/{id}/` until it is ready.",
)
async def complete(media_id: MediaId, user: CurrentUser, media: MediaStub) -> MediaOut:
    answer = await media.CompleteUpload(media_pb2.CompleteUploadRequest(media_id=media_id))
    return MediaOut.from_proto(answer.media)


@router.get("/{media_id}/", summary="An upload: its status and, once ready, its variant URLs")
async def get_media(media_id: MediaId, user: CurrentUser, media: MediaStub) -> MediaOut:
    answer = await media.GetMedia(media_pb2.GetMediaRequest(media_id=media_id))
    return MediaOut.from_proto(answer.media)
