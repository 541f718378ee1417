"""Posts, comments and feed entries as the public API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, Field

from gateway.schemas.common import Page, StrictBody, when
from gateway.schemas.media import PostMediaOut
from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zap.media.v1 import media_pb2


class AuthorOut(BaseModel):
    id: str
    username: str
    display_name: str
    avatar_url: str

    @classmethod
    def from_proto(cls, user: auth_pb2.User) -> AuthorOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            avatar_url=user.avatar_url,
        )


class PostOut(BaseModel):
    id: str
    author: AuthorOut
    content: str
    hashtags: list[str]
    mention_ids: list[str]
    media_ids: list[str]
    media: list[PostMediaOut] = Field(
        description="The attached images with their variant URLs, in order."
    )
    parent_post_id: str | None
    like_count: int
    comment_count: int
    share_count: int
    liked: bool
    shared: bool
    created_at: datetime

    @classmethod
    def from_proto(
        cls,
        post: feed_pb2.Post,
        author: auth_pb2.User,
        media: Mapping[str, media_pb2.Media] | None = None,
        **extra: object,
    ) -> Self:
        found = media or {}
        return cls(
            **extra,
            id=post.id,
            author=AuthorOut.from_proto(author),
            content=post.content,
            hashtags=list(post.hashtags),
            mention_ids=list(post.mention_ids),
            media_ids=list(post.media_ids),
            media=[PostMediaOut.from_proto(found[m]) for m in post.media_ids if m in found],
            parent_post_id=post.parent_post_id or None,
            like_count=post.like_count,
            comment_count=post.comment_count,
            share_count=post.share_count,
            liked=post.liked_by_viewer,
            shared=post.shared_by_viewer,
            created_at=when(post.created_at),
        )


class FeedEntryOut(PostOut):
    score: float


class HomeFeedPage(Page[FeedEntryOut]):
    degraded: bool = Field(
        default=False,
        description="True when the feed database could not answer and the page came from the "
        "cache: same ranking and filters, but counts may be minutes old, `liked`/`shared` are "
        "unknown (false) and posts no longer cached are left out. Also sent as the "
        "`Zap-Degraded: true` header.",
    )


class CommentOut(BaseModel):
    id: str
    post_id: str
    author: AuthorOut
    content: str
    created_at: datetime

    @classmethod
    def from_proto(cls, comment: feed_pb2.Comment, author: auth_pb2.User) -> CommentOut:
        return cls(
            id=comment.id,
            post_id=comment.post_id,
            author=AuthorOut.from_proto(author),
            content=comment.content,
            created_at=when(comment.created_at),
        )


class LikeOut(BaseModel):
    liked: bool
    like_count: int


class TrendingHashtagOut(BaseModel):
    hashtag: str
    post_count: int


Hashtag = Annotated[str, Field(min_length=1, max_length=65)]
Id = Annotated[str, Field(min_length=1, max_length=64)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


class PostIn(StrictBody):
    content: Annotated[str, Field(max_length=20_000)]
    hashtags: Annotated[list[Hashtag], Field(max_length=50)] = []
    media_ids: Annotated[list[Id], Field(max_length=10)] = []
    # The CDN URLs the media API returned; they name the same uploads as media_ids.
    media_urls: Annotated[list[Url], Field(max_length=10)] = []
    parent_post_id: Id | None = None


class CommentIn(StrictBody):
    content: Annotated[str, Field(max_length=20_000)]
