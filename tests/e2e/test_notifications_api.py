"""/api/v1/notifications/: the list (cursor pages, actors' profiles), marking read (by id, up
to a cursor, all) and the unread count, through the public API."""

from __future__ import annotations

import httpx

from tests.e2e.feed_helpers import follow, post
from tests.e2e.notification_helpers import like, listed, unread_count, wait_listed
from tests.factories import PASSWORD, make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually


async def test_the_list_pages_newest_first_with_actor_profiles(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(3)]
    answer = await client.get("/api/v1/notifications/", headers=author.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"results": [], "next_cursor": None}

    for n, fan in enumerate(fans):
        written = await post(client, author, f"post {n}")
        await like(client, fan, written["id"])
        await wait_listed(client, author, n + 1)
    await follow(client, fans[0], author)
    everything = await wait_listed(client, author, 4)
    assert [n["kind"] for n in everything] == ["follow", "like", "like", "like"]
    assert [n["actors"][0]["id"] for n in everything] == [
        fans[0].id,
        *(f.id for f in reversed(fans)),
    ]
    first = everything[1]
    assert first["actors"][0]["username"] == fans[2].username
    assert first.keys() >= {"id", "kind", "actor_count", "post_id", "read", "cursor", "created_at"}

    page = await client.get("/api/v1/notifications/", params={"limit": 3}, headers=author.headers)
    assert page.status_code == 200
    body = page.json()
    assert [n["id"] for n in body["results"]] == [n["id"] for n in everything[:3]]
    assert body["next_cursor"]
    rest = await client.get(
        "/api/v1/notifications/",
        params={"limit": 3, "cursor": body["next_cursor"]},
        headers=author.headers,
    )
    assert [n["id"] for n in rest.json()["results"]] == [everything[3]["id"]]
    assert rest.json()["next_cursor"] is None


async def test_mark_read_by_id_up_to_a_cursor_and_all(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(4)]
    for fan in fans:
        await follow(client, fan, author)  # one grouped follow notification...
    await eventually(
        lambda: listed(client, author), lambda items: items and items[0]["actor_count"] == 4
    )
    for n in range(3):  # ...and three likes
        written = await post(client, author, f"post {n}")
        await like(client, fans[n], written["id"])
    items = await wait_listed(client, author, 4)
    assert await unread_count(client, author) == 4

    answer = await client.post(
        "/api/v1/notifications/read/", json={"ids": [items[0]["id"]]}, headers=author.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"marked": 1, "unread_count": 3}
    unread = await listed(client, author, unread_only="true")
    assert [n["id"] for n in unread] == [n["id"] for n in items[1:]]

    # Everything up to and including the second oldest.
    answer = await client.post(
        "/api/v1/notifications/read/",
        json={"up_to_cursor": items[2]["cursor"]},
        headers=author.headers,
    )
    assert answer.json() == {"marked": 2, "unread_count": 1}
    assert [n["id"] for n in await listed(client, author, unread_only="true")] == [items[1]["id"]]

    answer = await client.post(
        "/api/v1/notifications/read/", json={"all": True}, headers=author.headers
    )
    assert answer.json() == {"marked": 1, "unread_count": 0}
    assert all(n["read"] for n in await listed(client, author))
    # Marking again changes nothing.
    answer = await client.post(
        "/api/v1/notifications/read/", json={"all": True}, headers=author.headers
    )
    assert answer.json() == {"marked": 0, "unread_count": 0}


async def test_new_activity_makes_a_read_group_unread_again(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, first, second = [await make_user(client) for _ in range(3)]
    written = await post(client, author, "hello")
    await like(client, first, written["id"])
    (item,) = await wait_listed(client, author, 1)
    await client.post("/api/v1/notifications/read/", json={"all": True}, headers=author.headers)
    assert await unread_count(client, author) == 0
    await like(client, second, written["id"])
    regrouped = await eventually(
        lambda: listed(client, author), lambda items: items[0]["actor_count"] == 2
    )
    assert len(regrouped) == 1
    assert regrouped[0]["id"] == item["id"]
    assert regrouped[0]["read"] is False
    assert regrouped[0]["cursor"] != item["cursor"]
    assert await unread_count(client, author) == 1


async def test_a_deleted_actor_vanishes_from_the_list(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, leaver = await make_user(client), await make_user(client)
    await follow(client, leaver, author)
    await wait_listed(client, author, 1)
    answer = await client.request(
        "DELETE", "/api/v1/auth/me/", json={"password": PASSWORD}, headers=leaver.headers
    )
    assert answer.status_code == 202, answer.text
    assert await listed(client, author) == []


async def test_bad_requests_are_problems(stack: Stack, client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    assert_problem(await client.get("/api/v1/notifications/"), 401)
    assert_problem(await client.get("/api/v1/notifications/unread-count/"), 401)
    read = "/api/v1/notifications/read/"
    assert_problem(await client.post(read, json={"all": True}), 401)
    assert_problem(await client.post(read, json={}, headers=user.headers), 422)
    assert_problem(
        await client.post(read, json={"all": True, "ids": ["x"]}, headers=user.headers), 422
    )
    assert_problem(await client.post(read, json={"everything": True}, headers=user.headers), 422)
    answer = await client.post(read, json={"ids": ["not-a-uuid"]}, headers=user.headers)
    assert_problem(answer, 422, fields=("notification_ids",))
    answer = await client.post(read, json={"up_to_cursor": "forged"}, headers=user.headers)
    assert_problem(answer, 422, reason="invalid-cursor")
    answer = await client.get(
        "/api/v1/notifications/", params={"cursor": "forged"}, headers=user.headers
    )
    assert_problem(answer, 422, reason="invalid-cursor")
    answer = await client.get("/api/v1/notifications/", params={"limit": 0}, headers=user.headers)
    assert_problem(answer, 422, fields=("limit",))
