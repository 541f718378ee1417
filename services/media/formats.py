"""The image types media accepts: MIME types, magic bytes, Pillow formats, file extensions."""

from __future__ import annotations

from typing import get_args

from services.media.settings import ImageType

KINDS: tuple[ImageType, ...] = get_args(ImageType)
MIME_TYPES: dict[ImageType, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}
KIND_OF_MIME: dict[str, ImageType] = {mime: kind for kind, mime in MIME_TYPES.items()}
PILLOW_FORMATS: dict[ImageType, str] = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
}
EXTENSIONS: dict[ImageType, str] = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}
# Enough leading bytes to recognise every accepted type.
MAGIC_BYTES_NEEDED = 12


def sniff(head: bytes) -> ImageType | None:
    """The image type the file's first bytes announce, whatever its name or declared type."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None
