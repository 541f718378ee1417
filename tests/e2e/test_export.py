"""GET /auth/me/export/: everything ZAP holds about the caller, from every service."""

from __future__ import annotations

import json

import httpx

from tests.e2e.feed_helpers import follow, post
from tests.factories import make_user


async def test_the_export_holds_my_data_and_nobody_elses_private_data(
    client: httpx.AsyncClient,
) -> None:
    me, friend = await make_user(client), await make_user(client)
    await follow(client, me, friend)
    await follow(client, friend, me)
    mine = await post(client, me, "exported, please")
    theirs = await post(client, friend, "not mine")
    await client.post(f"/api/v1/posts/{theirs['id']}/like/", headers=me.headers)

    answer = await client.get("/api/v1/auth/me/export/", headers=me.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"].startswith("no-store")
    export = answer.json()
    assert export["account"]["email"] == me.email
    assert [p["id"] for p in export["feed"]["posts"]] == [mine["id"]]
    assert export["feed"]["liked_post_ids"] == [theirs["id"]]
    assert [e["user_id"] for e in export["graph"]["following"]] == [friend.id]
    assert [e["user_id"] for e in export["graph"]["followers"]] == [friend.id]
    for section in ("media", "moderation", "notification"):
        assert isinstance(export[section], dict)
    text = json.dumps(export)
    assert friend.email not in text
    assert "not mine" not in text  # their content is not my data
    assert_unauthenticated = await client.get("/api/v1/auth/me/export/")
    assert assert_unauthenticated.status_code == 401
