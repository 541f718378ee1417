"""GDPR deletion end to end: gone from every read at once, then from every database."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from services.auth.deletion.cascade import purge
from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.problems import assert_problem
from tests.support.stack import Stack
from tests.support.waiting import eventually
from zap.events.v1 import events_pb2
from zapcore.db import Database
from zapcore.events import ACCOUNT_DELETIONS, EventPublisher

# Services that take part in the cascade and report a receipt.
CASCADE = {"feed", "graph", "moderation"}


def dsn(stack: Stack, service: str) -> str:
    return stack.dsn(service)


async def rows_mentioning(stack: Stack, needles: list[str]) -> list[str]:
    """Every row of every table of every service database whose text contains a needle."""
    found = []
    for service in ("auth", *sorted(CASCADE)):
        connection = await asyncpg.connect(dsn(stack, service))
        try:
            tables = await connection.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
            )
            for table in tables:
                name = table["relname"]
                for needle in needles:
                    count = await connection.fetchval(
                        f'SELECT count(*) FROM "{name}" t WHERE t::text ILIKE $1', f"%{needle}%"
                    )
                    if count:
                        found.append(f"{service}.{name} ({count} rows mention {needle})")
        finally:
            await connection.close()
    return found


async def receipts(stack: Stack, user_id: str) -> set[str]:
    connection = await asyncpg.connect(dsn(stack, "auth"))
    try:
        rows = await connection.fetch(
            "SELECT service FROM deletion_receipts WHERE user_id = $1::uuid", user_id
        )
    finally:
        await connection.close()
    return {row["service"] for row in rows}


async def followers_of(client: httpx.AsyncClient, user: User) -> int:
    profile = await client.get(f"/api/v1/users/{user.id}/")
    return int(profile.json()["counts"]["followers"])


async def build_a_life(client: httpx.AsyncClient, victim: User, friend: User) -> dict[str, Any]:
    """Posts, comments, likes, follows both ways, a block, a mute, a report."""
    stranger, pest = await make_user(client), await make_user(client)
    await follow(client, victim, friend)
    await follow(client, friend, victim)
    mine = await post(client, victim, "my life story #memoir")
    theirs = await post(client, friend, "a friend's post")
    auth = victim.headers
    await client.post(f"/api/v1/posts/{theirs['id']}/like/", headers=auth)
    await client.post(
        f"/api/v1/posts/{theirs['id']}/comments/", json={"content": "great post"}, headers=auth
    )
    await client.post(f"/api/v1/posts/{mine['id']}/like/", headers=friend.headers)
    await client.post(f"/api/v1/users/{pest.id}/block/", headers=auth)
    await client.post(f"/api/v1/users/{stranger.id}/mute/", headers=auth)
    await client.post(
        f"/api/v1/posts/{theirs['id']}/report/", json={"reason": "other"}, headers=auth
    )
    await wait_in_home(client, friend, mine["id"])
    return {"mine": mine, "theirs": theirs}


async def test_deletion_is_immediate_for_readers_and_complete_after_the_cascade(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis]
) -> None:
    victim, friend = await make_user(client), await make_user(client)
    life = await build_a_life(client, victim, friend)
    friend_followers = await followers_of(client, friend)

    gone = await client.request(
        "DELETE", "/api/v1/auth/me/", json={"password": victim.password}, headers=victim.headers
    )
    assert gone.status_code in (200, 202, 204), gone.text

    # At once: no login, no token, no profile, no content in anyone's reads.
    login = await client.post(
        "/api/v1/auth/login/", json={"email": victim.email, "password": victim.password}
    )
    assert login.status_code == 401
    assert_problem(await client.get("/api/v1/auth/me/", headers=victim.headers), 401)
    assert_problem(await client.get(f"/api/v1/users/{victim.id}/"), 404)
    assert_problem(await client.get(f"/api/v1/posts/{life['mine']['id']}/"), 404)
    home = await client.get("/api/v1/feed/home/", params={"limit": 100}, headers=friend.headers)
    assert life["mine"]["id"] not in {p["id"] for p in home.json()["results"]}
    followers = await client.get(f"/api/v1/users/{friend.id}/followers/")
    assert victim.id not in {u["id"] for u in followers.json()["results"]}
    comments = await client.get(f"/api/v1/posts/{life['theirs']['id']}/comments/")
    assert comments.json()["results"] == []

    # Then every service removes what it holds and says so.
    await eventually(lambda: receipts(stack, victim.id), lambda done: done >= CASCADE, timeout=30)
    assert await followers_of(client, friend) == friend_followers - 1
    theirs = (await client.get(f"/api/v1/posts/{life['theirs']['id']}/")).json()
    assert (theirs["like_count"], theirs["comment_count"]) == (0, 0)
    # Only auth's tombstone (no PII: email scrambled) and its receipts remain, until purge.
    remaining = await rows_mentioning(stack, [victim.id, victim.email, victim.username])
    assert all(r.startswith(("auth.users", "auth.deletion_receipts")) for r in remaining), remaining

    db = Database(stack.settings["auth"].database_url, pool_size=1)
    try:
        assert await purge(db, grace_days=0) >= 1
    finally:
        await db.dispose()
    assert await rows_mentioning(stack, [victim.id, victim.email, victim.username]) == []

    # Redis: only what expires by itself within minutes: the deny-list entry that keeps the
    # last access token out until it expires, and the user's rate-limit window.
    _, redis = redis_db
    keys = [k.decode() async for k in redis.scan_iter(match=f"*{victim.id}*")]
    transient = ("zap:denied-user:", "zap:rl:{LIMITER/user/")
    assert [k for k in keys if not k.startswith(transient)] == []
    for key in keys:
        assert 0 < await redis.ttl(key) <= 3600, key


async def test_a_repeated_deletion_event_is_harmless(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis]
) -> None:
    victim, friend = await make_user(client), await make_user(client)
    await follow(client, friend, victim)
    await client.request(
        "DELETE", "/api/v1/auth/me/", json={"password": victim.password}, headers=victim.headers
    )
    await eventually(lambda: receipts(stack, victim.id), lambda done: done >= CASCADE, timeout=30)
    followers_before = await followers_of(client, friend)

    # The same event again (a re-delivery, or the worker announcing it twice).
    publisher = EventPublisher(redis_db[1], producer="test")
    await publisher.publish(ACCOUNT_DELETIONS, events_pb2.AccountDeleted(user_id=victim.id))
    await asyncio.sleep(1.5)
    assert await followers_of(client, friend) == followers_before
    assert await receipts(stack, victim.id) >= CASCADE
    dead = [k async for k in redis_db[1].scan_iter(match="zap:events:*:dead:*")]
    assert dead == []
