"""Moderation's three tiers through the public API, with the real ML worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import JobStatus

from services.moderation.repository import ModerationRepository
from services.moderation.resources import JOB_QUEUE
from tests import factories
from tests.e2e.feed_helpers import feed_sql, post
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import TEST_SECRET, Stack
from tests.support.waiting import eventually
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner

# alt-profanity-check's scores for these texts: 1.00, 0.81, 0.59, 0.02.
REMOVED_TEXT = "you are a fucking idiot"
SHADOW_BANNED_TEXT = "so drunk and silly"
BORDERLINE_TEXT = "what a silly goose"
CLEAN_TEXT = "Hello, ZAP."


async def moderation_score(stack: Stack, post_id: str) -> float | None:
    value = await feed_sql(stack, "SELECT moderation_score FROM posts WHERE id = $1::uuid", post_id)
    return None if value is None else float(value)


async def scored(stack: Stack, post_id: str) -> float:
    async def probe() -> float | None:
        return await moderation_score(stack, post_id)

    value = await eventually(probe, lambda v: v is not None, timeout=30)
    assert value is not None
    return value


async def make_moderator(client: httpx.AsyncClient, stack: Stack) -> User:
    return await factories.make_moderator(client, stack.settings["auth"].database_url)


async def moderation_sql(stack: Stack, query: str, *args: object) -> Any:
    """One value from the moderation service's own database."""
    connection = await asyncpg.connect(stack.dsn("moderation"))
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def test_each_tier2_band_applies_its_outcome(client: httpx.AsyncClient, stack: Stack) -> None:
    author, reader = await make_user(client), await make_user(client)
    posts = {
        text: await post(client, author, text)
        for text in (REMOVED_TEXT, SHADOW_BANNED_TEXT, BORDERLINE_TEXT, CLEAN_TEXT)
    }
    scores = {text: await scored(stack, created["id"]) for text, created in posts.items()}
    assert scores[REMOVED_TEXT] >= 0.85
    assert 0.70 <= scores[SHADOW_BANNED_TEXT] < 0.85
    assert 0.40 <= scores[BORDERLINE_TEXT] < 0.70
    assert scores[CLEAN_TEXT] < 0.40

    def view(text: str, user: User) -> object:
        return client.get(f"/api/v1/posts/{posts[text]['id']}/", headers=user.headers)

    # Removed: gone for everyone. Shadow-banned: only its author sees it.
    assert_problem(await view(REMOVED_TEXT, author), 404)
    assert_problem(await view(REMOVED_TEXT, reader), 404)
    assert (await view(SHADOW_BANNED_TEXT, author)).status_code == 200
    assert_problem(await view(SHADOW_BANNED_TEXT, reader), 404)
    # Borderline: no automatic action, but a human looks at it.
    assert (await view(BORDERLINE_TEXT, reader)).status_code == 200
    assert (await view(CLEAN_TEXT, reader)).status_code == 200

    moderator = await make_moderator(client, stack)
    queue = await client.get(
        "/api/v1/moderation/queue/", params={"limit": 100}, headers=moderator.headers
    )
    assert queue.status_code == 200, queue.text
    queued = {item["content_id"]: item for item in queue.json()["results"]}
    assert posts[BORDERLINE_TEXT]["id"] in queued
    assert queued[posts[BORDERLINE_TEXT]["id"]]["source"] == "score"
    assert posts[CLEAN_TEXT]["id"] not in queued


async def test_a_rerun_scoring_job_applies_once(client: httpx.AsyncClient, stack: Stack) -> None:
    author = await make_user(client)
    created = await post(client, author, REMOVED_TEXT)
    await scored(stack, created["id"])
    pool: ArqRedis = await create_pool(RedisSettings.from_dsn(stack.platform.redis_url))
    try:
        job = await pool.enqueue_job(
            "score_content",
            "post",
            created["id"],
            author.id,
            REMOVED_TEXT,
            1,
            _queue_name=JOB_QUEUE,
        )
        assert job is not None
        # The worker keeps no results: the job is done when arq no longer knows it.
        await eventually(job.status, lambda status: status == JobStatus.not_found, timeout=30)
    finally:
        await pool.aclose()
    dsn = stack.dsn("moderation")
    connection = await asyncpg.connect(dsn)
    try:
        decisions = await connection.fetchval(
            "SELECT count(*) FROM decisions WHERE content_id = $1::uuid", created["id"]
        )
        scores = await connection.fetchval(
            "SELECT count(*) FROM scores WHERE content_id = $1::uuid", created["id"]
        )
    finally:
        await connection.close()
    assert (decisions, scores) == (1, 1)


async def test_reports_queue_content_and_a_moderator_decides(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    author = await make_user(client)
    created = await post(client, author, "perfectly polite, yet reported")
    reporters = [await make_user(client) for _ in range(5)]
    report_ids = []
    for reporter in reporters:
        answer = await client.post(
            f"/api/v1/posts/{created['id']}/report/",
            json={"reason": "harassment", "note": "not nice"},
            headers=reporter.headers,
        )
        assert answer.status_code == 201, answer.text
        report_ids.append(answer.json()["report_id"])
    again = await client.post(
        f"/api/v1/posts/{created['id']}/report/",
        json={"reason": "spam"},
        headers=reporters[0].headers,
    )
    # A repeat report is accepted, changes nothing, and answers with the report it repeats.
    assert again.status_code == 201, again.text
    assert again.json()["report_id"] == report_ids[0]
    stored = "SELECT reason FROM reports WHERE id = $1::uuid"
    assert (
        await moderation_sql(stack, stored, report_ids[0])
        == moderation_pb2.REPORT_REASON_HARASSMENT
    )
    assert_problem(
        await client.post(
            f"/api/v1/posts/{created['id']}/report/",
            json={"reason": "spam"},
            headers=author.headers,
        ),
        400,
    )

    moderator = await make_moderator(client, stack)
    queue = await client.get(
        "/api/v1/moderation/queue/", params={"source": "reports"}, headers=moderator.headers
    )
    item = next(i for i in queue.json()["results"] if i["content_id"] == created["id"])
    assert item["report_count"] == 5
    assert queue.json()["results"][0]["id"] == item["id"]  # escalated: first in line

    claimed = await client.post(
        f"/api/v1/moderation/queue/{item['id']}/claim/", headers=moderator.headers
    )
    assert claimed.json()["status"] == "claimed"
    other = await make_moderator(client, stack)
    stolen = await client.post(
        f"/api/v1/moderation/queue/{item['id']}/decision/",
        json={"action": "approve"},
        headers=other.headers,
    )
    assert_problem(stolen, 403, reason="claimed-by-another")

    decided = await client.post(
        f"/api/v1/moderation/queue/{item['id']}/decision/",
        json={"action": "remove", "note": "harassment confirmed"},
        headers=moderator.headers,
    )
    assert decided.status_code == 201, decided.text
    decision = decided.json()
    assert (decision["action"], decision["moderator_id"], decision["automatic"]) == (
        "remove",
        moderator.id,
        False,
    )
    assert_problem(await client.get(f"/api/v1/posts/{created['id']}/"), 404)
    twice = await client.post(
        f"/api/v1/moderation/queue/{item['id']}/decision/",
        json={"action": "approve"},
        headers=moderator.headers,
    )
    assert_problem(twice, 409, reason="already-decided")

    # The author may appeal once; nobody else may.
    path = f"/api/v1/moderation/decisions/{decision['id']}/appeal/"
    assert_problem(
        await client.post(path, json={"text": "me too"}, headers=reporters[0].headers), 404
    )
    appealed = await client.post(path, json={"text": "it was a joke"}, headers=author.headers)
    assert appealed.status_code == 201, appealed.text
    assert appealed.json()["source"] == "appeal"
    assert_problem(await client.post(path, json={"text": "again"}, headers=author.headers), 409)


async def test_two_moderators_deciding_one_unclaimed_item_at_once(
    client: httpx.AsyncClient, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    author, reporter, reader = [await make_user(client) for _ in range(3)]
    created = await post(client, author, "polite, reported, and decided twice at once")
    reported = await client.post(
        f"/api/v1/posts/{created['id']}/report/", json={"reason": "spam"}, headers=reporter.headers
    )
    assert reported.status_code == 201, reported.text
    slow, fast = await make_moderator(client, stack), await make_moderator(client, stack)
    item_id = await moderation_sql(
        stack, "SELECT id::text FROM queue_items WHERE content_id = $1::uuid", created["id"]
    )

    # The first decision to read the item pauses there until the second has its answer, or
    # is seen waiting for the first (on the item's lock): both have tried to decide it at once.
    read = ModerationRepository.item
    first_read, second_answered = asyncio.Event(), asyncio.Event()
    watcher = await asyncpg.connect(stack.dsn("moderation"))
    blocked = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE '%FROM queue_items%'"
    )

    async def second_done_or_waiting() -> None:
        while not second_answered.is_set() and not await watcher.fetchval(blocked):
            await asyncio.sleep(0.02)

    async def read_then_pause(
        self: ModerationRepository, item: uuid.UUID, *, lock: bool = False
    ) -> Any:
        found = await read(self, item, lock=lock)
        if not first_read.is_set():
            first_read.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_done_or_waiting(), 2)
        return found

    monkeypatch.setattr(ModerationRepository, "item", read_then_pause)

    def decide(moderator: User, action: str) -> Any:
        return client.post(
            f"/api/v1/moderation/queue/{item_id}/decision/",
            json={"action": action},
            headers=moderator.headers,
        )

    try:
        approving = asyncio.create_task(decide(slow, "approve"))
        await first_read.wait()
        removing = await decide(fast, "remove")
        second_answered.set()
        answers = {"approve": await approving, "remove": removing}
    finally:
        await watcher.close()

    won = [action for action, answer in answers.items() if answer.status_code == 201]
    assert len(won) == 1, {action: answer.text for action, answer in answers.items()}
    [winner] = won
    [loser] = set(answers) - {winner}
    assert_problem(answers[loser], 409, reason="already-decided")
    # The post is as the winner left it: the loser changed nothing.
    decision_id = answers[winner].json()["id"]
    source = "SELECT moderation_source_id FROM posts WHERE id = $1::uuid"
    assert await feed_sql(stack, source, created["id"]) == f"decision:{decision_id}"
    shown = await client.get(f"/api/v1/posts/{created['id']}/", headers=reader.headers)
    assert shown.status_code == (200 if winner == "approve" else 404), shown.text
    decisions = "SELECT count(*) FROM decisions WHERE content_id = $1::uuid AND NOT automatic"
    assert await moderation_sql(stack, decisions, created["id"]) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/moderation/queue/"),
        ("POST", "/api/v1/moderation/queue/01900000-0000-7000-8000-000000000000/claim/"),
        ("POST", "/api/v1/moderation/queue/01900000-0000-7000-8000-000000000000/decision/"),
    ],
)
async def test_non_moderators_are_refused_at_the_gateway(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    user = await make_user(client)
    answer = await client.request(method, path, json={"action": "remove"}, headers=user.headers)
    assert_problem(answer, 403)
    assert_problem(await client.request(method, path, json={"action": "remove"}), 401)


@pytest.fixture
async def moderation_rpc(stack: Stack) -> AsyncIterator[moderation_pb2_grpc.ModerationServiceStub]:
    async with grpc.aio.insecure_channel(stack.targets["moderation"]) as channel:
        yield moderation_pb2_grpc.ModerationServiceStub(channel)


async def test_non_moderators_are_refused_by_the_service_itself(
    client: httpx.AsyncClient, moderation_rpc: moderation_pb2_grpc.ModerationServiceStub
) -> None:
    user = await make_user(client)
    signer = IdentitySigner(TEST_SECRET)
    as_user = (
        (
            IDENTITY_METADATA_KEY,
            signer.sign(Identity(service="gateway", user_id=uuid.UUID(user.id))),
        ),
    )
    calls = [
        moderation_rpc.ListQueue(moderation_pb2.ListQueueRequest(), metadata=as_user),
        moderation_rpc.Decide(
            moderation_pb2.DecideRequest(item_id=user.id, action=moderation_pb2.ACTION_REMOVE),
            metadata=as_user,
        ),
        moderation_rpc.ClaimItem(
            moderation_pb2.ClaimItemRequest(item_id=user.id), metadata=as_user
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
