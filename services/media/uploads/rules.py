"""What an upload must be, before it is signed and once it is stored. Pure: no I/O.

The client's word (declared type and size) decides what is signed; what is accepted is
decided by the stored object itself: its real size, its Content-Type, its magic bytes and
the dimensions its header declares.
"""

from __future__ import annotations

from services.media.formats import KIND_OF_MIME, MIME_TYPES, sniff
from services.media.object_store import StoredObject
from services.media.processing.images import ImageRejected, Limits, header_size
from services.media.settings import ImageType, MediaSettings
from zapcore.errors import InvalidArgument


class UploadRefused(Exception):
    """The stored upload is not acceptable; `reason` is a stable slug, `detail` for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def allowed_kind(mime_type: str, settings: MediaSettings) -> ImageType:
    kind = KIND_OF_MIME.get(mime_type.strip().lower())
    if kind is None or kind not in settings.allowed_types:
        accepted = ", ".join(MIME_TYPES[k] for k in settings.allowed_types)
        raise InvalidArgument(
            f"{mime_type[:64]!r} is not an accepted type ({accepted})",
            reason="unsupported-media-type",
            fields={"mime_type": f"one of {accepted}"},
        )
    return kind


def check_declared_size(kind: ImageType, size: int, settings: MediaSettings) -> None:
    limit = settings.max_bytes(kind)
    if size < 1:
        raise InvalidArgument(
            "file_size_bytes must be positive", fields={"file_size_bytes": "must be at least 1"}
        )
    if size > limit:
        raise InvalidArgument(
            f"{MIME_TYPES[kind]} uploads are limited to {limit} bytes",
            reason="file-too-large",
            fields={"file_size_bytes": f"at most {limit} for {MIME_TYPES[kind]}"},
        )


def check_stored(kind: ImageType, declared_size: int, stored: StoredObject, limit: int) -> None:
    """The object's real size and Content-Type against what was signed."""
    if stored.size < 1:
        raise UploadRefused("empty-upload", "the uploaded file is empty")
    if stored.size > declared_size or stored.size > limit:
        raise UploadRefused(
            "upload-too-large",
            f"the uploaded file has {stored.size} bytes, more than the {declared_size} declared",
        )
    declared = MIME_TYPES[kind]
    if stored.content_type.split(";")[0].strip().lower() != declared:
        raise UploadRefused(
            "content-type-mismatch",
            f"the upload was stored as {stored.content_type[:64]!r}, not {declared}",
        )


def check_head(kind: ImageType, head: bytes, limits: Limits) -> None:
    """The first bytes of the file: the type they announce, and the dimensions if visible."""
    found = sniff(head)
    if found is None:
        raise UploadRefused("not-an-image", "the uploaded file is not an image")
    if found != kind:
        raise UploadRefused(
            "type-mismatch",
            f"the uploaded file is {MIME_TYPES[found]}, not the {MIME_TYPES[kind]} declared",
        )
    try:
        header_size(head, kind, limits)
    except ImageRejected as rejected:
        raise UploadRefused(rejected.reason, rejected.detail) from None
