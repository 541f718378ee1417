"""Joins what services return with the public profiles of the people in it.

One batched GetUsers per page, never one call per item. Content whose author is not
returned (a deleted account) is left out, so it vanishes from every read at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.schemas.posts import CommentOut, FeedEntryOut, PostOut
from gateway.upstreams import AuthClient
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2


async def authors(auth: AuthClient, user_ids: Iterable[str]) -> dict[str, auth_pb2.User]:
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return {}
    answer = await auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=wanted))
    return {user.id: user for user in answer.users}


async def posts(auth: AuthClient, items: Sequence[feed_pb2.Post]) -> list[PostOut]:
    people = await authors(auth, (p.author_id for p in items))
    return [PostOut.from_proto(p, people[p.author_id]) for p in items if p.author_id in people]


async def feed_entries(
    auth: AuthClient, entries: Sequence[feed_pb2.FeedEntry]
) -> list[FeedEntryOut]:
    people = await authors(auth, (e.post.author_id for e in entries))
    return [
        FeedEntryOut.from_proto(e.post, people[e.post.author_id], score=e.score)
        for e in entries
        if e.post.author_id in people
    ]


async def comments(auth: AuthClient, items: Sequence[feed_pb2.Comment]) -> list[CommentOut]:
    people = await authors(auth, (c.author_id for c in items))
    return [CommentOut.from_proto(c, people[c.author_id]) for c in items if c.author_id in people]
