"""Media records to protobuf messages, with variant URLs on the public (CDN) base URL."""

from __future__ import annotations

from services.media.models import Media, MediaStatus, MediaVariant
from services.media.processing.images import VARIANT_ORDER
from zap.media.v1 import media_pb2
from zapcore.timestamps import to_timestamp

STATUS_TO_PROTO = {
    MediaStatus.PENDING.value: media_pb2.MEDIA_STATUS_PENDING,
    MediaStatus.PROCESSING.value: media_pb2.MEDIA_STATUS_PROCESSING,
    MediaStatus.READY.value: media_pb2.MEDIA_STATUS_READY,
    MediaStatus.FAILED.value: media_pb2.MEDIA_STATUS_FAILED,
}


def variant_url(public_base_url: str, key: str) -> str:
    return f"{public_base_url}/{key}"


def _order(variant: MediaVariant) -> int:
    return VARIANT_ORDER.index(variant.name) if variant.name in VARIANT_ORDER else 99


def media_to_proto(media: Media, public_base_url: str) -> media_pb2.Media:
    """`media` must have its variants loaded."""
    ready = media.status == MediaStatus.READY.value
    return media_pb2.Media(
        id=str(media.id),
        owner_id=str(media.owner_id),
        mime_type=media.mime_type,
        size_bytes=media.size_bytes if media.size_bytes is not None else media.declared_size_bytes,
        status=STATUS_TO_PROTO[media.status],
        failure_reason=(media.failure_reason or "") if media.status == MediaStatus.FAILED else "",
        variants=[
            media_pb2.Variant(
                name=v.name,
                url=variant_url(public_base_url, v.key),
                mime_type=v.mime_type,
                width=v.width,
                height=v.height,
                size_bytes=v.size_bytes,
            )
            for v in sorted(media.variants, key=_order)
        ]
        if ready
        else [],
        created_at=to_timestamp(media.created_at),
    )
