"""MediaService over gRPC: decode the request, call the domain code, encode the answer."""

from __future__ import annotations

import uuid
from typing import Any

from services.media.library.converters import media_to_proto
from services.media.library.reading import Reading
from services.media.resources import MediaResources
from services.media.uploads.service import Uploads
from zap.media.v1 import media_pb2, media_pb2_grpc
from zapcore.identity import current_identity, require_user_id
from zapcore.timestamps import to_timestamp

Context = Any  # grpc.aio.ServicerContext; the interceptor has already bound identity and trace


class MediaServicer(media_pb2_grpc.MediaServiceServicer):
    def __init__(self, resources: MediaResources) -> None:
        self._r = resources
        self._uploads = Uploads(resources)
        self._reading = Reading(resources)

    def _proto(self, media: Any) -> media_pb2.Media:
        return media_to_proto(media, self._r.public_base_url)

    async def Presign(
        self, request: media_pb2.PresignRequest, context: Context
    ) -> media_pb2.PresignResponse:
        media, upload = await self._uploads.presign(
            require_user_id(), request.mime_type, request.file_size_bytes
        )
        return media_pb2.PresignResponse(
            media=self._proto(media),
            upload=media_pb2.PresignedUpload(
                url=upload.url, fields=upload.fields, expires_at=to_timestamp(upload.expires_at)
            ),
        )

    async def CompleteUpload(
        self, request: media_pb2.CompleteUploadRequest, context: Context
    ) -> media_pb2.CompleteUploadResponse:
        media = await self._uploads.complete(require_user_id(), request.media_id)
        return media_pb2.CompleteUploadResponse(media=self._proto(media))

    async def GetMedia(
        self, request: media_pb2.GetMediaRequest, context: Context
    ) -> media_pb2.GetMediaResponse:
        media = await self._reading.media(request.media_id, _viewer())
        return media_pb2.GetMediaResponse(media=self._proto(media))

    async def GetMedias(
        self, request: media_pb2.GetMediasRequest, context: Context
    ) -> media_pb2.GetMediasResponse:
        medias = await self._reading.medias(list(request.media_ids), _viewer())
        return media_pb2.GetMediasResponse(medias=medias)

    async def ExportUserData(
        self, request: media_pb2.ExportUserDataRequest, context: Context
    ) -> media_pb2.ExportUserDataResponse:
        medias = await self._reading.owned_by(require_user_id())
        return media_pb2.ExportUserDataResponse(medias=[self._proto(m) for m in medias])


def _viewer() -> uuid.UUID | None:
    identity = current_identity()
    return identity.user_id if identity is not None else None
