"""/api/v1/posts/: posts, likes, comments and shares (feed service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gateway import hydrate, media_urls
from gateway.deps import AuthStub, CurrentUser, FeedStub, MediaStub, OptionalUser
from gateway.paging import PageParams, next_cursor
from gateway.problems import Problem
from gateway.schemas.common import ObjectIdPath, Page
from gateway.schemas.posts import CommentIn, CommentOut, LikeOut, PostIn, PostOut
from zap.feed.v1 import feed_pb2

router = APIRouter(prefix="/api/v1", tags=["posts"])

PostId = Annotated[str, ObjectIdPath]
UserId = Annotated[str, ObjectIdPath]


async def _one(auth: AuthStub, media: MediaStub, post: feed_pb2.Post) -> PostOut:
    shown = await hydrate.posts(auth, media, [post])
    if not shown:  # the author's account is gone
        raise Problem(404, "post-not-found", "Not found", "post not found")
    return shown[0]


@router.post("/posts/", status_code=status.HTTP_201_CREATED, summary="Publish a post")
async def create_post(
    body: PostIn, user: CurrentUser, feed: FeedStub, auth: AuthStub, media: MediaStub
) -> PostOut:
    # Uploads are named by id or by the URLs media returned; both mean the same media.
    from_urls = await media_urls.media_ids_for(media, body.media_urls)
    answer = await feed.CreatePost(
        feed_pb2.CreatePostRequest(
            content=body.content,
            hashtags=body.hashtags,
            media_ids=list(dict.fromkeys([*body.media_ids, *from_urls])),
            parent_post_id=body.parent_post_id or "",
        )
    )
    return await _one(auth, media, answer.post)


@router.get("/posts/{post_id}/", summary="A post")
async def get_post(
    post_id: PostId, viewer: OptionalUser, feed: FeedStub, auth: AuthStub, media: MediaStub
) -> PostOut:
    answer = await feed.GetPost(feed_pb2.GetPostRequest(post_id=post_id))
    return await _one(auth, media, answer.post)


@router.delete(
    "/posts/{post_id}/", status_code=status.HTTP_204_NO_CONTENT, summary="Delete your post"
)
async def delete_post(post_id: PostId, user: CurrentUser, feed: FeedStub) -> Response:
    await feed.DeletePost(feed_pb2.DeletePostRequest(post_id=post_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/posts/{post_id}/like/", summary="Like a post")
async def like(post_id: PostId, user: CurrentUser, feed: FeedStub) -> LikeOut:
    answer = await feed.LikePost(feed_pb2.LikePostRequest(post_id=post_id))
    return LikeOut(liked=True, like_count=answer.like_count)


@router.delete("/posts/{post_id}/like/", summary="Take a like back")
async def unlike(post_id: PostId, user: CurrentUser, feed: FeedStub) -> LikeOut:
    answer = await feed.UnlikePost(feed_pb2.UnlikePostRequest(post_id=post_id))
    return LikeOut(liked=False, like_count=answer.like_count)


@router.post("/posts/{post_id}/comments/", status_code=status.HTTP_201_CREATED, summary="Comment")
async def comment(
    post_id: PostId, body: CommentIn, user: CurrentUser, feed: FeedStub, auth: AuthStub
) -> CommentOut:
    answer = await feed.CreateComment(
        feed_pb2.CreateCommentRequest(post_id=post_id, content=body.content)
    )
    shown = await hydrate.comments(auth, [answer.comment])
    return shown[0]


@router.get("/posts/{post_id}/comments/", summary="Comments, oldest first")
async def comments(
    post_id: PostId, page: PageParams, viewer: OptionalUser, feed: FeedStub, auth: AuthStub
) -> Page[CommentOut]:
    answer = await feed.ListComments(feed_pb2.ListCommentsRequest(post_id=post_id, page=page))
    return Page(
        results=await hydrate.comments(auth, answer.comments), next_cursor=next_cursor(answer.page)
    )


@router.post("/posts/{post_id}/share/", summary="Share a post")
async def share(
    post_id: PostId, user: CurrentUser, feed: FeedStub, auth: AuthStub, media: MediaStub
) -> PostOut:
    answer = await feed.SharePost(feed_pb2.SharePostRequest(post_id=post_id))
    return await _one(auth, media, answer.post)


@router.get("/users/{user_id}/posts/", tags=["users"], summary="A user's posts, newest first")
async def user_posts(
    user_id: UserId,
    page: PageParams,
    viewer: OptionalUser,
    feed: FeedStub,
    auth: AuthStub,
    media: MediaStub,
) -> Page[PostOut]:
    answer = await feed.GetUserPosts(feed_pb2.GetUserPostsRequest(user_id=user_id, page=page))
    return Page(
        results=await hydrate.posts(auth, media, answer.posts),
        next_cursor=next_cursor(answer.page),
    )
