"""Posting and the ranked home feed, end to end through the gateway with the feed worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from services.feed.resources import JOB_QUEUE
from tests.e2e.feed_helpers import feed_sql, follow, home_ids, post, wait_in_home
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import PULL_THRESHOLD, Stack
from tests.support.waiting import eventually


@pytest.fixture
async def jobs(stack: Stack) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(stack.platform.redis_url))
    try:
        yield pool
    finally:
        await pool.aclose()


async def run_job(jobs: ArqRedis, name: str, *args: str) -> object:
    job = await jobs.enqueue_job(name, *args, _queue_name=JOB_QUEUE)
    assert job is not None
    return await job.result(timeout=30)


async def test_the_original_post_call_works_verbatim(client: httpx.AsyncClient) -> None:
    author = await make_user(client)
    answer = await client.post(
        "/api/v1/posts/",
        json={"content": "Hello, ZAP.", "media_urls": [], "hashtags": ["launch"]},
        headers=author.headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["content"] == "Hello, ZAP."
    assert body["hashtags"] == ["launch"]
    assert body["author"]["id"] == author.id
    assert body["author"]["username"] == author.username
    assert "email" not in body["author"]
    fetched = await client.get(f"/api/v1/posts/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["id"] == body["id"]


async def test_followers_get_the_post_and_strangers_do_not(client: httpx.AsyncClient) -> None:
    author, follower, stranger = [await make_user(client) for _ in range(3)]
    await follow(client, follower, author)
    created = await post(client, author, "fresh from the oven #bread")

    assert created["id"] in await wait_in_home(client, follower, created["id"])
    assert created["id"] in await home_ids(client, author)  # authors see their own posts
    assert created["id"] not in await home_ids(client, stranger)


async def test_a_new_follow_brings_recent_posts_and_unfollow_takes_them_away(
    client: httpx.AsyncClient,
) -> None:
    author, reader = await make_user(client), await make_user(client)
    earlier = await post(client, author, "posted before anyone followed")
    await follow(client, reader, author)
    await wait_in_home(client, reader, earlier["id"])

    answer = await client.delete(f"/api/v1/users/{author.id}/follow/", headers=reader.headers)
    assert answer.status_code == 200
    await eventually(lambda: home_ids(client, reader), lambda ids: earlier["id"] not in ids)


async def test_blocked_and_muted_authors_vanish_from_the_feed(client: httpx.AsyncClient) -> None:
    reader, blocked, muted = [await make_user(client) for _ in range(3)]
    for author in (blocked, muted):
        await follow(client, reader, author)
    hidden = [await post(client, author, f"by {author.username}") for author in (blocked, muted)]
    for created in hidden:
        await wait_in_home(client, reader, created["id"])

    assert (
        await client.post(f"/api/v1/users/{blocked.id}/block/", headers=reader.headers)
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/users/{muted.id}/mute/", headers=reader.headers)
    ).status_code == 200

    ids = await home_ids(client, reader)
    assert hidden[0]["id"] not in ids
    assert hidden[1]["id"] not in ids
    # The block also hides the post itself; the mute does not.
    blocked_view = await client.get(f"/api/v1/posts/{hidden[0]['id']}/", headers=reader.headers)
    assert_problem(blocked_view, 404)
    muted_view = await client.get(f"/api/v1/posts/{hidden[1]['id']}/", headers=reader.headers)
    assert muted_view.status_code == 200
    profile = await client.get(f"/api/v1/users/{muted.id}/", headers=reader.headers)
    assert profile.json()["relationship"]["following"] is True


async def test_a_celebrity_post_arrives_by_pull_without_writing_to_followers(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    celebrity = await make_user(client)
    fans = [await make_user(client) for _ in range(PULL_THRESHOLD)]
    for fan in fans:
        await follow(client, fan, celebrity)
    created = await post(client, celebrity, "hello, all of you")

    for fan in fans[:2]:
        assert created["id"] in await home_ids(client, fan)
    # Only the celebrity's own feed item exists: nothing was pushed to the followers.
    await wait_in_home(client, celebrity, created["id"])
    rows = await feed_sql(
        stack, "SELECT count(*) FROM feed_items WHERE post_id = $1::uuid", created["id"]
    )
    assert rows == 1


async def test_a_rerun_fanout_creates_nothing_twice(
    client: httpx.AsyncClient, stack: Stack, jobs: ArqRedis
) -> None:
    author = await make_user(client)
    followers = [await make_user(client) for _ in range(3)]
    for follower in followers:
        await follow(client, follower, author)
    created = await post(client, author, "exactly once, please")
    for follower in followers:
        await wait_in_home(client, follower, created["id"])

    # As if the worker had died before recording the end of the job: it runs again.
    await feed_sql(
        stack,
        "UPDATE fanout_outbox SET done_at = NULL, resume_after = NULL WHERE post_id = $1::uuid",
        created["id"],
    )
    assert await run_job(jobs, "fanout_post", created["id"]) == 0
    rows = await feed_sql(
        stack, "SELECT count(*) FROM feed_items WHERE post_id = $1::uuid", created["id"]
    )
    assert rows == len(followers) + 1
    ids = await home_ids(client, followers[0])
    assert ids.count(created["id"]) == 1


async def home_scores(client: httpx.AsyncClient, reader: User) -> dict[str, float]:
    answer = await client.get("/api/v1/feed/home/", params={"limit": 100}, headers=reader.headers)
    assert answer.status_code == 200, answer.text
    return {entry["id"]: entry["score"] for entry in answer.json()["results"]}


async def test_rescoring_reorders_the_feed_as_engagement_changes(
    client: httpx.AsyncClient, jobs: ArqRedis
) -> None:
    author, reader = await make_user(client), await make_user(client)
    older = await post(client, author, "the older post")
    newer = await post(client, author, "the newer post")
    # Both arrive with the follow's backfill, scored once then (a fanout or a late backfill
    # would score them again, with whatever engagement they had by then).
    await follow(client, reader, author)
    await wait_in_home(client, reader, older["id"])
    await wait_in_home(client, reader, newer["id"])
    # Which of the two is first now depends on their ML scores (the trust factor): seconds
    # apart, age barely separates them.
    before = await home_scores(client, reader)

    fans = [await make_user(client) for _ in range(4)]
    for fan in fans:
        liked = await client.post(f"/api/v1/posts/{older['id']}/like/", headers=fan.headers)
        assert liked.status_code == 200
    await run_job(jobs, "rescore_feeds")

    assert (await home_ids(client, reader))[:2] == [older["id"], newer["id"]]
    after = await home_scores(client, reader)
    # Five points instead of one: about five times the score it had.
    assert after[older["id"]] > 4 * before[older["id"]]


async def test_pages_neither_skip_nor_repeat_while_posts_arrive_and_scores_change(
    client: httpx.AsyncClient, jobs: ArqRedis
) -> None:
    author, reader, fan = [await make_user(client) for _ in range(3)]
    await follow(client, reader, author)
    posted = [(await post(client, author, f"post number {n}"))["id"] for n in range(12)]
    await wait_in_home(client, reader, posted[0])
    await wait_in_home(client, reader, posted[-1])

    first = await client.get("/api/v1/feed/home/", params={"limit": 5}, headers=reader.headers)
    seen = [entry["id"] for entry in first.json()["results"]]
    cursor = first.json()["next_cursor"]
    # Meanwhile: new posts, likes on old ones, a rescoring run.
    late = await post(client, author, "arrived while paging")
    await client.post(f"/api/v1/posts/{posted[0]}/like/", headers=fan.headers)
    await run_job(jobs, "rescore_feeds")
    while cursor:
        page = await client.get(
            "/api/v1/feed/home/", params={"limit": 5, "cursor": cursor}, headers=reader.headers
        )
        assert page.status_code == 200, page.text
        seen += [entry["id"] for entry in page.json()["results"]]
        cursor = page.json()["next_cursor"]

    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(posted) <= set(seen)  # nothing skipped
    # A post that arrived meanwhile may show on a later page (if it ranks below the bound,
    # e.g. scored by moderation before its fanout), but nothing else may appear.
    assert set(seen) - set(posted) <= {late["id"]}
    assert late["id"] in await home_ids(client, reader)  # the next first page shows it


async def test_deleted_posts_disappear_and_only_the_author_may_delete(
    client: httpx.AsyncClient,
) -> None:
    author, reader = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    created = await post(client, author, "soon gone")
    await wait_in_home(client, reader, created["id"])

    refused = await client.delete(f"/api/v1/posts/{created['id']}/", headers=reader.headers)
    assert_problem(refused, 403)
    assert (
        await client.delete(f"/api/v1/posts/{created['id']}/", headers=author.headers)
    ).status_code == 204
    assert created["id"] not in await home_ids(client, reader)
    assert_problem(await client.get(f"/api/v1/posts/{created['id']}/"), 404)
    again = await client.delete(f"/api/v1/posts/{created['id']}/", headers=author.headers)
    assert again.status_code == 204


async def test_likes_are_idempotent_and_comments_list_in_order(client: httpx.AsyncClient) -> None:
    author, fan = await make_user(client), await make_user(client)
    created = await post(client, author, "like me, twice if you must")
    for _ in range(2):
        liked = await client.post(f"/api/v1/posts/{created['id']}/like/", headers=fan.headers)
        assert liked.json() == {"liked": True, "like_count": 1}
    seen = await client.get(f"/api/v1/posts/{created['id']}/", headers=fan.headers)
    assert seen.json()["liked"] is True
    unliked = await client.delete(f"/api/v1/posts/{created['id']}/like/", headers=fan.headers)
    assert unliked.json() == {"liked": False, "like_count": 0}

    for text in ("first!", "second"):
        made = await client.post(
            f"/api/v1/posts/{created['id']}/comments/", json={"content": text}, headers=fan.headers
        )
        assert made.status_code == 201, made.text
    listed = await client.get(f"/api/v1/posts/{created['id']}/comments/", params={"limit": 1})
    assert [c["content"] for c in listed.json()["results"]] == ["first!"]
    rest = await client.get(
        f"/api/v1/posts/{created['id']}/comments/", params={"cursor": listed.json()["next_cursor"]}
    )
    assert [c["content"] for c in rest.json()["results"]] == ["second"]
    assert rest.json()["next_cursor"] is None
    counted = await client.get(f"/api/v1/posts/{created['id']}/")
    assert counted.json()["comment_count"] == 2


async def test_hashtags_and_timelines(client: httpx.AsyncClient) -> None:
    author = await make_user(client)
    tag = f"zaptest{author.id[-8:]}"
    tagged = await post(client, author, f"about #{tag} and more")
    await post(client, author, "untagged")

    explore = await client.get("/api/v1/feed/explore/", params={"hashtag": tag})
    assert [p["id"] for p in explore.json()["results"]] == [tagged["id"]]
    trending = await client.get("/api/v1/feed/explore/hashtags/", params={"limit": 100})
    assert tag in {t["hashtag"] for t in trending.json()}
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert len(timeline.json()["results"]) == 2


async def test_an_idempotency_key_returns_the_first_post_instead_of_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    author = await make_user(client)
    headers = {**author.headers, "Idempotency-Key": "post-once-123"}
    body = {"content": "only once"}
    first = await client.post("/api/v1/posts/", json=body, headers=headers)
    assert first.status_code == 201
    replay = await client.post("/api/v1/posts/", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    other = await client.post("/api/v1/posts/", json={"content": "something else"}, headers=headers)
    assert_problem(other, 422, reason="idempotency-key-reused")
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert len(timeline.json()["results"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "x" * 2001}, "content"),
        ({"content": "ok", "hashtags": ["no spaces allowed"]}, "hashtags"),
        ({"content": "ok", "media_ids": ["not-a-uuid"]}, "media_ids"),
        (
            {"content": "ok", "parent_post_id": "00000000-0000-0000-0000-000000000000"},
            "parent_post_id",
        ),
        ({"content": "ok", "is_pinned": True}, "is_pinned"),
    ],
)
async def test_bad_posts_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    author = await make_user(client)
    answer = await client.post("/api/v1/posts/", json=body, headers=author.headers)
    assert answer.status_code in (400, 404, 422), answer.text
    assert_problem(answer, answer.status_code)
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert timeline.json()["results"] == []


async def test_bad_ids_cursors_and_limits_are_4xx(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    assert_problem(await client.get("/api/v1/posts/not-a-uuid/"), 422, fields=("post_id",))
    unknown = "01900000-0000-7000-8000-000000000000"
    assert_problem(await client.get(f"/api/v1/posts/{unknown}/"), 404)
    assert_problem(await client.post(f"/api/v1/posts/{unknown}/like/", headers=user.headers), 404)
    forged = await client.get(
        "/api/v1/feed/home/", params={"cursor": "eyJrIjoiaG9tZSJ9"}, headers=user.headers
    )
    assert_problem(forged, 422, reason="invalid-cursor")
    for limit in (0, 101):
        answer = await client.get(
            "/api/v1/feed/home/", params={"limit": limit}, headers=user.headers
        )
        assert_problem(answer, 422, fields=("limit",))
    assert_problem(await client.get("/api/v1/feed/home/"), 401)
    assert_problem(await client.post("/api/v1/posts/", json={"content": "hi"}), 401)


async def test_clear_spam_is_refused_before_it_is_stored(client: httpx.AsyncClient) -> None:
    author = await make_user(client)
    spam = "BUY NOW!!! click here for free money http://a.test http://b.test http://c.test"
    refused = await client.post("/api/v1/posts/", json={"content": spam}, headers=author.headers)
    body = assert_problem(refused, 422, reason="content-rejected", fields=("content",))
    assert "spam-phrase" in body["errors"][0]["message"]
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert timeline.json()["results"] == []


async def test_trending_ranks_engagement_and_pages_through_one_ranking(
    client: httpx.AsyncClient,
) -> None:
    author = await make_user(client)
    quiet = await post(client, author, "nobody likes me")
    loved = await post(client, author, "everybody likes me")
    for fan in [await make_user(client) for _ in range(3)]:
        await client.post(f"/api/v1/posts/{loved['id']}/like/", headers=fan.headers)

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/feed/explore/", params=params)
        assert page.status_code == 200, page.text
        seen += [p["id"] for p in page.json()["results"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert seen.index(loved["id"]) < seen.index(quiet["id"])


async def test_mentions_resolve_to_existing_users_only(client: httpx.AsyncClient) -> None:
    author, friend = await make_user(client), await make_user(client)
    created = await post(
        client,
        author,
        f"thanks @{friend.username.upper()} and @nobody_here_xyz and @{author.username}",
    )
    assert created["mention_ids"] == [friend.id]
    answer = await client.post(
        f"/api/v1/posts/{created['id']}/comments/",
        json={"content": f"@{friend.username} see above"},
        headers=author.headers,
    )
    assert answer.status_code == 201


async def test_a_reply_needs_a_parent_its_author_may_see(client: httpx.AsyncClient) -> None:
    author, replier, follower = [await make_user(client) for _ in range(3)]
    await follow(client, follower, replier)
    parent = await post(client, author, "the original #thread")
    reply = await post(client, replier, "a reply #thread", parent_post_id=parent["id"])
    assert reply["parent_post_id"] == parent["id"]
    assert reply["hashtags"] == ["thread"]
    # A reply is a post like any other: indexed by its hashtags and fanned out.
    await wait_in_home(client, follower, reply["id"])
    tagged = await client.get("/api/v1/feed/explore/", params={"hashtag": "thread"})
    assert {p["id"] for p in tagged.json()["results"]} >= {parent["id"], reply["id"]}

    blocked = await client.post(f"/api/v1/users/{replier.id}/block/", headers=author.headers)
    assert blocked.status_code == 200, blocked.text
    refused = await client.post(
        "/api/v1/posts/",
        json={"content": "another reply", "parent_post_id": parent["id"]},
        headers=replier.headers,
    )
    assert_problem(refused, 404, reason="post-not-found")
    timeline = await client.get(f"/api/v1/users/{replier.id}/posts/")
    assert [p["id"] for p in timeline.json()["results"]] == [reply["id"]]
