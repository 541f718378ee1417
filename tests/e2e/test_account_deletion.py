"""GDPR deletion end to end: gone from every read at once, then from every database."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import asyncpg
import grpc
import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.engine import make_url

from services.auth.deletion.cascade import purge
from services.auth.worker import announce_deletions
from services.media.object_store import ObjectStore
from services.media.processing.upkeep import forget_owner
from services.media.resources import MediaResources
from tests.e2e.feed_helpers import follow, post, wait_in_home
from tests.factories import TestUser as User
from tests.factories import make_user
from tests.support.media import jpeg_with_gps, keys_of, png, presign, ready, upload
from tests.support.media import uploaded as uploaded_media
from tests.support.problems import assert_problem
from tests.support.stack import TEST_SECRET, Stack, free_port
from tests.support.waiting import eventually
from zap.auth.v1 import auth_pb2, auth_pb2_grpc
from zap.events.v1 import events_pb2
from zapcore.db import Database
from zapcore.deletion import deletion_consumer
from zapcore.events import ACCOUNT_DELETIONS, EventPublisher, consuming, stream_key
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner

ME = "/api/v1/auth/me/"
# Services that take part in the cascade and report a receipt.
CASCADE = {"feed", "graph", "media", "moderation", "notification"}


def dsn(stack: Stack, service: str) -> str:
    return stack.dsn(service)


async def rows_mentioning(stack: Stack, needles: list[str]) -> list[str]:
    """Every row of every table of every service database whose text contains a needle."""
    found = []
    for service in sorted(stack.settings):
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


async def deletion_status(stack: Stack, user_id: str) -> set[str]:
    """The services whose receipt auth shows to an admin (GetDeletionStatus)."""
    admin = Identity(service="gateway", user_id=uuid.uuid4(), role="admin")
    metadata = ((IDENTITY_METADATA_KEY, IdentitySigner(TEST_SECRET).sign(admin)),)
    async with grpc.aio.insecure_channel(stack.auth_target) as channel:
        answer = await auth_pb2_grpc.AuthServiceStub(channel).GetDeletionStatus(
            auth_pb2.GetDeletionStatusRequest(user_id=user_id), metadata=metadata
        )
    return {receipt.service for receipt in answer.receipts}


async def media_rows(stack: Stack, user_id: str) -> int:
    connection = await asyncpg.connect(dsn(stack, "media"))
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM media WHERE owner_id = $1::uuid", user_id
        )
    finally:
        await connection.close()
    return int(count)


async def notifications_of(client: httpx.AsyncClient, user: User) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/notifications/", headers=user.headers)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def actors(notifications: list[dict[str, Any]]) -> set[str]:
    return {actor["id"] for n in notifications for actor in n["actors"]}


async def followers_of(client: httpx.AsyncClient, user: User) -> int:
    profile = await client.get(f"/api/v1/users/{user.id}/")
    return int(profile.json()["counts"]["followers"])


async def build_a_life(client: httpx.AsyncClient, victim: User, friend: User) -> dict[str, Any]:
    """Posts (one with a photo), an upload never completed, comments, likes, follows both
    ways, a block, a mute, a report, notifications both ways."""
    stranger, pest = await make_user(client), await make_user(client)
    await follow(client, victim, friend)
    await follow(client, friend, victim)
    photo = await ready(
        client, victim, (await uploaded_media(client, victim, jpeg_with_gps()))["id"]
    )
    abandoned = (await presign(client, victim, "image/png", 10_000)).json()
    async with httpx.AsyncClient(timeout=30) as browser:
        await upload(browser, abandoned["upload"]["url"], abandoned["upload"]["fields"], png())
    mine = await post(client, victim, "my life story #memoir", media_ids=[photo["id"]])
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
    # Each is an actor in the other's notifications.
    await eventually(lambda: notifications_of(client, friend), lambda n: victim.id in actors(n))
    await eventually(lambda: notifications_of(client, victim), lambda n: friend.id in actors(n))
    return {"mine": mine, "theirs": theirs, "photo": photo}


async def test_deletion_is_immediate_for_readers_and_complete_after_the_cascade(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis], store: ObjectStore
) -> None:
    victim, friend = await make_user(client), await make_user(client)
    life = await build_a_life(client, victim, friend)
    friend_followers = await followers_of(client, friend)
    assert len(await keys_of(store, victim.id)) == 4  # three variants and an abandoned upload
    _, redis = redis_db
    # The photo's card (media's read model, zapcore.media_cards) names its owner in its URLs.
    photo_card = f"zap:media:{{{life['photo']['id']}}}"
    assert victim.id.encode() in (await redis.get(photo_card) or b"")

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
    assert await deletion_status(stack, victim.id) >= CASCADE
    assert await followers_of(client, friend) == friend_followers - 1
    assert victim.id not in actors(await notifications_of(client, friend))
    assert await keys_of(store, victim.id) == []
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
    # last access token out until it expires, the user's rate-limit window, and auth's
    # short-lived mark that the account is gone (no profile data in it).
    assert not await redis.exists(photo_card)
    keys = [k.decode() async for k in redis.scan_iter(match=f"*{victim.id}*")]
    # Expiring on their own within the hour: the deny-list stamp, the edge's rate-limit
    # counters (gateway/ratelimit.py, and the `limits` library's elsewhere), the gone card.
    transient = (
        "zap:denied-user:",
        f"zap:rl:{{{victim.id}}}/",
        "zap:rl:{LIMITER/user/",
        "zap:users:{",
    )
    for key in keys:
        if key.startswith("zap:users:{") and not key.endswith(":generation"):
            assert await redis.get(key) == b"", key
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


async def media_group(redis: Redis) -> dict[str, Any] | None:
    """media's consumer group on the account_deletions stream, as Redis reports it."""
    try:
        groups = await redis.xinfo_groups(stream_key(ACCOUNT_DELETIONS))
    except ResponseError:  # no stream yet
        return None
    found: dict[str, Any] | None = next((g for g in groups if g["name"] == b"media"), None)
    return found


def entry_id(value: bytes) -> tuple[int, int]:
    """A stream entry id, comparable ("<ms>-<seq>")."""
    ms, seq = value.decode().split("-")
    return int(ms), int(seq)


async def test_a_service_stopped_during_the_deletion_catches_up_after_restart(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis], store: ObjectStore
) -> None:
    _, redis = redis_db
    victim = await make_user(client)
    photo = await ready(
        client, victim, (await uploaded_media(client, victim, png(), "image/png"))["id"]
    )
    await post(client, victim, "a picture", media_ids=[photo["id"]])
    held = await keys_of(store, victim.id)
    assert held != []
    # media's forget consumer reads through its group (recreated after the test's Redis flush).
    await eventually(lambda: media_group(redis), lambda group: group is not None)
    consumers = stack.workers["media"].ctx["consumers"]
    await consumers.stop()
    try:
        gone = await client.request(
            "DELETE", "/api/v1/auth/me/", json={"password": victim.password}, headers=victim.headers
        )
        assert gone.status_code in (200, 202, 204), gone.text
        others = CASCADE - {"media"}
        await eventually(
            lambda: deletion_status(stack, victim.id), lambda done: done >= others, timeout=30
        )
        await asyncio.sleep(1.0)  # time enough for a receipt that should not come

        # media still holds everything, has said nothing, and the event waits unread in its
        # consumer group (delivered to nobody, so nothing is pending either).
        assert "media" not in await deletion_status(stack, victim.id)
        assert "media" not in await receipts(stack, victim.id)
        assert await media_rows(stack, victim.id) == 1
        assert await keys_of(store, victim.id) == held
        entries = await redis.xrange(stream_key(ACCOUNT_DELETIONS))
        announced = [
            key
            for key, fields in entries
            if events_pb2.Envelope.FromString(fields[b"e"]).account_deleted.user_id == victim.id
        ]
        assert len(announced) == 1
        group = await media_group(redis)
        assert group is not None
        assert entry_id(group["last-delivered-id"]) < entry_id(announced[0])
        assert group["pending"] == 0
        assert group["lag"] >= 1
    finally:
        consumers.start()

    # Restarted, it reads the waiting entry, removes the data, then sends its receipt.
    await eventually(
        lambda: deletion_status(stack, victim.id), lambda done: "media" in done, timeout=30
    )
    assert await media_rows(stack, victim.id) == 0
    assert await keys_of(store, victim.id) == []
    assert await deletion_status(stack, victim.id) >= CASCADE
    group = await media_group(redis)
    assert group is not None
    assert group["pending"] == 0
    assert entry_id(group["last-delivered-id"]) >= entry_id(announced[0])


async def dead_letters(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter(match="zap:events:*:dead:*")]


async def status_when_up(stack: Stack, user_id: str) -> set[str]:
    """deletion_status, or nothing while the call fails: the first failure's traceback,
    rendered with its locals by the console logger, holds this process's loop for seconds."""
    try:
        return await deletion_status(stack, user_id)
    except grpc.aio.AioRpcError:
        return set()


async def test_a_deletion_outlasts_an_outage_longer_than_the_dead_letter_window(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis], store: ObjectStore
) -> None:
    """media's database is unreachable (its URL points at a closed port) while the deletion
    arrives, for many times the window after which another topic's entry is dead-lettered;
    when it is back, media finishes its part and reports in."""
    _, redis = redis_db
    victim = await make_user(client)
    photo = await ready(
        client, victim, (await uploaded_media(client, victim, png(), "image/png"))["id"]
    )
    await post(client, victim, "a picture", media_ids=[photo["id"]])
    assert await media_rows(stack, victim.id) == 1

    media: MediaResources = stack.workers["media"].ctx["resources"]
    closed = make_url(media.settings.database_url).set(port=free_port())
    down = dataclasses.replace(media, db=Database(closed.render_as_string(False), pool_size=1))
    serving = [down]
    # media's own cascade consumer, with a dead-letter window of two deliveries 0.2 s apart.
    window = {"claim_idle_ms": 200, "max_deliveries": 2, "block_ms": 50}
    outage = deletion_consumer(
        redis, "media", lambda user_id: forget_owner(serving[0], user_id), **window
    )
    consumers = stack.workers["media"].ctx["consumers"]
    await consumers.stop()
    try:
        async with consuming(outage):
            gone = await client.request(
                "DELETE", ME, json={"password": victim.password}, headers=victim.headers
            )
            assert gone.status_code in (200, 202, 204), gone.text
            others = CASCADE - {"media"}
            await eventually(
                lambda: status_when_up(stack, victim.id), lambda done: done >= others, timeout=30
            )
            # Tried again and again for well past the window, failing every time.
            tries = await eventually(lambda: media_deliveries(redis), lambda n: n >= 8, timeout=30)
            assert tries >= 8
            assert "media" not in await deletion_status(stack, victim.id)
            assert await media_rows(stack, victim.id) == 1
            assert await dead_letters(redis) == []

            serving[0] = media  # the database is back
            await eventually(
                lambda: status_when_up(stack, victim.id), lambda done: "media" in done, timeout=30
            )
    finally:
        consumers.start()
        await down.db.dispose()
    assert await media_rows(stack, victim.id) == 0
    assert await keys_of(store, victim.id) == []
    assert await deletion_status(stack, victim.id) >= CASCADE
    assert await dead_letters(redis) == []
    remaining = await rows_mentioning(stack, [victim.id, victim.email, victim.username])
    assert all(r.startswith(("auth.users", "auth.deletion_receipts")) for r in remaining), remaining


async def media_deliveries(redis: Redis) -> int:
    """How many times media's oldest unacknowledged deletion entry has been delivered."""
    pending = await redis.xpending_range(
        stream_key(ACCOUNT_DELETIONS), "media", min="-", max="+", count=1
    )
    return int(pending[0]["times_delivered"]) if pending else 0


def overdue() -> float:
    return REGISTRY.get_sample_value("zap_account_deletions_overdue") or 0.0


async def test_a_deletion_a_service_never_received_is_announced_again_once_overdue(
    client: httpx.AsyncClient, stack: Stack, redis_db: tuple[str, Redis]
) -> None:
    """The announcement is lost for media (as when an earlier version dead-lettered it, or
    Redis lost the stream): auth's worker, finding media's receipt still missing after the
    re-announce delay, publishes the deletion again, and counts it overdue meanwhile."""
    _, redis = redis_db
    victim = await make_user(client)
    await ready(client, victim, (await uploaded_media(client, victim, png(), "image/png"))["id"])
    await eventually(lambda: media_group(redis), lambda group: group is not None)
    consumers = stack.workers["media"].ctx["consumers"]
    await consumers.stop()
    try:
        gone = await client.request(
            "DELETE", ME, json={"password": victim.password}, headers=victim.headers
        )
        assert gone.status_code in (200, 202, 204), gone.text
        others = CASCADE - {"media"}
        await eventually(
            lambda: deletion_status(stack, victim.id), lambda done: done >= others, timeout=30
        )
        entries = await redis.xrange(stream_key(ACCOUNT_DELETIONS))
        await redis.xdel(stream_key(ACCOUNT_DELETIONS), *[key for key, _ in entries])
    finally:
        consumers.start()
    await asyncio.sleep(1.0)  # time enough for a receipt that cannot come
    assert "media" not in await deletion_status(stack, victim.id)
    assert await media_rows(stack, victim.id) == 1

    db = Database(stack.settings["auth"].database_url, pool_size=1)
    # The worker's job as its cron runs it, with the re-announce delay already over.
    ctx = {
        "db": db,
        "events_redis": redis,
        "settings": stack.auth_settings.model_copy(update={"deletion_reannounce_after_seconds": 0}),
    }
    try:
        await announce_deletions(ctx)
        late = overdue()
        assert late >= 1
        await eventually(
            lambda: deletion_status(stack, victim.id), lambda done: "media" in done, timeout=30
        )
        assert await media_rows(stack, victim.id) == 0
        assert await deletion_status(stack, victim.id) >= CASCADE
        await announce_deletions(ctx)
        assert overdue() <= late - 1
    finally:
        await db.dispose()
