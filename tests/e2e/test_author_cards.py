"""Home pages carry their authors' cards from auth's read model; changes show at once."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import TestUser as User
from tests.factories import make_user


async def authors_in_home(client: httpx.AsyncClient, reader: User) -> dict[str, Any]:
    answer = await client.get("/api/v1/feed/home/", params={"limit": 100}, headers=reader.headers)
    assert answer.status_code == 200, answer.text
    return {entry["id"]: entry["author"] for entry in answer.json()["results"]}


async def test_a_profile_change_shows_on_the_next_home_read(
    client: httpx.AsyncClient, redis_db: tuple[str, Redis]
) -> None:
    _, redis = redis_db
    reader, author = await make_user(client), await make_user(client)
    await follow(client, reader, author)
    written = await post(client, author, "who wrote this?")
    await wait_in_home(client, reader, written["id"])
    shown = (await authors_in_home(client, reader))[written["id"]]
    assert (shown["id"], shown["username"]) == (author.id, author.username)
    assert await redis.exists(f"zap:users:{{{author.id}}}")  # served from the read model

    changed = await client.patch(
        "/api/v1/auth/me/",
        json={"display_name": "A New Name", "avatar_url": "https://cdn.example/a.png"},
        headers=author.headers,
    )
    assert changed.status_code == 200, changed.text
    shown = (await authors_in_home(client, reader))[written["id"]]
    assert (shown["display_name"], shown["avatar_url"]) == (
        "A New Name",
        "https://cdn.example/a.png",
    )
