"""Shared steps of the posts and feed tests, through the public API."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.factories import TestUser
from tests.support.stack import Stack
from tests.support.waiting import eventually


async def post(
    client: httpx.AsyncClient, author: TestUser, content: str, **extra: Any
) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/posts/", json={"content": content, **extra}, headers=author.headers
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def follow(client: httpx.AsyncClient, follower: TestUser, followee: TestUser) -> None:
    answer = await client.post(f"/api/v1/users/{followee.id}/follow/", headers=follower.headers)
    assert answer.status_code == 200, answer.text


async def home_ids(client: httpx.AsyncClient, user: TestUser, **params: Any) -> list[str]:
    answer = await client.get("/api/v1/feed/home/", params=params, headers=user.headers)
    assert answer.status_code == 200, answer.text
    return [entry["id"] for entry in answer.json()["results"]]


async def wait_in_home(client: httpx.AsyncClient, user: TestUser, post_id: str) -> list[str]:
    async def probe() -> list[str]:
        return await home_ids(client, user, limit=100)

    return await eventually(probe, lambda ids: post_id in ids)


async def feed_sql(stack: Stack, query: str, *args: Any) -> Any:
    """One value from the feed service's own database (for what the API cannot show)."""
    dsn = stack.dsn("feed")
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()
