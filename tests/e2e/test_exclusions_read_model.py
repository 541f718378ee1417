"""Blocks and mutes read from graph's Redis read model hold on the very next read."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.e2e.feed_helpers import follow, home_ids, post, wait_in_home
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.graph.v1 import graph_pb2


async def entry(redis: Redis, user_id: str) -> graph_pb2.GetExclusionsResponse | None:
    raw = await redis.get(f"zap:exclusions:{{{user_id}}}")
    return None if raw is None else graph_pb2.GetExclusionsResponse.FromString(raw)


async def test_a_mute_and_an_unmute_hold_on_the_very_next_read(
    client: httpx.AsyncClient, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    reader, author = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    shown = await post(client, author, "seen, then muted, then seen again")
    await wait_in_home(client, reader, shown["id"])
    # The reads so far were answered from the read model, which graph filled.
    assert await entry(redis, reader.id) == graph_pb2.GetExclusionsResponse()

    muted = await client.post(f"/api/v1/users/{author.id}/mute/", headers=reader.headers)
    assert muted.status_code == 200, muted.text
    assert shown["id"] not in await home_ids(client, reader, limit=100)

    unmuted = await client.delete(f"/api/v1/users/{author.id}/mute/", headers=reader.headers)
    assert unmuted.status_code == 200, unmuted.text
    assert shown["id"] in await home_ids(client, reader, limit=100)


async def test_a_block_holds_at_once_for_the_person_blocked_too(
    client: httpx.AsyncClient, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    reader, author = await make_user(client), await make_user(client)
    written = await post(client, author, "soon out of the reader's sight")
    assert (await client.get(f"/api/v1/posts/{written['id']}/", headers=reader.headers)).is_success
    assert await entry(redis, reader.id) is not None

    blocked = await client.post(f"/api/v1/users/{reader.id}/block/", headers=author.headers)
    assert blocked.status_code == 200, blocked.text
    assert_problem(await client.get(f"/api/v1/posts/{written['id']}/", headers=reader.headers), 404)

    unblocked = await client.delete(f"/api/v1/users/{reader.id}/block/", headers=author.headers)
    assert unblocked.status_code == 200, unblocked.text
    assert (await client.get(f"/api/v1/posts/{written['id']}/", headers=reader.headers)).is_success


async def test_a_deleted_account_leaves_nobody_s_entry(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    leaving, blocked = await make_user(client), await make_user(client)
    answer = await client.post(f"/api/v1/users/{blocked.id}/block/", headers=leaving.headers)
    assert answer.status_code == 200, answer.text
    await home_ids(client, blocked)  # fills the blocked person's entry: blocked by `leaving`
    assert (
        leaving.id
        in (await entry(redis, blocked.id) or graph_pb2.GetExclusionsResponse()).blocked_by_ids
    )

    gone = await client.request(
        "DELETE", "/api/v1/auth/me/", json={"password": leaving.password}, headers=leaving.headers
    )
    assert gone.status_code in (200, 202, 204), gone.text

    async def mentioned() -> bool:
        found = await entry(redis, blocked.id)
        return found is not None and leaving.id in found.blocked_by_ids

    await eventually(mentioned, lambda still: not still, timeout=30)
    assert [k async for k in redis.scan_iter(match=f"zap:exclusions:{{{leaving.id}}}*")] == []
