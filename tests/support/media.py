"""Images made to order (honest, hostile, lying), real uploads through presigned POSTs, and
a look inside the embedded store."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from PIL import Image

from services.media.object_store import ObjectStore
from services.media.settings import MediaSettings
from tests.factories import TestUser
from tests.support.waiting import eventually

GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F


def jpeg_with_gps(width: int = 1600, height: int = 1200) -> bytes:
    """A photo carrying GPS coordinates, a camera make, a comment and orientation 6 (the
    camera was turned: the picture must come back rotated, height x width)."""
    image = Image.new("RGB", (width, height))
    # Something other than flat colour, so encoders do real work.
    image.paste((220, 40, 40), (0, 0, width // 2, height // 2))
    image.paste((40, 40, 220), (width // 2, height // 2, width, height))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "Spy Camera Inc."
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 1.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, comment=b"taken at home", quality=90)
    return buffer.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 200, 10, 128)).save(buffer, "PNG")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A ~100-byte PNG whose header declares `width` x `height` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_bomb_behind_padding(width: int = 30_000, height: int = 30_000) -> bytes:
    """A JPEG whose frame header, declaring `width` x `height`, sits after 120 KiB of comment
    segments: the completion check (which reads the first 64 KiB) cannot see it, the
    worker must refuse it."""
    small = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(small, "JPEG")
    data = small.getvalue()
    padding = b"".join(b"\xff\xfe" + struct.pack(">H", 60_002) + b"x" * 60_000 for _ in range(2))
    data = data[:2] + padding + data[2:]
    sof = data.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2).
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


TEXT_FILE = b"#!/bin/sh\necho this is not a picture\n" * 20


async def upload(
    http: httpx.AsyncClient,
    url: str,
    fields: Mapping[str, str],
    content: bytes,
    *,
    content_type: str | None = None,
    filename: str = "photo.jpg",
) -> httpx.Response:
    """Send a file as a browser form would: the presigned fields, then the file last."""
    form = dict(fields)
    if content_type is not None:
        form["Content-Type"] = content_type
    answer = await http.post(
        url,
        data=form,
        files={"file": (filename, content, form.get("Content-Type", "application/octet-stream"))},
    )
    assert answer.status_code in (200, 201, 204), answer.text
    return answer


# Through the gateway, as a client does it.


async def presign(
    client: httpx.AsyncClient, user: TestUser, mime_type: str, size: int
) -> httpx.Response:
    return await client.post(
        "/api/v1/media/presign/",
        json={"mime_type": mime_type, "file_size_bytes": size},
        headers=user.headers,
    )


async def uploaded(
    client: httpx.AsyncClient, user: TestUser, content: bytes, mime_type: str = "image/jpeg"
) -> dict[str, Any]:
    """Presign, upload and complete; the media as the complete call returned it."""
    answer = await presign(client, user, mime_type, len(content))
    assert answer.status_code == 201, answer.text
    target = answer.json()["upload"]
    async with httpx.AsyncClient(timeout=30) as browser:
        await upload(browser, target["url"], target["fields"], content)
    done = await client.post(
        f"/api/v1/media/{answer.json()['media_id']}/complete/", headers=user.headers
    )
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def ready(client: httpx.AsyncClient, user: TestUser, media_id: str) -> dict[str, Any]:
    """The media once processed (it must come out ready)."""

    async def probe() -> dict[str, Any]:
        answer = await client.get(f"/api/v1/media/{media_id}/", headers=user.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    media = await eventually(probe, lambda m: m["status"] in ("ready", "failed"), timeout=30)
    assert media["status"] == "ready", media
    return media


@asynccontextmanager
async def store_of(settings: MediaSettings) -> AsyncIterator[ObjectStore]:
    """The media service's own bucket, opened as the service opens it."""
    store = ObjectStore(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def keys_of(store: ObjectStore, owner_id: str) -> list[str]:
    """Every object the owner has in the bucket (raw uploads and variants)."""
    return [
        *await store.keys(f"uploads/{owner_id}/"),
        *await store.keys(f"media/{owner_id}/"),
    ]


def metadata_of(data: bytes) -> dict[str, object]:
    """What a stored image still carries besides its pixels."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        return {
            "exif": dict(exif),
            "gps": dict(exif.get_ifd(GPS_IFD)),
            "icc_profile": image.info.get("icc_profile"),
            "comment": image.info.get("comment"),
            "xmp": image.info.get("xmp"),
            "size": image.size,
            "format": image.format,
        }
