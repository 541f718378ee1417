"""/api/v1/feed/: the ranked home feed and explore (feed service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gateway import hydrate, render
from gateway.deps import AuthStub, CurrentUser, FeedStub, MediaStub, OptionalUser, UpstreamsDep
from gateway.paging import PageParams, next_cursor
from gateway.schemas.common import Page, Text
from gateway.schemas.posts import HomeFeedPage, PostOut, TrendingHashtagOut
from zap.feed.v1 import feed_pb2

router = APIRouter(prefix="/api/v1/feed", tags=["feed"])


# Set on a home page served from the cache while the feed database is unavailable.
DEGRADED_HEADER = "Zap-Degraded"


@router.get(
    "/home/",
    summary="Your ranked home feed",
    description="While the feed database is unavailable the page comes from the cache, "
    "marked `degraded` (and with the `Zap-Degraded: true` header); with nothing cached for "
    "you the answer is 503 `feed-unavailable`.",
    response_model=HomeFeedPage,
)
async def home(page: PageParams, user: CurrentUser, upstreams: UpstreamsDep) -> Response:
    answer = await upstreams.feed.GetHomeFeed(feed_pb2.GetHomeFeedRequest(page=page))
    body = {
        "results": await hydrate.feed_entries(upstreams.auth, upstreams.media, answer.entries),
        "next_cursor": next_cursor(answer.page),
        "degraded": answer.degraded,
    }
    # Rendered straight from the answer (gateway.render), in HomeFeedPage's shape.
    return render.json_response(body, {DEGRADED_HEADER: "true"} if answer.degraded else None)


@router.get("/explore/", summary="Posts with a hashtag, or trending posts without one")
async def explore(
    page: PageParams,
    viewer: OptionalUser,
    feed: FeedStub,
    auth: AuthStub,
    media: MediaStub,
    hashtag: Annotated[Text | None, Query(min_length=1, max_length=65)] = None,
) -> Page[PostOut]:
    answer = await feed.GetExplore(feed_pb2.GetExploreRequest(hashtag=hashtag or "", page=page))
    return Page(
        results=await hydrate.posts(auth, media, answer.posts),
        next_cursor=next_cursor(answer.page),
    )


@router.get("/explore/hashtags/", summary="Trending hashtags")
async def trending_hashtags(
    feed: FeedStub, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[TrendingHashtagOut]:
    answer = await feed.ListTrendingHashtags(feed_pb2.ListTrendingHashtagsRequest(limit=limit))
    return [TrendingHashtagOut(hashtag=h.hashtag, post_count=h.post_count) for h in answer.hashtags]
