"""Media named by the CDN URLs the media API returned, turned back into media ids.

A variant URL ends in `media/<owner id>/<media id>/<variant>.<ext>`; the id is read from
there and the URL must then be exactly one of the URLs media gives for that id, so a made-up
URL is refused instead of silently naming some other upload. Whether the media is the
author's own and ready is feed's rule (CreatePost checks it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from gateway.problems import Problem
from gateway.upstreams import MediaClient
from zap.media.v1 import media_pb2

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_VARIANT_PATH = re.compile(rf"/media/{_UUID}/(?P<media_id>{_UUID})/[a-z]+\.[a-z0-9]+$")


def _refused(url: str, why: str) -> Problem:
    return Problem(
        422,
        "media-url-unknown",
        "Invalid request",
        f"{url[:200]} {why}",
        fields={"media_urls": f"{why}: {url[:200]}"},
    )


def media_id_in(url: str) -> str | None:
    """The media id a variant URL names, if it has the shape of one."""
    match = _VARIANT_PATH.search(urlsplit(url).path)
    return match.group("media_id").lower() if match else None


async def media_ids_for(media: MediaClient, urls: Sequence[str]) -> list[str]:
    """The media ids of `urls`, in order, each checked against what media answers."""
    if not urls:
        return []
    named: list[tuple[str, str]] = []
    for url in urls:
        media_id = media_id_in(url)
        if media_id is None:
            raise _refused(url, "is not a media URL")
        named.append((url, media_id))
    ids = list(dict.fromkeys(media_id for _, media_id in named))
    answer = await media.GetMedias(media_pb2.GetMediasRequest(media_ids=ids))
    urls_of = {m.id: {v.url for v in m.variants} for m in answer.medias}
    for url, media_id in named:
        if url not in urls_of.get(media_id, set()):
            raise _refused(url, "is not the URL of a ready upload")
    return ids
