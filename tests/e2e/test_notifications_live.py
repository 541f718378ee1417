"""WS /ws/notifications/ over real WebSockets through the gateway: the whole path from a
write (a like, a follow) through the events, the deliver worker, the database and Redis
pub/sub to the socket, and the replay from a cursor."""

from __future__ import annotations

import time

import httpx
from prometheus_client import REGISTRY

from services.notification import app as notification_app
from tests.e2e.feed_helpers import follow, post
from tests.e2e.notification_helpers import (
    like,
    listed,
    live_socket,
    make_moderator,
    unlike,
    wait_listed,
)
from tests.factories import make_user
from tests.support.stack import Stack, free_port, gateway_settings, run_worker, serve_gateway
from tests.support.waiting import eventually


async def test_a_like_arrives_on_the_socket(stack: Stack, client: httpx.AsyncClient) -> None:
    author, fan = await make_user(client), await make_user(client)
    written = await post(client, author, "like me")
    async with live_socket(stack.gateway_url, author) as socket:
        assert socket.ready is not None
        assert socket.ready["cursor"]
        await like(client, fan, written["id"])
        notification = await socket.notification()
    assert notification["kind"] == "like"
    assert notification["post_id"] == written["id"]
    assert notification["actor_count"] == 1
    assert [actor["id"] for actor in notification["actors"]] == [fan.id]
    assert notification["actors"][0]["username"] == fan.username
    assert notification["read"] is False


async def test_a_follow_arrives_through_the_bearer_subprotocol(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    star, follower = await make_user(client), await make_user(client)
    async with live_socket(stack.gateway_url, star, subprotocol=True) as socket:
        assert socket.ws.subprotocol == "bearer"
        await follow(client, follower, star)
        notification = await socket.notification()
    assert notification["kind"] == "follow"
    assert [actor["id"] for actor in notification["actors"]] == [follower.id]
    assert notification["post_id"] is None


async def test_reconnecting_with_a_cursor_replays_exactly_what_was_missed(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(4)]
    posts = [await post(client, author, f"post {n}") for n in range(4)]
    async with live_socket(stack.gateway_url, author) as socket:
        await like(client, fans[0], posts[0]["id"])
        first = await socket.notification()
        cursor = socket.cursor
    assert cursor == first["cursor"]
    # Offline: three more, on three posts (three notifications).
    for n in (1, 2, 3):
        await like(client, fans[n], posts[n]["id"])
    await wait_listed(client, author, 4)
    async with live_socket(stack.gateway_url, author, cursor=cursor, wait_ready=False) as socket:
        missed = await socket.notifications(3)
        ready = await socket.until_ready()
        assert [n["post_id"] for n in missed] == [p["id"] for p in posts[1:]]
        assert [n["actors"][0]["id"] for n in missed] == [f.id for f in fans[1:]]
        assert ready["cursor"] == missed[-1]["cursor"]
        # Then live, and nothing replayed twice.
        await like(client, fans[0], posts[3]["id"])
        regrouped = await socket.notification()
        assert regrouped["id"] == missed[-1]["id"]
        assert regrouped["actor_count"] == 2
        assert await socket.quiet_for(1.0) == []


# --- who is told what -----------------------------------------------------------------------


async def test_repeats_are_grouped_and_a_like_notifies_once(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(10)]
    written = await post(client, author, "popular")
    async with live_socket(stack.gateway_url, author) as socket:
        for fan in fans:
            await like(client, fan, written["id"])
        # Each new liker regroups the same notification (same id, count + 1, a new cursor).
        # Regroupings that follow each other closely may arrive as their latest state only.
        seen = [await socket.notification()]
        while seen[-1]["actor_count"] < 10:
            seen.append(await socket.notification())
        assert {n["id"] for n in seen} == {seen[0]["id"]}
        counts = [n["actor_count"] for n in seen]
        assert counts == sorted(set(counts)), counts
        assert len({n["cursor"] for n in seen}) == len(seen)
        # Like, unlike, like again: no second notification.
        await unlike(client, fans[0], written["id"])
        await like(client, fans[0], written["id"])
        assert await socket.quiet_for(1.5) == []
    (grouped,) = await listed(client, author)
    assert grouped["actor_count"] == 10
    assert len(grouped["actors"]) == 10
    # Most recent first.
    assert [a["id"] for a in grouped["actors"]] == [f.id for f in reversed(fans)]


async def test_nobody_is_told_about_their_own_doing(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, fan = await make_user(client), await make_user(client)
    own = await post(client, author, "mine")
    other = await post(client, author, "also mine")
    async with live_socket(stack.gateway_url, author) as socket:
        await like(client, author, own["id"])
        await like(client, fan, other["id"])
        # The fan's like is the first (and only) thing to arrive.
        notification = await socket.notification()
        assert notification["post_id"] == other["id"]
        assert await socket.quiet_for(1.0) == []


async def test_a_muted_actor_produces_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    author, pest, fan = [await make_user(client) for _ in range(3)]
    written = await post(client, author, "hello")
    answer = await client.post(f"/api/v1/users/{pest.id}/mute/", headers=author.headers)
    assert answer.status_code == 200, answer.text
    async with live_socket(stack.gateway_url, author) as socket:
        await like(client, pest, written["id"])
        await follow(client, pest, author)
        await like(client, fan, written["id"])
        notification = await socket.notification()
        assert [a["id"] for a in notification["actors"]] == [fan.id]
        assert notification["actor_count"] == 1
        assert await socket.quiet_for(1.0) == []


async def test_a_blocked_actor_produces_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    """Events already on their way when the block happens are dropped at delivery, and what
    the blocked user did before leaves the blocker's notifications."""
    author, troll, fan = [await make_user(client) for _ in range(3)]
    first, second = await post(client, author, "one"), await post(client, author, "two")
    await like(client, troll, first["id"])
    await like(client, fan, first["id"])
    await wait_listed(client, author, 1, unread_only="true")
    deliver = stack.workers["notification"].ctx["deliver"]
    await deliver.stop()
    try:
        await like(client, troll, second["id"])
        await follow(client, troll, author)
        answer = await client.post(f"/api/v1/users/{troll.id}/block/", headers=author.headers)
        assert answer.status_code == 200, answer.text
    finally:
        deliver.start()

    async def probe() -> list[dict[str, object]]:
        return await listed(client, author)

    # The troll's like is taken out of the group on the first post; nothing else arrives.
    items = await eventually(probe, lambda items: items and items[0]["actor_count"] == 1)
    assert len(items) == 1
    assert [a["id"] for a in items[0]["actors"]] == [fan.id]  # type: ignore[index]
    async with live_socket(stack.gateway_url, author) as socket:
        assert await socket.quiet_for(1.0) == []
    assert len(await listed(client, author)) == 1


# --- durability -------------------------------------------------------------------------------


async def test_stopping_the_deliver_worker_loses_nothing(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(3)]
    posts = [await post(client, author, f"post {n}") for n in range(3)]
    deliver = stack.workers["notification"].ctx["deliver"]
    async with live_socket(stack.gateway_url, author) as socket:
        await deliver.stop()
        try:
            for fan, written in zip(fans, posts, strict=True):
                await like(client, fan, written["id"])
            await follow(client, fans[0], author)
            assert await socket.quiet_for(1.5) == []
            assert await listed(client, author) == []
            # A worker process started afresh (its own consumer names) picks everything up.
            async with run_worker("notification", stack.platform, stack.settings["notification"]):
                got = await socket.notifications(4)
        finally:
            deliver.start()
    assert [n["kind"] for n in got] == ["like", "like", "like", "follow"]
    assert [n["post_id"] for n in got[:3]] == [p["id"] for p in posts]
    assert len(await listed(client, author)) == 4


# --- mentions and moderation (produced by feed and moderation) -------------------------------


async def test_a_mention_arrives(stack: Stack, client: httpx.AsyncClient) -> None:
    author, friend = await make_user(client), await make_user(client)
    async with live_socket(stack.gateway_url, friend) as socket:
        written = await post(client, author, f"look at this @{friend.username}")
        notification = await socket.notification()
    assert notification["kind"] == "mention"
    assert notification["post_id"] == written["id"]
    assert [a["id"] for a in notification["actors"]] == [author.id]


async def test_a_moderators_removal_reaches_the_author_and_the_reporter(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, reporter = await make_user(client), await make_user(client)
    written = await post(client, author, "perfectly polite, yet reported")
    answer = await client.post(
        f"/api/v1/posts/{written['id']}/report/",
        json={"reason": "harassment"},
        headers=reporter.headers,
    )
    assert answer.status_code == 201, answer.text
    moderator = await make_moderator(client, stack)
    queue = await client.get(
        "/api/v1/moderation/queue/", params={"source": "reports"}, headers=moderator.headers
    )
    item = next(i for i in queue.json()["results"] if i["content_id"] == written["id"])
    await client.post(f"/api/v1/moderation/queue/{item['id']}/claim/", headers=moderator.headers)
    async with (
        live_socket(stack.gateway_url, author) as authors,
        live_socket(stack.gateway_url, reporter) as reporters,
    ):
        decided = await client.post(
            f"/api/v1/moderation/queue/{item['id']}/decision/",
            json={"action": "remove", "note": "harassment confirmed"},
            headers=moderator.headers,
        )
        assert decided.status_code == 201, decided.text
        for socket in (authors, reporters):
            told = await socket.notification()
            assert (told["kind"], told["action"], told["reason"], told["post_id"]) == (
                "moderation",
                "removed",
                "harassment confirmed",
                written["id"],
            )
            assert told["actors"] == []


async def test_every_socket_of_a_user_gets_it_whichever_gateway_holds_it(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    author, fan = await make_user(client), await make_user(client)
    written = await post(client, author, "seen everywhere")
    async with (
        serve_gateway(stack.platform, gateway_settings()) as second,
        live_socket(stack.gateway_url, author) as phone,
        live_socket(second, author, subprotocol=True) as laptop,
    ):
        await like(client, fan, written["id"])
        on_phone, on_laptop = await phone.notification(), await laptop.notification()
    assert on_phone == on_laptop
    assert on_phone["post_id"] == written["id"]


# --- a restart of the notification service -----------------------------------------------------


async def test_a_restart_ends_streams_at_once_and_open_sockets_resume(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """Shutdown ends the open Subscribe streams as it begins (UNAVAILABLE, shutting-down)
    instead of holding the grace period; the gateway resumes each from its last cursor, so
    the socket stays open and what happened meanwhile arrives, once."""
    author = await make_user(client)
    fans = [await make_user(client) for _ in range(3)]
    written = await post(client, author, "through a restart")
    port = free_port()
    settings = stack.settings["notification"].model_copy(
        update={"grpc_port": port, "shutdown_grace_seconds": 30}
    )
    platform = stack.platform.model_copy(update={"notification_target": f"127.0.0.1:{port}"})
    labels = {
        "grpc_service": notification_app.SERVICE_NAME,
        "grpc_method": "Subscribe",
        "grpc_code": "UNAVAILABLE",
    }
    ended_before = REGISTRY.get_sample_value("zap_grpc_server_handled_total", labels) or 0.0
    async with (
        serve_gateway(platform, gateway_settings(ws_resume_attempts=8)) as url,
        notification_app.running(platform, settings) as first,
    ):
        await first.start()
        async with live_socket(url, author) as socket:
            await like(client, fans[0], written["id"])
            assert (await socket.notification())["actor_count"] == 1
            began = time.monotonic()
            await first.stop()
            assert time.monotonic() - began < 5  # the grace period is 30 s
            ended = REGISTRY.get_sample_value("zap_grpc_server_handled_total", labels)
            assert ended == ended_before + 1
            # While no notification server runs: stored, then replayed on resumption.
            await like(client, fans[1], written["id"])
            await eventually(
                lambda: listed(client, author), lambda items: items[0]["actor_count"] == 2
            )
            async with notification_app.running(platform, settings) as second:
                await second.start()
                replayed = await socket.notification()
                await like(client, fans[2], written["id"])
                live = await socket.notification()
                assert await socket.quiet_for(0.5) == []
    assert (replayed["actor_count"], live["actor_count"]) == (2, 3)
