"""`Idempotency-Key` through the real gateway: what is kept, what is replayed, what it costs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
from redis.asyncio import Redis

from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack, gateway_settings, serve_gateway

POSTS = "/api/v1/posts/"
# Headers that belong to one response, not to the answer a replay repeats.
_PER_RESPONSE = {"date", "server", "traceparent", "idempotent-replayed"}


@contextlib.asynccontextmanager
async def gateway(stack: Stack, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway on the same services, with some settings changed."""
    async with (
        serve_gateway(stack.platform, gateway_settings(**overrides)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


async def forget_rate_limits(redis: Redis) -> None:
    """As if the rate-limit window had passed."""
    async for key in redis.scan_iter(match="zap:rl*"):
        await redis.delete(key)


def answer_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in _PER_RESPONSE}


async def test_a_rate_limited_request_is_not_replayed_once_the_limit_has_passed(
    stack: Stack, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    async with gateway(stack, rate_limit_user="2/minute") as http:
        author = await make_user(http)
        for n in range(2):
            answer = await http.post(POSTS, json={"content": f"n{n}"}, headers=author.headers)
            assert answer.status_code == 201
        keyed = {**author.headers, "Idempotency-Key": "after-the-limit"}
        refused = await http.post(POSTS, json={"content": "mine"}, headers=keyed)
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1

        await forget_rate_limits(redis)
        retried = await http.post(POSTS, json={"content": "mine"}, headers=keyed)
        # The client did what Retry-After asked: the post is made, not the 429 replayed.
        assert retried.status_code == 201, retried.text
        assert "idempotent-replayed" not in retried.headers
        await forget_rate_limits(redis)
        again = await http.post(POSTS, json={"content": "mine"}, headers=keyed)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == retried.json()["id"]
        timeline = await http.get(f"/api/v1/users/{author.id}/posts/")
        assert len(timeline.json()["results"]) == 3


async def test_a_permission_refusal_is_not_replayed_once_the_role_is_granted(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    user = await make_user(client)
    unknown_item = "01900000-0000-7000-8000-000000000000"
    path = f"/api/v1/moderation/queue/{unknown_item}/claim/"
    key = {"Idempotency-Key": "claim-once"}
    assert_problem(await client.post(path, headers={**user.headers, **key}), 403)
    # Granted the role, the same person signs in again and retries with the same key.
    promoted = await _promote(stack, client, user.email, user.password)
    retried = await client.post(path, headers={"Authorization": f"Bearer {promoted}", **key})
    assert_problem(retried, 404)
    assert "idempotent-replayed" not in retried.headers


async def _promote(stack: Stack, client: httpx.AsyncClient, email: str, password: str) -> str:
    connection = await asyncpg.connect(stack.dsn("auth"))
    try:
        await connection.execute("UPDATE users SET role = 'moderator' WHERE email = $1", email)
    finally:
        await connection.close()
    login = await client.post("/api/v1/auth/login/", json={"email": email, "password": password})
    assert login.status_code == 200
    return str(login.json()["access"])


async def test_a_replay_carries_the_headers_of_the_first_answer(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    headers = {**user.headers, "Idempotency-Key": "rotate-once"}
    body = {"refresh": user.refresh}
    first = await client.post("/api/v1/auth/refresh/", json=body, headers=headers)
    assert first.status_code == 200
    replay = await client.post("/api/v1/auth/refresh/", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    # Tokens must not be cached by anyone, the second time either.
    assert replay.headers["cache-control"] == "no-store"
    assert answer_headers(replay) == answer_headers(first)


async def test_replays_count_against_the_rate_limit(stack: Stack) -> None:
    async with gateway(stack, rate_limit_user="3/minute") as http:
        author = await make_user(http)
        keyed = {**author.headers, "Idempotency-Key": "replayed-often"}
        first = await http.post(POSTS, json={"content": "once"}, headers=keyed)
        assert first.status_code == 201
        for _ in range(2):
            replay = await http.post(POSTS, json={"content": "once"}, headers=keyed)
            assert replay.headers["idempotent-replayed"] == "true"
        # Three requests made: a replay is a request like any other.
        assert_problem(await http.post(POSTS, json={"content": "once"}, headers=keyed), 429)
        assert_problem(await http.post(POSTS, json={"content": "new"}, headers=author.headers), 429)
