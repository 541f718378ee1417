"""A human decision (or an appeal's outcome) outranks every automatic score, in any order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.feed.posts import scoring as feed_scoring
from services.feed.resources import FeedResources
from services.moderation.resources import ModerationResources
from services.moderation.worker import score_content
from tests import factories
from tests.e2e.feed_helpers import feed_sql, post
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually

# alt-profanity-check's scores: 0.02 (clean) and 1.00 (removed).
CLEAN_TEXT = "an ordinary afternoon at the seaside"
REMOVED_TEXT = "you are a fucking idiot"
VISIBLE, REMOVED = 1, 3


async def moderation_sql(stack: Stack, query: str, *args: object) -> Any:
    connection = await asyncpg.connect(stack.dsn("moderation"))
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


@pytest.fixture
async def moderation(stack: Stack) -> AsyncIterator[ModerationResources]:
    resources = ModerationResources.open(stack.platform, stack.settings["moderation"])  # type: ignore[arg-type]
    try:
        yield resources
    finally:
        await resources.close()


async def run_score_job(
    resources: ModerationResources, post_id: str, author_id: str, text: str
) -> str:
    """The worker's job, as arq would run it (late, or a second time)."""
    return await score_content({"resources": resources}, "post", post_id, author_id, text, 1)


async def posted_then_unscored(client: httpx.AsyncClient, stack: Stack, text: str) -> str:
    """A post as it is while the model is down: in feed, never scored anywhere."""
    author = await make_user(client)
    post_id: str = (await post(client, author, text))["id"]
    await eventually(
        lambda: feed_sql(stack, "SELECT moderation_score FROM posts WHERE id = $1::uuid", post_id),
        lambda score: score is not None,
        timeout=30,
    )
    await feed_sql(
        stack,
        "UPDATE posts SET moderation_score = NULL, moderation_source_id = NULL, visibility = 1"
        " WHERE id = $1::uuid",
        post_id,
    )
    for table in ("scores", "decisions", "queue_items"):
        await moderation_sql(stack, f"DELETE FROM {table} WHERE content_id = $1::uuid", post_id)
    return post_id


async def decide_by_hand(
    client: httpx.AsyncClient, stack: Stack, post_id: str, action: str
) -> dict[str, Any]:
    """Someone reports the post and a moderator decides it."""
    reporter = await make_user(client)
    reported = await client.post(
        f"/api/v1/posts/{post_id}/report/", json={"reason": "other"}, headers=reporter.headers
    )
    assert reported.status_code == 201, reported.text
    moderator = await factories.make_moderator(client, stack.settings["auth"].database_url)
    item_id = await moderation_sql(
        stack,
        "SELECT id::text FROM queue_items WHERE content_id = $1::uuid AND status <> 'decided'",
        post_id,
    )
    decided = await client.post(
        f"/api/v1/moderation/queue/{item_id}/decision/",
        json={"action": action, "note": "by hand"},
        headers=moderator.headers,
    )
    assert decided.status_code == 201, decided.text
    body: dict[str, Any] = decided.json()
    return body


async def author_of(stack: Stack, post_id: str) -> str:
    author_id: str = await feed_sql(
        stack, "SELECT author_id::text FROM posts WHERE id = $1::uuid", post_id
    )
    return author_id


async def visibility(stack: Stack, post_id: str) -> int:
    value: int = await feed_sql(stack, "SELECT visibility FROM posts WHERE id = $1::uuid", post_id)
    return value


@pytest.mark.parametrize("order", ["decision-then-score", "score-then-decision"])
async def test_a_clean_score_never_brings_back_a_post_a_moderator_removed(
    client: httpx.AsyncClient, stack: Stack, moderation: ModerationResources, order: str
) -> None:
    post_id = await posted_then_unscored(client, stack, CLEAN_TEXT)
    author = await author_of(stack, post_id)
    if order == "score-then-decision":
        assert await run_score_job(moderation, post_id, author, CLEAN_TEXT) == "clean"
        assert (await client.get(f"/api/v1/posts/{post_id}/")).status_code == 200
    await decide_by_hand(client, stack, post_id, "remove")
    assert_problem(await client.get(f"/api/v1/posts/{post_id}/"), 404)

    # Late (the model was down or behind), or delivered again: arq runs jobs at least once.
    assert await run_score_job(moderation, post_id, author, CLEAN_TEXT) == "clean"

    assert_problem(await client.get(f"/api/v1/posts/{post_id}/"), 404)
    assert await visibility(stack, post_id) == REMOVED
    # The score is still a fact about the text (and the ranking's trust penalty).
    score = await feed_sql(stack, "SELECT moderation_score FROM posts WHERE id = $1::uuid", post_id)
    assert score is not None
    assert score < 0.4
    assert (
        await moderation_sql(
            stack, "SELECT count(*) FROM scores WHERE content_id = $1::uuid", post_id
        )
        == 1
    )


async def test_a_post_decided_by_hand_is_not_asked_to_be_scored_again(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided = await posted_then_unscored(client, stack, CLEAN_TEXT)
    undecided = await posted_then_unscored(client, stack, CLEAN_TEXT)
    await decide_by_hand(client, stack, decided, "remove")
    # Both a few minutes old and unscored: within the sweeper's window.
    for post_id in (decided, undecided):
        await feed_sql(
            stack,
            "UPDATE posts SET created_at = now() - interval '5 minutes' WHERE id = $1::uuid",
            post_id,
        )
    asked: list[uuid.UUID] = []

    async def record(
        resources: FeedResources, kind: str, content_id: uuid.UUID, author_id: uuid.UUID, text: str
    ) -> bool:
        asked.append(content_id)
        return True

    monkeypatch.setattr(feed_scoring, "request_score", record)
    resources = FeedResources.open(stack.platform, stack.settings["feed"])  # type: ignore[arg-type]
    try:
        await feed_scoring.request_missing_scores(resources)
    finally:
        await resources.close()
    assert uuid.UUID(undecided) in asked
    assert uuid.UUID(decided) not in asked


async def test_a_late_removing_score_leaves_up_what_a_moderator_approved(
    client: httpx.AsyncClient, stack: Stack, moderation: ModerationResources
) -> None:
    post_id = await posted_then_unscored(client, stack, REMOVED_TEXT)
    author = await author_of(stack, post_id)
    await decide_by_hand(client, stack, post_id, "approve")

    assert await run_score_job(moderation, post_id, author, REMOVED_TEXT) == "remove"

    assert (await client.get(f"/api/v1/posts/{post_id}/")).status_code == 200
    assert await visibility(stack, post_id) == VISIBLE
    # Nothing automatic is logged, announced or queued over the moderator's decision.
    assert (
        await moderation_sql(
            stack,
            "SELECT count(*) FROM decisions WHERE content_id = $1::uuid AND automatic",
            post_id,
        )
        == 0
    )
    assert (
        await moderation_sql(
            stack,
            "SELECT count(*) FROM queue_items WHERE content_id = $1::uuid AND status <> 'decided'",
            post_id,
        )
        == 0
    )


async def test_an_appeal_upheld_stays_upheld_when_the_score_job_runs_again(
    client: httpx.AsyncClient, stack: Stack, moderation: ModerationResources
) -> None:
    author = await make_user(client)
    post_id = (await post(client, author, REMOVED_TEXT))["id"]
    automatic = "SELECT id::text FROM decisions WHERE content_id = $1::uuid AND automatic"
    decision_id = await eventually(
        lambda: moderation_sql(stack, automatic, post_id), bool, timeout=30
    )
    assert_problem(await client.get(f"/api/v1/posts/{post_id}/"), 404)
    appealed = await client.post(
        f"/api/v1/moderation/decisions/{decision_id}/appeal/",
        json={"text": "it was a quote"},
        headers=author.headers,
    )
    assert appealed.status_code == 201, appealed.text
    moderator = await factories.make_moderator(client, stack.settings["auth"].database_url)
    upheld = await client.post(
        f"/api/v1/moderation/queue/{appealed.json()['id']}/decision/",
        json={"action": "approve"},
        headers=moderator.headers,
    )
    assert upheld.status_code == 201, upheld.text
    assert (await client.get(f"/api/v1/posts/{post_id}/")).status_code == 200

    assert await run_score_job(moderation, post_id, author.id, REMOVED_TEXT) == "remove"

    assert (await client.get(f"/api/v1/posts/{post_id}/")).status_code == 200
    assert (
        await feed_sql(stack, "SELECT moderation_source_id FROM posts WHERE id = $1::uuid", post_id)
        == f"decision:{upheld.json()['id']}"
    )
