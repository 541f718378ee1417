"""Tier 2 without the happy path: thresholds at their edges, the model missing, recovery."""

from __future__ import annotations

import contextlib
from pathlib import Path

import asyncpg
import httpx
import pytest
from arq import Retry

from services.feed.posts.scoring import request_missing_scores
from services.feed.resources import FeedResources
from services.moderation.resources import ModerationResources
from services.moderation.tier2 import scoring
from services.moderation.tier2.classifiers import ModelUnavailable, load_classifier
from services.moderation.tier2.policy import Outcome, Thresholds
from services.moderation.worker import score_content
from tests.e2e.feed_helpers import feed_sql, post
from tests.factories import make_user
from tests.support.stack import Stack
from tests.support.waiting import eventually

DEFAULT = Thresholds()


async def moderation_sql(stack: Stack, query: str, *args: object) -> object:
    connection = await asyncpg.connect(stack.dsn("moderation"))
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def cascade_done_by(stack: Stack, user_id: str, service: str) -> bool:
    connection = await asyncpg.connect(stack.dsn("auth"))
    try:
        return bool(
            await connection.fetchval(
                "SELECT count(*) FROM deletion_receipts WHERE user_id = $1::uuid AND service = $2",
                user_id,
                service,
            )
        )
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        (0.0, Outcome.CLEAN),
        (0.3999, Outcome.CLEAN),
        (0.40, Outcome.REVIEW),
        (0.6999, Outcome.REVIEW),
        (0.70, Outcome.SHADOW_BAN),
        (0.8499, Outcome.SHADOW_BAN),
        (0.85, Outcome.REMOVE),
        (1.0, Outcome.REMOVE),
    ],
)
def test_threshold_edges(score: float, outcome: Outcome) -> None:
    assert DEFAULT.outcome(score)[0] == outcome


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        Thresholds(remove_at=0.5, shadow_ban_at=0.7)


def test_a_missing_detoxify_checkpoint_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable):
        load_classifier(tmp_path / "unbiased.ckpt")


async def test_without_a_model_the_job_retries_and_records_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    settings = stack.settings["moderation"].model_copy(
        update={"detoxify_checkpoint": tmp_path / "missing.ckpt"}
    )
    resources = ModerationResources.open(stack.platform, settings)  # type: ignore[arg-type]
    content_id = "01900000-0000-7000-8000-0000000000aa"
    try:
        with pytest.raises(Retry):
            await score_content({"resources": resources}, "post", content_id, "", "you idiot", 1)
    finally:
        await resources.close()
    dsn = stack.dsn("moderation")
    connection = await asyncpg.connect(dsn)
    try:
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM scores WHERE content_id = $1::uuid", content_id
            )
            == 0
        )
    finally:
        await connection.close()


async def test_unscored_content_is_asked_for_again(client: httpx.AsyncClient, stack: Stack) -> None:
    author = await make_user(client)
    created = await post(client, author, "you are a fucking idiot")
    post_id = created["id"]

    async def score() -> object:
        return await feed_sql(
            stack, "SELECT moderation_score FROM posts WHERE id = $1::uuid", post_id
        )

    await eventually(score, lambda v: v is not None, timeout=30)
    # As if moderation had been down: unscored, a few minutes old, never recorded there.
    await feed_sql(
        stack,
        "UPDATE posts SET moderation_score = NULL, moderation_source_id = NULL, visibility = 1,"
        " created_at = now() - interval '5 minutes' WHERE id = $1::uuid",
        post_id,
    )
    dsn = stack.dsn("moderation")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DELETE FROM scores WHERE content_id = $1::uuid", post_id)
        await connection.execute("DELETE FROM decisions WHERE content_id = $1::uuid", post_id)
    finally:
        await connection.close()

    resources = FeedResources.open(stack.platform, stack.settings["feed"])  # type: ignore[arg-type]
    try:
        assert await request_missing_scores(resources) >= 1
    finally:
        await resources.close()
    assert await eventually(score, lambda v: v is not None, timeout=30) >= 0.85


async def test_a_score_checked_before_a_deletion_cannot_land_after_its_cascade(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = await make_user(client)
    text = "an ordinary day at the seaside"
    post_id = (await post(client, author, text))["id"]
    mentions = "SELECT count(*) FROM scores WHERE author_id = $1::uuid"
    await eventually(lambda: moderation_sql(stack, mentions, author.id), lambda n: n == 1)
    # As if that score were still to come: the job below is the one that records it.
    await moderation_sql(stack, "DELETE FROM scores WHERE content_id = $1::uuid", post_id)

    checked = scoring._author_exists

    async def deleted_right_after_the_check(
        resources: ModerationResources, author_id: object
    ) -> bool:
        alive = await checked(resources, author_id)  # type: ignore[arg-type]
        gone = await client.request(
            "DELETE", "/api/v1/auth/me/", json={"password": author.password}, headers=author.headers
        )
        assert gone.status_code in (200, 202, 204), gone.text
        # Unfixed, moderation's part of the cascade finishes here, before the record; fixed,
        # it is held back until this job's transaction ends.
        with contextlib.suppress(AssertionError):
            await eventually(
                lambda: cascade_done_by(stack, author.id, "moderation"), bool, timeout=5
            )
        return alive

    monkeypatch.setattr(scoring, "_author_exists", deleted_right_after_the_check)
    resources = ModerationResources.open(stack.platform, stack.settings["moderation"])  # type: ignore[arg-type]
    try:
        await score_content({"resources": resources}, "post", post_id, author.id, text, 1)
    finally:
        await resources.close()

    await eventually(lambda: cascade_done_by(stack, author.id, "moderation"), bool, timeout=30)
    assert await moderation_sql(stack, mentions, author.id) == 0
