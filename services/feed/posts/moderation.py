"""Moderation outcomes applied to posts and comments (visibility and trust penalty)."""

from __future__ import annotations

from services.feed.models import Comment, Post
from services.feed.posts.repository import PostRepository, changed_posts
from services.feed.resources import FeedResources
from zap.common.v1 import common_pb2
from zap.feed.v1 import feed_pb2
from zapcore.db import after_commit
from zapcore.errors import InvalidArgument, NotFound
from zapcore.ids import parse_id

_VISIBILITIES = {
    common_pb2.VISIBILITY_VISIBLE,
    common_pb2.VISIBILITY_SHADOW_BANNED,
    common_pb2.VISIBILITY_REMOVED,
}


async def apply_moderation(
    resources: FeedResources, request: feed_pb2.SetModerationStateRequest
) -> int:
    """The content's visibility once the outcome is applied. Idempotent: the same outcome
    applied again changes nothing; a score never overrides a human's decision
    (`PostRepository.set_moderation`)."""
    content_id = parse_id(request.content_id, "content_id")
    if request.visibility not in _VISIBILITIES:
        raise InvalidArgument("visibility is required", fields={"visibility": "required"})
    if request.HasField("moderation_score") and not 0 <= request.moderation_score <= 1:
        raise InvalidArgument(
            "moderation_score must be within [0, 1]", fields={"moderation_score": "0..1"}
        )
    if request.content_kind == feed_pb2.CONTENT_KIND_POST:
        table: type[Post] | type[Comment] = Post
    elif request.content_kind == feed_pb2.CONTENT_KIND_COMMENT:
        table = Comment
    else:
        raise InvalidArgument("content_kind is required", fields={"content_kind": "required"})
    values: dict[str, object] = {
        "visibility": int(request.visibility),
        "moderation_source_id": request.source_id or None,
    }
    if request.HasField("moderation_score"):
        values["moderation_score"] = request.moderation_score
    async with resources.db.unit_of_work() as session:
        visibility = await PostRepository(session).set_moderation(
            table, content_id, values, request.source_id
        )
        changed = changed_posts(session)
        after_commit(session, lambda: resources.cards.after_change(floors=changed, strict=True))
    if visibility is None:
        raise NotFound("content not found", reason="content-not-found")
    return visibility
