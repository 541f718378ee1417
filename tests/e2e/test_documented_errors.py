"""The error table of docs/product.md (and the README's summary of it) is what the gateway
answers: a client that branches on these statuses and reasons gets what the docs promise.
Each case is one row of the table; a change to the answers must change the docs too."""

from __future__ import annotations

import httpx

from tests.factories import make_user
from tests.support.problems import assert_problem

NO_SUCH_POST = "01900000-0000-7000-8000-000000000000"


async def test_malformed_requests_are_400(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    headers = {**user.headers, "Content-Type": "application/json"}

    not_json = await client.post("/api/v1/posts/", content=b'{"content": ', headers=headers)
    assert_problem(not_json, 400, reason="malformed-json")
    bad_key = await client.post(
        "/api/v1/posts/",
        json={"content": "hello"},
        headers={**user.headers, "Idempotency-Key": "k" * 256},
    )
    assert_problem(bad_key, 400, reason="invalid-idempotency-key")
    yourself = await client.post(f"/api/v1/users/{user.id}/follow/", headers=user.headers)
    assert_problem(yourself, 400)


async def test_bad_ids_cursors_and_limits_are_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    bad_post_id = await client.get("/api/v1/posts/not-a-uuid/", headers=user.headers)
    assert_problem(bad_post_id, 422, fields=("post_id",))
    bad_user_id = await client.post("/api/v1/users/not-a-uuid/follow/", headers=user.headers)
    assert_problem(bad_user_id, 422, fields=("user_id",))
    for path in ("/api/v1/feed/home/", f"/api/v1/users/{user.id}/followers/"):
        forged = await client.get(path, params={"cursor": "forged"}, headers=user.headers)
        assert_problem(forged, 422, reason="invalid-cursor", fields=("cursor",))
    too_many = await client.get("/api/v1/feed/home/", params={"limit": 101}, headers=user.headers)
    assert_problem(too_many, 422, fields=("limit",))


async def test_tokens_and_unknown_objects(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    missing = await client.get("/api/v1/feed/home/")
    assert_problem(missing, 401)
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    no_post = await client.get(f"/api/v1/posts/{NO_SUCH_POST}/", headers=user.headers)
    assert_problem(no_post, 404)
    no_route = await client.get("/api/v1/no-such-thing/", headers=user.headers)
    assert_problem(no_route, 404)
