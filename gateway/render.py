"""JSON for the hottest reads straight from the protobuf answers, rendered by orjson.

Building pydantic models for a page and then having FastAPI validate and serialise them
again costs more CPU than the rest of the gateway's work on a read. These functions give the
same documents as the models in gateway.schemas (tests/gateway/test_render.py holds them
equal for every field), and the routes that use them still declare the models as their
response schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import Response
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.schemas.auth import ROLE_NAMES
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.media.v1 import media_pb2

# "Z" for UTC, as pydantic writes it.
_OPTIONS = orjson.OPT_UTC_Z


def when(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1)
# 0001-01-01 and 9999-12-31T23:59:59: the range of a datetime, and of a valid Timestamp.
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799
# Whole second -> "YYYY-MM-DDTHH:MM:SS". The same posts are read by many readers, so their
# seconds repeat; the cache is emptied when full rather than kept in order (cheaper).
_SECONDS: dict[int, str] = {}
_SECONDS_KEPT = 65_536


def when_text(stamp: Timestamp) -> str:
    """The time as pydantic and orjson write `when(stamp)` ("...T11:52:20.851559Z"; no
    fraction on a whole second), built from its seconds and nanos: `ToDatetime` is pure
    Python and runs once per timestamp of every page. Out of range: ValueError, as
    `ToDatetime` raises."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (_FIRST_SECOND <= seconds <= _LAST_SECOND and 0 <= nanos < 1_000_000_000):
        raise ValueError(f"Timestamp is not valid: {seconds} s {nanos} ns is out of range")
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        prefix = _SECONDS[seconds] = (_EPOCH + timedelta(seconds=seconds)).isoformat()
    micros = nanos // 1000  # truncated, as ToDatetime does
    return f"{prefix}.{micros:06d}Z" if micros else prefix + "Z"


def author(user: auth_pb2.User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
    }


def account(item: auth_pb2.Account) -> dict[str, Any]:
    """`AccountOut`'s document."""
    user = item.user
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "bio": user.bio,
        "avatar_url": user.avatar_url,
        "created_at": when_text(user.created_at),
        "email": item.email,
        "role": ROLE_NAMES.get(item.role, "user"),
    }


def post_media(media: media_pb2.Media) -> dict[str, Any]:
    return {
        "id": media.id,
        "mime_type": media.mime_type,
        "variants": {
            v.name: {
                "url": v.url,
                "mime_type": v.mime_type,
                "width": v.width,
                "height": v.height,
                "size_bytes": v.size_bytes,
            }
            for v in media.variants
        },
    }


def post(
    item: feed_pb2.Post, user: auth_pb2.User, media: Mapping[str, media_pb2.Media]
) -> dict[str, Any]:
    return {
        "id": item.id,
        "author": author(user),
        "content": item.content,
        "hashtags": list(item.hashtags),
        "mention_ids": list(item.mention_ids),
        "media_ids": list(item.media_ids),
        "media": [post_media(media[m]) for m in item.media_ids if m in media],
        "parent_post_id": item.parent_post_id or None,
        "like_count": item.like_count,
        "comment_count": item.comment_count,
        "share_count": item.share_count,
        "liked": item.liked_by_viewer,
        "shared": item.shared_by_viewer,
        "created_at": when_text(item.created_at),
    }


def feed_entry(
    entry: feed_pb2.FeedEntry, user: auth_pb2.User, media: Mapping[str, media_pb2.Media]
) -> dict[str, Any]:
    body = post(entry.post, user, media)
    body["score"] = entry.score
    return body


def json_response(body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=_OPTIONS), media_type="application/json", headers=headers
    )
