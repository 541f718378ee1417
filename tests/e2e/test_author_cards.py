"""Home pages carry their authors' cards from auth's read model; changes show at once."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.waiting import eventually


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


async def test_every_post_read_shows_a_profile_change_at_once(client: httpx.AsyncClient) -> None:
    author, reader = await make_user(client), await make_user(client)
    written = await post(client, author, "read me everywhere #cardsalike")

    def authors_of(answer: httpx.Response) -> list[Any]:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        posts = body.get("results", [body])
        return [p["author"] for p in posts if p["id"] == written["id"]]

    reads = (
        f"/api/v1/posts/{written['id']}/",
        f"/api/v1/users/{author.id}/posts/",
        "/api/v1/feed/explore/?hashtag=cardsalike",
    )
    for path in reads:  # the cards are cached now
        assert authors_of(await client.get(path, headers=reader.headers))[0]["id"] == author.id

    changed = await client.patch(
        "/api/v1/auth/me/", json={"display_name": "Renamed"}, headers=author.headers
    )
    assert changed.status_code == 200, changed.text
    for path in reads:
        [shown] = authors_of(await client.get(path, headers=reader.headers))
        assert (shown["id"], shown["display_name"]) == (author.id, "Renamed"), path


async def test_lists_of_people_show_a_profile_change_and_a_deletion_at_once(
    client: httpx.AsyncClient,
) -> None:
    """Followers and notifications read people from auth's cards (gateway/people.py)."""
    author, fan = await make_user(client), await make_user(client)
    await follow(client, fan, author)
    liked = await post(client, author, "like me")
    answer = await client.post(f"/api/v1/posts/{liked['id']}/like/", headers=fan.headers)
    assert answer.status_code == 200, answer.text

    async def notified_actors() -> list[dict[str, Any]]:
        listed = await client.get("/api/v1/notifications/", headers=author.headers)
        return [actor for n in listed.json()["results"] for actor in n["actors"]]

    await eventually(notified_actors, lambda actors: fan.id in {a["id"] for a in actors})
    followers = f"/api/v1/users/{author.id}/followers/"
    # Read once, so the fan's card is in Redis before the change.
    assert [u["id"] for u in (await client.get(followers)).json()["results"]] == [fan.id]

    renamed = await client.patch(
        "/api/v1/auth/me/", json={"display_name": "Renamed Fan"}, headers=fan.headers
    )
    assert renamed.status_code == 200, renamed.text
    shown = (await client.get(followers)).json()["results"]
    assert [u["display_name"] for u in shown] == ["Renamed Fan"]
    assert {a["display_name"] for a in await notified_actors()} == {"Renamed Fan"}

    gone = await client.request(
        "DELETE", "/api/v1/auth/me/", json={"password": fan.password}, headers=fan.headers
    )
    assert gone.status_code in (200, 202, 204), gone.text
    assert (await client.get(followers)).json()["results"] == []
    assert await notified_actors() == []
