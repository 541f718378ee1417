"""Likes, unlikes and shares through the gateway: what the user gets back, what the author
hears, and the posts nobody may engage with (their existence is not leaked)."""

from __future__ import annotations

import asyncio

import httpx

from tests.e2e.feed_helpers import feed_sql, follow, post, wait_in_home
from tests.e2e.test_event_outbox import like_notifications, outbox_rows
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually

HOME = "/api/v1/feed/home/"


async def test_a_blocked_or_deleted_post_cannot_be_liked_or_shared(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author, blocker, fan = [await make_user(client) for _ in range(3)]
    blocked_post = (await post(client, author, "you will not see me"))["id"]
    gone = (await post(client, author, "soon gone"))["id"]
    blocked = await client.post(f"/api/v1/users/{blocker.id}/block/", headers=author.headers)
    assert blocked.status_code == 200, blocked.text
    assert (await client.delete(f"/api/v1/posts/{gone}/", headers=author.headers)).is_success

    for path in (f"{blocked_post}/like/", f"{blocked_post}/share/"):
        answer = await client.post(f"/api/v1/posts/{path}", headers=blocker.headers)
        assert_problem(answer, 404, reason="post-not-found")
    assert_problem(
        await client.delete(f"/api/v1/posts/{blocked_post}/like/", headers=blocker.headers), 404
    )
    for path in (f"{gone}/like/", f"{gone}/share/"):
        assert_problem(await client.post(f"/api/v1/posts/{path}", headers=fan.headers), 404)
    counts = await feed_sql(
        stack, "SELECT array[like_count, share_count] FROM posts WHERE id = $1", blocked_post
    )
    assert list(counts) == [0, 0]


async def test_liking_again_after_an_unlike_is_counted_and_the_author_hears_of_each_new_like(
    client: httpx.AsyncClient,
) -> None:
    author, fan = await make_user(client), await make_user(client)
    created = (await post(client, author, "like me, unlike me"))["id"]
    path = f"/api/v1/posts/{created}/like/"
    assert (await client.post(path, headers=fan.headers)).json() == {"liked": True, "like_count": 1}
    await eventually(lambda: like_notifications(client, author, created), bool)
    assert (await client.delete(path, headers=fan.headers)).json()["like_count"] == 0
    assert (await client.delete(path, headers=fan.headers)).json()["like_count"] == 0
    assert (await client.post(path, headers=fan.headers)).json()["like_count"] == 1
    seen = await client.get(f"/api/v1/posts/{created}/", headers=fan.headers)
    assert (seen.json()["like_count"], seen.json()["liked"]) == (1, True)


async def test_the_likers_home_feed_shows_each_like_and_unlike_on_the_next_read(
    client: httpx.AsyncClient,
) -> None:
    author, reader = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    created = [(await post(client, author, f"post {n}"))["id"] for n in range(2)]
    await wait_in_home(client, reader, created[1])

    async def state() -> dict[str, tuple[bool, bool, int]]:
        answer = await client.get(HOME, params={"limit": 50}, headers=reader.headers)
        assert answer.status_code == 200, answer.text
        return {
            e["id"]: (e["liked"], e["shared"], e["like_count"]) for e in answer.json()["results"]
        }

    await state()  # the reader's entry and the cards are filled
    await client.post(f"/api/v1/posts/{created[0]}/like/", headers=reader.headers)
    shared = await client.post(f"/api/v1/posts/{created[1]}/share/", headers=reader.headers)
    assert (shared.json()["shared"], shared.json()["share_count"]) == (True, 1)
    seen = await state()
    assert seen[created[0]] == (True, False, 1)
    assert seen[created[1]] == (False, True, 0)
    await client.post(f"/api/v1/posts/{created[1]}/like/", headers=reader.headers)
    await client.delete(f"/api/v1/posts/{created[0]}/like/", headers=reader.headers)
    seen = await state()
    assert seen[created[0]] == (False, False, 0)
    assert seen[created[1]] == (True, True, 1)


async def test_a_burst_of_likes_is_announced_and_leaves_nothing_in_the_outbox(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(4)]
    posts = [(await post(client, author, f"burst {n}"))["id"] for n in range(3)]
    answers = await asyncio.gather(
        *(
            client.post(f"/api/v1/posts/{post_id}/like/", headers=fan.headers)
            for post_id in posts
            for fan in fans
        )
    )
    assert [a.status_code for a in answers] == [200] * 12

    async def likers_heard_of() -> list[set[str]]:
        return [
            {actor["id"] for item in await like_notifications(client, author, p)
             for actor in item["actors"]}
            for p in posts
        ]  # fmt: skip

    everyone = {fan.id for fan in fans}
    await eventually(likers_heard_of, lambda heard: heard == [everyone] * 3)
    await eventually(lambda: outbox_rows(stack), lambda rows: rows == 0)
    counts = await feed_sql(
        stack, "SELECT array_agg(like_count) FROM posts WHERE id = ANY($1::uuid[])", posts
    )
    assert list(counts) == [4, 4, 4]
