"""Text PostgreSQL cannot store (NUL) and other control characters: a 422 at the edge, not a 502."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.feed_helpers import post
from tests.factories import PASSWORD, make_moderator, make_user, new_identity
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually

# NUL first (the one PostgreSQL refuses), then other C0 controls, DEL, a C1 control and a
# lone surrogate, none of which is text anyone means to store.
HOSTILE = ["a\x00b", "\x00", "a\x01", "\x08", "\x1b[31m", "a\x7fb", "\x85", "a\ud800b"]
# A URL cannot carry a lone surrogate (it is not UTF-8).
HOSTILE_QUERY = HOSTILE[:-1]


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """JSON with \\u escapes, as any client may send it (a lone surrogate included)."""
    return await client.request(
        method,
        url,
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@pytest.mark.parametrize("hashtag", HOSTILE_QUERY)
async def test_explore_by_a_hashtag_with_a_control_character_is_a_422(
    client: httpx.AsyncClient, hashtag: str
) -> None:
    answer = await client.get("/api/v1/feed/explore/", params={"hashtag": hashtag})
    assert_problem(answer, 422, reason="validation-error", fields=("hashtag",))


async def test_a_nul_in_a_cursor_is_a_422(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/feed/explore/", params={"cursor": "a\x00b"})
    assert_problem(answer, 422, fields=("cursor",))


async def test_notes_and_texts_of_moderation_with_a_nul_are_refused_and_change_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author = await make_user(client)
    reporter = await make_user(client)
    created = await post(client, author, "reported, with a note nobody can store")
    report = f"/api/v1/posts/{created['id']}/report/"
    for note in HOSTILE:
        body = {"reason": "spam", "note": note}
        refused = await send(client, "POST", report, body, reporter.headers)
        assert_problem(refused, 422, fields=("note",))
    moderator = await make_moderator(client, stack.dsn("auth"))

    async def queued() -> list[dict[str, object]]:
        answer = await client.get(
            "/api/v1/moderation/queue/", params={"source": "reports"}, headers=moderator.headers
        )
        return [i for i in answer.json()["results"] if i["content_id"] == created["id"]]

    assert await queued() == []  # no report was kept

    accepted = await client.post(report, json={"reason": "spam"}, headers=reporter.headers)
    assert accepted.status_code == 201, accepted.text
    items = await eventually(queued, bool, timeout=10)
    decision_path = f"/api/v1/moderation/queue/{items[0]['id']}/decision/"
    for note in HOSTILE:
        body = {"action": "remove", "note": note}
        refused = await send(client, "POST", decision_path, body, moderator.headers)
        assert_problem(refused, 422, fields=("note",))
    assert (await client.get(f"/api/v1/posts/{created['id']}/")).status_code == 200

    decided = await client.post(decision_path, json={"action": "remove"}, headers=moderator.headers)
    assert decided.status_code == 201, decided.text
    appeal = f"/api/v1/moderation/decisions/{decided.json()['id']}/appeal/"
    for text in HOSTILE:
        refused = await send(client, "POST", appeal, {"text": text}, author.headers)
        assert_problem(refused, 422, fields=("text",))
    # The one appeal allowed is still there to make.
    appealed = await client.post(appeal, json={"text": "please look again"}, headers=author.headers)
    assert appealed.status_code == 201, appealed.text


async def test_posts_comments_and_profiles_with_a_nul_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    author = await make_user(client)
    created = await post(client, author, "the one post")
    for text in HOSTILE:
        refused = await send(client, "POST", "/api/v1/posts/", {"content": text}, author.headers)
        assert_problem(refused, 422, fields=("content",))
        tagged = {"content": "fine", "hashtags": [text]}
        refused = await send(client, "POST", "/api/v1/posts/", tagged, author.headers)
        errors = assert_problem(refused, 422)["errors"]
        assert [e["field"].split(".")[0] for e in errors] == ["hashtags"]
        comments = f"/api/v1/posts/{created['id']}/comments/"
        refused = await send(client, "POST", comments, {"content": text}, author.headers)
        assert_problem(refused, 422, fields=("content",))
        for field in ("bio", "display_name"):
            patch = {field: text}
            refused = await send(client, "PATCH", "/api/v1/auth/me/", patch, author.headers)
            assert_problem(refused, 422, fields=(field,))
        register = {**new_identity(), "password": PASSWORD, "password_confirm": PASSWORD}
        register["display_name"] = text
        refused = await send(client, "POST", "/api/v1/auth/register/", register)
        assert_problem(refused, 422, fields=("display_name",))
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert [p["id"] for p in timeline.json()["results"]] == [created["id"]]
    listed = await client.get(f"/api/v1/posts/{created['id']}/comments/")
    assert listed.json()["results"] == []
    me = (await client.get("/api/v1/auth/me/", headers=author.headers)).json()
    assert (me["bio"], me["display_name"]) == ("", "")


@pytest.mark.parametrize("name", ["a\x00b", "a\ud800b"])
async def test_an_unknown_field_named_with_a_control_character_is_a_422(
    client: httpx.AsyncClient, name: str
) -> None:
    author = await make_user(client)
    body = {"content": "fine", name: "x"}
    refused = await send(client, "POST", "/api/v1/posts/", body, author.headers)
    assert_problem(refused, 422, reason="validation-error")
    timeline = await client.get(f"/api/v1/users/{author.id}/posts/")
    assert timeline.json()["results"] == []
