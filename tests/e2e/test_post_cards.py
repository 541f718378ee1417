"""The post cards and the viewer's likes in Redis, as readers see them: counts and the
viewer's own state on a page equal the database's on the very next read, while warm reads
do not ask the database; a card a lost write left stale heals within its refresh time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.feed.posts.cards import Offer, PostCards, card_key
from services.feed.timeline.cache import feed_key
from tests.e2e.feed_helpers import feed_sql, follow, post, wait_in_home
from tests.e2e.test_feed_degraded import IsolatedFeed, isolated_feed
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.feed.v1 import feed_pb2

HOME = "/api/v1/feed/home/"
REFRESH_SECONDS = 1.0


async def page(client: httpx.AsyncClient, viewer: User) -> dict[str, dict[str, Any]]:
    answer = await client.get(HOME, params={"limit": 100}, headers=viewer.headers)
    assert answer.status_code == 200, answer.text
    return {entry["id"]: entry for entry in answer.json()["results"]}


async def test_counts_and_the_viewers_state_are_current_on_the_next_read(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author, viewer, fan = [await make_user(client) for _ in range(3)]
    await follow(client, viewer, author)
    created = (await post(client, author, "count me"))["id"]
    await wait_in_home(client, viewer, created)
    await page(client, viewer)  # the card is written

    liked = await client.post(f"/api/v1/posts/{created}/like/", headers=fan.headers)
    assert liked.status_code == 200, liked.text
    seen = (await page(client, viewer))[created]
    assert (seen["like_count"], seen["liked"]) == (1, False)

    await client.post(f"/api/v1/posts/{created}/like/", headers=viewer.headers)
    await client.post(f"/api/v1/posts/{created}/share/", headers=viewer.headers)
    commented = await client.post(
        f"/api/v1/posts/{created}/comments/", json={"content": "nice"}, headers=fan.headers
    )
    assert commented.status_code == 201, commented.text
    seen = (await page(client, viewer))[created]
    assert (seen["like_count"], seen["comment_count"], seen["share_count"]) == (2, 1, 1)
    assert (seen["liked"], seen["shared"]) == (True, True)
    in_database = await feed_sql(
        stack,
        "SELECT array[like_count, comment_count, share_count] FROM posts WHERE id = $1",
        created,
    )
    assert list(in_database) == [2, 1, 1]

    await client.delete(f"/api/v1/posts/{created}/like/", headers=viewer.headers)
    seen = (await page(client, viewer))[created]
    assert (seen["like_count"], seen["liked"]) == (1, False)
    # The same on the single-post read and for the fan.
    single = await client.get(f"/api/v1/posts/{created}/", headers=fan.headers)
    assert (single.json()["like_count"], single.json()["liked"]) == (1, True)


async def test_a_post_deleted_or_removed_leaves_warm_pages_at_once(
    client: httpx.AsyncClient,
) -> None:
    author, viewer = await make_user(client), await make_user(client)
    await follow(client, viewer, author)
    kept, deleted = (
        (await post(client, author, "kept"))["id"],
        (await post(client, author, "x"))["id"],
    )
    await wait_in_home(client, viewer, deleted)
    assert {kept, deleted} <= set(await page(client, viewer))

    answer = await client.delete(f"/api/v1/posts/{deleted}/", headers=author.headers)
    assert answer.status_code == 204, answer.text
    shown = await page(client, viewer)
    assert kept in shown
    assert deleted not in shown
    assert (
        await client.get(f"/api/v1/posts/{deleted}/", headers=viewer.headers)
    ).status_code == 404


@pytest.fixture
async def isolated(stack: Stack) -> AsyncIterator[IsolatedFeed]:
    async with isolated_feed(stack, post_card_refresh_seconds=REFRESH_SECONDS) as feed:
        yield feed


async def test_a_card_left_stale_by_a_lost_write_heals_within_its_refresh_time(
    isolated: IsolatedFeed,
) -> None:
    client = isolated.client
    author, viewer = await make_user(client), await make_user(client)
    await follow(client, viewer, author)
    created = (await post(client, author, "heal me"))["id"]
    await wait_in_home(client, viewer, created)
    await eventually(lambda: page(client, viewer), lambda shown: created in shown)
    key = card_key(created)
    await eventually(lambda: isolated.redis.hexists(key, "p"), bool)

    # A like whose card write was lost: the card says 41 likes, the database 0.
    lost = feed_pb2.Post.FromString(await isolated.redis.hget(key, "p"))
    lost.like_count = 41
    await isolated.redis.hset(key, mapping={"p": lost.SerializeToString()})
    assert (await page(client, viewer))[created]["like_count"] == 41

    await asyncio.sleep(REFRESH_SECONDS)
    assert (await page(client, viewer))[created]["like_count"] == 0


async def test_an_older_read_cannot_overwrite_a_newer_card(isolated: IsolatedFeed) -> None:
    """A read that fetched the row before a like, and offers it after the like's card was
    written, is refused: the card keeps the like."""
    client = isolated.client
    author, fan = await make_user(client), await make_user(client)
    created = (await post(client, author, "race me"))["id"]
    opened = await client.get(f"/api/v1/posts/{created}/", headers=fan.headers)
    key = card_key(created)
    before_like = await isolated.redis.hgetall(key)
    assert opened.status_code == 200
    assert b"p" in before_like

    await client.post(f"/api/v1/posts/{created}/like/", headers=fan.headers)
    # The slow read's offer: the row as it was before the like, with its older version.
    stale = feed_pb2.Post.FromString(before_like[b"p"])
    cards = PostCards(isolated.redis, ttl_seconds=600, refresh_seconds=60)
    await cards.offer([Offer(uuid.UUID(created), int(before_like[b"v"]), stale)])
    held = feed_pb2.Post.FromString(await isolated.redis.hget(key, "p"))
    assert held.like_count == 1
    seen = await client.get(f"/api/v1/posts/{created}/", headers=fan.headers)
    assert (seen.json()["like_count"], seen.json()["liked"]) == (1, True)


async def test_a_first_page_is_ranked_by_current_engagement_and_pages_stay_whole(
    client: httpx.AsyncClient, redis_db: tuple[str, Redis]
) -> None:
    """Likes change no cached score until the 15-minute rescoring; the first page's top
    entries are scored again at read time, so a post liked a minute ago already ranks above
    others nobody liked, and the next page neither skips nor repeats."""
    _, redis = redis_db
    author, viewer = await make_user(client), await make_user(client)
    fans = [await make_user(client) for _ in range(3)]
    await follow(client, viewer, author)
    liked = (await post(client, author, "everybody likes me"))["id"]
    others = [(await post(client, author, f"nobody likes me {n}"))["id"] for n in range(2)]
    for post_id in (liked, *others):
        await wait_in_home(client, viewer, post_id)
    # As the last rescoring left it: the liked post cached far below the others.
    await redis.zadd(feed_key(uuid.UUID(viewer.id)), {liked: 1e-9}, xx=True)
    for fan in fans:
        answer = await client.post(f"/api/v1/posts/{liked}/like/", headers=fan.headers)
        assert answer.status_code == 200, answer.text

    everything = await client.get(HOME, params={"limit": 20}, headers=viewer.headers)
    assert everything.json()["results"][0]["id"] == liked
    scores = [e["score"] for e in everything.json()["results"]]
    assert scores == sorted(scores, reverse=True)

    # Paging: the first page re-ranks what it shows; the rest follows the cached order.
    first = await client.get(HOME, params={"limit": 2}, headers=viewer.headers)
    rest = await client.get(
        HOME, params={"limit": 10, "cursor": first.json()["next_cursor"]}, headers=viewer.headers
    )
    paged = [e["id"] for e in first.json()["results"] + rest.json()["results"]]
    assert sorted(paged) == sorted([liked, *others])
    assert [e["id"] for e in rest.json()["results"]] == [liked]  # cached last, not re-ranked
