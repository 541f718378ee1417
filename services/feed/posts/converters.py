"""Rows to protobuf messages."""

from __future__ import annotations

from services.feed.models import Comment
from services.feed.posts.repository import ViewedPost
from zap.feed.v1 import feed_pb2
from zapcore.timestamps import to_timestamp


def post_to_proto(viewed: ViewedPost) -> feed_pb2.Post:
    post = viewed.post
    return feed_pb2.Post(
        id=str(post.id),
        author_id=str(post.author_id),
        content=post.content,
        hashtags=list(post.hashtags),
        mention_ids=[str(m) for m in post.mention_ids],
        media_ids=[str(m) for m in post.media_ids],
        parent_post_id=str(post.parent_post_id) if post.parent_post_id else "",
        like_count=post.like_count,
        comment_count=post.comment_count,
        share_count=post.share_count,
        created_at=to_timestamp(post.created_at),
        visibility=post.visibility,  # type: ignore[arg-type]
        liked_by_viewer=viewed.liked,
        shared_by_viewer=viewed.shared,
    )


def comment_to_proto(comment: Comment) -> feed_pb2.Comment:
    return feed_pb2.Comment(
        id=str(comment.id),
        post_id=str(comment.post_id),
        author_id=str(comment.author_id),
        content=comment.content,
        mention_ids=[str(m) for m in comment.mention_ids],
        created_at=to_timestamp(comment.created_at),
        visibility=comment.visibility,  # type: ignore[arg-type]
    )
