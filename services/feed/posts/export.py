"""Everything feed holds about one user, for the GDPR export."""

from __future__ import annotations

import uuid

from services.feed.posts.converters import comment_to_proto, post_to_proto
from services.feed.posts.repository import PostRepository, ViewedPost
from services.feed.resources import FeedResources
from zap.feed.v1 import feed_pb2


async def export_user_data(
    resources: FeedResources, user_id: uuid.UUID
) -> feed_pb2.ExportUserDataResponse:
    async with resources.db.read_only() as session:
        repository = PostRepository(session)
        return feed_pb2.ExportUserDataResponse(
            posts=[post_to_proto(ViewedPost(p)) for p in await repository.posts_by(user_id)],
            comments=[comment_to_proto(c) for c in await repository.comments_by(user_id)],
            liked_post_ids=[str(p) for p in await repository.liked_by(user_id)],
            shared_post_ids=[str(p) for p in await repository.shared_by(user_id)],
        )
