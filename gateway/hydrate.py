"""Joins what services return with the public profiles of the people in it and the images
attached to it.

One batched GetUsers and one batched GetMedias per page, never one call per item. Content
whose author is not returned (a deleted account) is left out, so it vanishes from every
read at once. Media that is not ready (or gone) is left out of `media`; if the media
service is down, posts are shown without their images rather than not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from gateway import render
from gateway.people import People
from gateway.schemas.notifications import NotificationOut
from gateway.schemas.posts import CommentOut, PostOut
from gateway.upstreams import AuthClient, MediaClient
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.media.v1 import media_pb2
from zap.notification.v1 import notification_pb2
from zapcore.logging import get_logger

log = get_logger(__name__)

# GetMedias answers at most this many ids per call.
MEDIA_BATCH = 100
_DEGRADED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


async def authors(auth: AuthClient, user_ids: Iterable[str]) -> dict[str, auth_pb2.User]:
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    answer = await auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=wanted))
    return {user.id: user for user in answer.users}


async def ready_media(media: MediaClient, media_ids: Iterable[str]) -> dict[str, media_pb2.Media]:
    """Ready media by id, in one call per 100 ids (a page of 20 posts: one call)."""
    wanted = list(dict.fromkeys(media_ids))
    if not wanted:
        return {}
    batches = [wanted[i : i + MEDIA_BATCH] for i in range(0, len(wanted), MEDIA_BATCH)]
    try:
        answers = await asyncio.gather(
            *(media.GetMedias(media_pb2.GetMediasRequest(media_ids=b)) for b in batches)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() not in _DEGRADED:
            raise
        log.warning("hydrate.media_unavailable", code=error.code().name)
        return {}
    return {
        m.id: m
        for answer in answers
        for m in answer.medias
        if m.status == media_pb2.MEDIA_STATUS_READY
    }


async def _people_and_media(
    auth: AuthClient, media: MediaClient, items: Sequence[feed_pb2.Post]
) -> tuple[dict[str, auth_pb2.User], dict[str, media_pb2.Media]]:
    """The posts' authors and ready images. Feed sends the authors' cards and the ready
    images it has; GetUsers and GetMedias only for posts without them (a gone account, media
    feed could not reach, or a feed not yet sending them during a rolling upgrade)."""
    people: dict[str, auth_pb2.User] = {}
    images: dict[str, media_pb2.Media] = {}
    missing: list[str] = []
    media_ids: list[str] = []
    for p in items:
        if p.HasField("author"):
            people[p.author_id] = p.author
        else:
            missing.append(p.author_id)
        if len(p.media) < len(p.media_ids):
            media_ids.extend(p.media_ids)
        images.update((m.id, m) for m in p.media)
    # Only the calls a page needs, and a task each only when there are two to overlap: a
    # page feed hydrated whole (the common read) makes neither.
    if missing and media_ids:
        found, asked = await asyncio.gather(authors(auth, missing), ready_media(media, media_ids))
    else:
        found = await authors(auth, missing) if missing else {}
        asked = await ready_media(media, media_ids) if media_ids else {}
    # What the feed sent wins over what the gateway found, as before.
    found.update(people)
    asked.update(images)
    return found, asked


async def posts(
    auth: AuthClient, media: MediaClient, items: Sequence[feed_pb2.Post]
) -> list[PostOut]:
    people, images = await _people_and_media(auth, media, items)
    return [
        PostOut.from_proto(p, people[p.author_id], images) for p in items if p.author_id in people
    ]


async def feed_entries(
    auth: AuthClient, media: MediaClient, entries: Sequence[feed_pb2.FeedEntry]
) -> list[dict[str, Any]]:
    """Rendered entries (gateway.render)."""
    people, images = await _people_and_media(auth, media, [e.post for e in entries])
    return [
        render.feed_entry(e, people[e.post.author_id], images)
        for e in entries
        if e.post.author_id in people
    ]


async def comments(auth: AuthClient, items: Sequence[feed_pb2.Comment]) -> list[CommentOut]:
    """Feed sends the authors' cards; GetUsers only for comments without one."""
    people = await authors(auth, (c.author_id for c in items if not c.HasField("author")))
    people.update((c.author_id, c.author) for c in items if c.HasField("author"))
    return [CommentOut.from_proto(c, people[c.author_id]) for c in items if c.author_id in people]


async def notifications(
    people: People, items: Sequence[notification_pb2.Notification]
) -> list[NotificationOut]:
    """Notifications with their actors' profiles. One whose every actor has since deleted
    their account says nothing any more and is left out (moderation ones have no actors)."""
    # A full page names up to 100 x 10 actors: their cards in one round trip.
    found = await people.get(actor for item in items for actor in item.actor_ids)
    return [
        NotificationOut.from_proto(item, found)
        for item in items
        if not item.actor_ids or any(actor in found for actor in item.actor_ids)
    ]
