"""FeedService over gRPC: decode the request, call the domain code, encode the answer."""

from __future__ import annotations

import uuid
from typing import Any

from services.feed.posts.converters import comment_to_proto, post_to_proto
from services.feed.posts.export import export_user_data
from services.feed.posts.moderation import apply_moderation
from services.feed.posts.posting import Posting
from services.feed.posts.reading import Reading
from services.feed.posts.repository import ViewedPost
from services.feed.resources import FeedResources
from services.feed.timeline.home import HomeFeed
from zap.common.v1 import common_pb2
from zap.feed.v1 import feed_pb2, feed_pb2_grpc
from zapcore.errors import PermissionDenied
from zapcore.identity import current_identity, require_user_id
from zapcore.pagination import page_limit

Context = Any  # grpc.aio.ServicerContext; the interceptor has already bound identity and trace


def _viewer() -> uuid.UUID | None:
    identity = current_identity()
    return identity.user_id if identity is not None else None


class FeedServicer(feed_pb2_grpc.FeedServiceServicer):
    def __init__(self, resources: FeedResources) -> None:
        self._r = resources
        self._posting = Posting(resources)
        self._reading = Reading(resources)
        self._home = HomeFeed(resources)

    async def CreatePost(
        self, request: feed_pb2.CreatePostRequest, context: Context
    ) -> feed_pb2.CreatePostResponse:
        post = await self._posting.create_post(
            require_user_id(),
            request.content,
            list(request.hashtags),
            list(request.media_ids),
            request.parent_post_id,
        )
        return feed_pb2.CreatePostResponse(post=post_to_proto(ViewedPost(post)))

    async def GetPost(
        self, request: feed_pb2.GetPostRequest, context: Context
    ) -> feed_pb2.GetPostResponse:
        post = await self._reading.post(request.post_id, _viewer())
        await self._r.presentation.attach([post])
        return feed_pb2.GetPostResponse(post=post)

    async def GetPosts(
        self, request: feed_pb2.GetPostsRequest, context: Context
    ) -> feed_pb2.GetPostsResponse:
        posts = await self._reading.posts(list(request.post_ids), _viewer())
        await self._r.presentation.attach(posts)
        return feed_pb2.GetPostsResponse(posts=posts)

    async def DeletePost(
        self, request: feed_pb2.DeletePostRequest, context: Context
    ) -> feed_pb2.DeletePostResponse:
        await self._posting.delete_post(request.post_id, require_user_id())
        return feed_pb2.DeletePostResponse()

    async def LikePost(
        self, request: feed_pb2.LikePostRequest, context: Context
    ) -> feed_pb2.LikePostResponse:
        count = await self._posting.like(request.post_id, require_user_id(), liked=True)
        return feed_pb2.LikePostResponse(like_count=count)

    async def UnlikePost(
        self, request: feed_pb2.UnlikePostRequest, context: Context
    ) -> feed_pb2.UnlikePostResponse:
        count = await self._posting.like(request.post_id, require_user_id(), liked=False)
        return feed_pb2.UnlikePostResponse(like_count=count)

    async def CreateComment(
        self, request: feed_pb2.CreateCommentRequest, context: Context
    ) -> feed_pb2.CreateCommentResponse:
        comment = await self._posting.comment(request.post_id, require_user_id(), request.content)
        created = comment_to_proto(comment)
        await self._r.authors.attach([created])
        return feed_pb2.CreateCommentResponse(comment=created)

    async def ListComments(
        self, request: feed_pb2.ListCommentsRequest, context: Context
    ) -> feed_pb2.ListCommentsResponse:
        page = await self._reading.comments(
            request.post_id, _viewer(), request.page.cursor, request.page.limit
        )
        return feed_pb2.ListCommentsResponse(
            comments=await self._r.authors.shown([comment_to_proto(c) for c in page.items]),
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def SharePost(
        self, request: feed_pb2.SharePostRequest, context: Context
    ) -> feed_pb2.SharePostResponse:
        viewed = await self._posting.share(request.post_id, require_user_id())
        return feed_pb2.SharePostResponse(post=post_to_proto(viewed))

    async def GetHomeFeed(
        self, request: feed_pb2.GetHomeFeedRequest, context: Context
    ) -> feed_pb2.GetHomeFeedResponse:
        page = await self._home.read(require_user_id(), request.page.cursor, request.page.limit)
        return feed_pb2.GetHomeFeedResponse(
            entries=page.items,
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
            degraded=page.degraded,
        )

    async def GetUserPosts(
        self, request: feed_pb2.GetUserPostsRequest, context: Context
    ) -> feed_pb2.GetUserPostsResponse:
        page = await self._reading.user_posts(
            request.user_id, _viewer(), request.page.cursor, request.page.limit
        )
        posts = page.items
        await self._r.presentation.attach(posts)
        return feed_pb2.GetUserPostsResponse(
            posts=posts,
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def GetExplore(
        self, request: feed_pb2.GetExploreRequest, context: Context
    ) -> feed_pb2.GetExploreResponse:
        viewer, cursor, limit = _viewer(), request.page.cursor, request.page.limit
        if request.hashtag:
            page = await self._reading.hashtag(request.hashtag, viewer, cursor, limit)
        else:
            page = await self._reading.trending(viewer, cursor, limit)
        posts = page.items
        await self._r.presentation.attach(posts)
        return feed_pb2.GetExploreResponse(
            posts=posts,
            page=common_pb2.PageInfo(next_cursor=page.next_cursor),
        )

    async def ListTrendingHashtags(
        self, request: feed_pb2.ListTrendingHashtagsRequest, context: Context
    ) -> feed_pb2.ListTrendingHashtagsResponse:
        tags = await self._reading.trending_hashtags(page_limit(request.limit))
        return feed_pb2.ListTrendingHashtagsResponse(
            hashtags=[feed_pb2.TrendingHashtag(hashtag=t, post_count=n) for t, n in tags]
        )

    async def SetModerationState(
        self, request: feed_pb2.SetModerationStateRequest, context: Context
    ) -> feed_pb2.SetModerationStateResponse:
        identity = current_identity()
        if identity is None or identity.service != "moderation":
            raise PermissionDenied(
                "only the moderation service may change moderation state",
                reason="moderation-service-only",
            )
        # What readers now see, which is not what a score asked for when a human decided.
        await apply_moderation(self._r, request)
        return feed_pb2.SetModerationStateResponse()

    async def ExportUserData(
        self, request: feed_pb2.ExportUserDataRequest, context: Context
    ) -> feed_pb2.ExportUserDataResponse:
        return await export_user_data(self._r, require_user_id())
