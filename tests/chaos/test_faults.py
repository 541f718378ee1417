"""Faults on the real processes: a worker killed in the middle of a fanout, Redis restarted
under a running stack. Nothing is lost and nothing is delivered twice."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.e2e.feed_helpers import follow, home_ids, post
from tests.e2e.test_moderation_api import REMOVED_TEXT
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.processes import modules, process_stack
from tests.support.waiting import eventually

SYNTHETIC_FOLLOWERS = 20_000


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def fetchval(url: str, query: str, *args: object) -> object:
    connection = await asyncpg.connect(dsn(url))
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def test_a_worker_killed_mid_fanout_loses_and_repeats_nothing(
    tmp_path: Path, object_store: str
) -> None:
    env = {
        # Everyone is pushed (no pull), in small batches, so the kill lands mid-way.
        "ZAP_GRAPH_FANOUT_THRESHOLD": "1000000",
        "ZAP_FEED_FANOUT_BATCH_SIZE": "100",
        # The outbox sweeper looks every 2 s for fanouts unfinished after 3 s.
        "ZAP_FEED_SWEEP_AFTER_SECONDS": "3",
        "ZAP_FEED_SWEEP_EVERY_SECONDS": "2",
    }
    async with process_stack(tmp_path, object_store, env=env) as (processes, _, databases):
        await processes.wait_ready()
        async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
            author = await make_user(client)
            readers = [await make_user(client) for _ in range(3)]
            for reader in readers:
                await follow(client, reader, author)
            # Followers who never signed up through the API: rows in graph's own table.
            await fetchval(
                databases["graph"],
                "INSERT INTO follows (followee_id, follower_id) "
                "SELECT $1, gen_random_uuid() FROM generate_series(1, $2)",
                uuid.UUID(author.id),
                SYNTHETIC_FOLLOWERS,
            )
            # Followers, and the author, who sees their own post in their home feed.
            audience = SYNTHETIC_FOLLOWERS + len(readers) + 1

            created = await post(client, author, "Does every follower get this exactly once?")
            post_id = uuid.UUID(created["id"])

            async def delivered() -> int:
                count = await fetchval(
                    databases["feed"],
                    "SELECT count(*) FROM feed_items WHERE post_id = $1",
                    post_id,
                )
                assert isinstance(count, int)
                return count

            # Some batches of followers are in when the worker dies.
            await eventually(delivered, lambda count: count > 2000, timeout=30, interval=0.01)
            await processes.kill("feed-worker")
            at_kill = await delivered()
            assert 2000 < at_kill < audience, "the fanout finished before the kill"
            print(f"\nfeed worker killed with {at_kill} of {audience} feed items written")

            await processes.start("feed-worker")
            await eventually(delivered, lambda count: count == audience, timeout=90, interval=0.2)
            assert "feed.fanouts_swept" in processes.log("feed-worker")
            for reader in readers:
                shown = await home_ids(client, reader, limit=100)
                assert shown.count(created["id"]) == 1
            per_user = await fetchval(
                databases["feed"],
                "SELECT max(n) FROM (SELECT count(*) AS n FROM feed_items "
                "WHERE post_id = $1 GROUP BY user_id) AS per_user",
                post_id,
            )
            assert per_user == 1


async def test_the_stack_reconnects_after_redis_restarts(tmp_path: Path, object_store: str) -> None:
    async with process_stack(tmp_path, object_store) as (processes, redis, _):
        await processes.wait_ready()
        async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
            author, reader = await make_user(client), await make_user(client)
            await follow(client, reader, author)
            before = await post(client, author, "Before the restart.")
            await eventually(
                lambda: home_ids(client, reader, limit=50), lambda ids: before["id"] in ids
            )

            await redis.stop()
            # While Redis is down the gateway says so (its rate limits and deny-list live
            # there) instead of hanging or answering 500.
            down = await client.get("/api/v1/feed/home/", headers=reader.headers)
            assert down.status_code == 503, down.text
            await asyncio.sleep(2)
            await redis.start()

            # Everything reconnects by itself: sign-in, posting, the fanout worker, events.
            after = await eventually(
                lambda: client.post(
                    "/api/v1/posts/",
                    json={"content": "After the restart."},
                    headers=author.headers,
                ),
                lambda answer: answer.status_code == 201,
                timeout=30,
                interval=0.5,
            )
            post_id = after.json()["id"]
            shown = await eventually(
                lambda: home_ids(client, reader, limit=50),
                lambda ids: post_id in ids,
                timeout=30,
                interval=0.3,
            )
            assert before["id"] in shown
            liked = await client.post(f"/api/v1/posts/{post_id}/like/", headers=reader.headers)
            assert liked.status_code == 200, liked.text
            # The like travels as an event through the restarted Redis to the deliver worker.
            await eventually(
                lambda: client.get("/api/v1/notifications/", headers=author.headers),
                lambda answer: (
                    answer.status_code == 200
                    and any(
                        item["kind"] == "like" and item["post_id"] == post_id
                        for item in answer.json()["results"]
                    )
                ),
                timeout=30,
                interval=0.3,
            )
            relogin = await client.post(
                "/api/v1/auth/login/", json={"email": reader.email, "password": reader.password}
            )
            assert relogin.status_code == 200


async def test_posting_goes_on_while_the_ml_worker_is_down(
    tmp_path: Path, object_store: str
) -> None:
    everything_but_ml = tuple(name for name in modules() if name != "moderation-worker")
    async with process_stack(tmp_path, object_store, only=everything_but_ml) as (
        processes,
        _,
        databases,
    ):
        await processes.wait_ready()
        async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
            author, reader = await make_user(client), await make_user(client)
            # Tier 1 still runs, synchronously: clear spam is refused even now.
            spam = await client.post(
                "/api/v1/posts/",
                json={
                    "content": "BUY NOW!!! click here for free money http://a.test http://b.test"
                },
                headers=author.headers,
            )
            assert_problem(spam, 422, reason="content-rejected")
            # Anything else is posted and shown, unscored (not silently clean).
            toxic = await post(client, author, REMOVED_TEXT)
            seen = await client.get(f"/api/v1/posts/{toxic['id']}/", headers=reader.headers)
            assert seen.status_code == 200
            score = await fetchval(
                databases["feed"],
                "SELECT moderation_score FROM posts WHERE id = $1",
                uuid.UUID(toxic["id"]),
            )
            assert score is None

            # The worker returns: the queued job scores the post, and tier 2 removes it.
            await processes.start("moderation-worker")
            await eventually(
                lambda: client.get(f"/api/v1/posts/{toxic['id']}/", headers=reader.headers),
                lambda answer: answer.status_code == 404,
                timeout=60,
                interval=0.3,
            )


async def test_a_killed_service_answers_503_then_recovers_when_restarted(
    tmp_path: Path, object_store: str
) -> None:
    env = {"ZAP_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "1"}
    async with process_stack(tmp_path, object_store, env=env) as (processes, _, _):
        await processes.wait_ready()
        async with httpx.AsyncClient(base_url=processes.url, timeout=10) as client:
            user = await make_user(client)
            followers = f"/api/v1/users/{user.id}/followers/"
            assert (await client.get(followers, headers=user.headers)).status_code == 200

            await processes.kill("graph")
            for _ in range(8):
                down = await client.get(followers, headers=user.headers)
                assert_problem(down, 503)
                assert down.elapsed.total_seconds() < 1.5
            # The rest of the API keeps working without graph.
            assert (await client.get("/api/v1/auth/me/", headers=user.headers)).status_code == 200

            await processes.start("graph")
            await eventually(
                lambda: client.get(followers, headers=user.headers),
                lambda answer: answer.status_code == 200,
                timeout=60,
                interval=0.3,
            )
