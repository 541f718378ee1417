"""graph's gRPC API on a real server, PostgreSQL and Redis: the rules the other services rely on.

graph stores bare user ids (auth owns users), so these tests act as fresh random users.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from services.graph.app import running
from services.graph.settings import GraphSettings
from tests.support.stack import TEST_SECRET
from zap.common.v1 import common_pb2
from zap.events.v1 import events_pb2
from zap.graph.v1 import graph_pb2, graph_pb2_grpc
from zapcore.events import FIELD, stream_key
from zapcore.identity import IDENTITY_METADATA_KEY, Identity, IdentitySigner
from zapcore.rpc_errors import failure_from_rpc_error

SIGNER = IdentitySigner(TEST_SECRET)


# A worker calling for no user (fanout, delivery).
def as_service() -> tuple[tuple[str, str], ...]:
    # Signed per call: an assertion lives 60 seconds, shorter than a test session.
    return ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service="feed"))),)


def as_user(user_id: uuid.UUID) -> tuple[tuple[str, str], ...]:
    return ((IDENTITY_METADATA_KEY, SIGNER.sign(Identity(service="gateway", user_id=user_id))),)


def new_users(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


@pytest.fixture
async def graph(stack) -> AsyncIterator[graph_pb2_grpc.GraphServiceStub]:
    async with grpc.aio.insecure_channel(stack.targets["graph"]) as channel:
        yield graph_pb2_grpc.GraphServiceStub(channel)


async def follow(graph, follower: uuid.UUID, followee: uuid.UUID) -> graph_pb2.Relationship:
    answer = await graph.Follow(
        graph_pb2.FollowRequest(user_id=str(followee)), metadata=as_user(follower), timeout=20
    )
    return answer.relationship


async def unfollow(graph, follower: uuid.UUID, followee: uuid.UUID) -> graph_pb2.Relationship:
    answer = await graph.Unfollow(
        graph_pb2.UnfollowRequest(user_id=str(followee)), metadata=as_user(follower), timeout=20
    )
    return answer.relationship


async def block(graph, blocker: uuid.UUID, blocked: uuid.UUID) -> graph_pb2.Relationship:
    answer = await graph.Block(
        graph_pb2.BlockRequest(user_id=str(blocked)), metadata=as_user(blocker), timeout=20
    )
    return answer.relationship


async def counts(graph, *users: uuid.UUID) -> list[tuple[int, int]]:
    answer = await graph.GetCounts(
        graph_pb2.GetCountsRequest(user_ids=[str(u) for u in users]), metadata=as_service()
    )
    return [(c.followers, c.following) for c in answer.counts]


async def relationship(graph, viewer: uuid.UUID, other: uuid.UUID) -> graph_pb2.Relationship:
    answer = await graph.GetRelationships(
        graph_pb2.GetRelationshipsRequest(viewer_id=str(viewer), user_ids=[str(other)]),
        metadata=as_service(),
    )
    return answer.relationships[0]


async def refused(call, code: grpc.StatusCode, reason: str | None = None) -> dict[str, str]:
    """Await a call that must fail with `code` (and `reason`); its field violations."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    failure = failure_from_rpc_error(raised.value)
    assert failure.code is code, failure
    if reason is not None:
        assert failure.reason == reason, failure
    return failure.fields


async def list_page(graph, method: str, user: uuid.UUID, cursor: str = "", limit: int = 0):
    request_type = getattr(graph_pb2, f"{method}Request")
    request = request_type(
        user_id=str(user), page=common_pb2.PageRequest(cursor=cursor, limit=limit)
    )
    return await getattr(graph, method)(request, metadata=as_service())


async def walk(graph, method: str, user: uuid.UUID, limit: int) -> list[list[str]]:
    """Every page of a list, following next_cursor."""
    pages, cursor = [], ""
    while True:
        answer = await list_page(graph, method, user, cursor, limit)
        pages.append([edge.user_id for edge in answer.edges])
        cursor = answer.page.next_cursor
        if not cursor:
            return pages


async def graph_events(redis_db) -> list[events_pb2.Envelope]:
    _, redis = redis_db
    entries = await redis.xrange(stream_key("graph"))
    return [events_pb2.Envelope.FromString(fields[FIELD]) for _, fields in entries]


def event_tuples(envelopes: list[events_pb2.Envelope], *among: uuid.UUID) -> list[tuple[str, ...]]:
    """(kind, from, to) of each event about the given users, in publication order."""
    ids = {str(u) for u in among}
    found = []
    for env in envelopes:
        kind = env.WhichOneof("payload")
        payload = getattr(env, kind)
        ends = tuple(getattr(payload, field.name) for field in payload.DESCRIPTOR.fields)
        if set(ends) & ids:
            found.append((kind, *ends))
        assert env.producer == "graph"
    return found


# --- follow and unfollow --------------------------------------------------------------------


async def test_follow_is_idempotent_and_counted_once(graph) -> None:
    alice, bob = new_users(2)
    first = await follow(graph, alice, bob)
    again = await follow(graph, alice, bob)
    assert first == again
    assert (first.user_id, first.following, first.followed_by) == (str(bob), True, False)
    assert await counts(graph, alice, bob) == [(0, 1), (1, 0)]
    seen_by_bob = await relationship(graph, bob, alice)
    assert (seen_by_bob.following, seen_by_bob.followed_by) == (False, True)


async def test_unfollow_is_idempotent_and_counted_once(graph) -> None:
    alice, bob = new_users(2)
    await follow(graph, alice, bob)
    assert not (await unfollow(graph, alice, bob)).following
    assert not (await unfollow(graph, alice, bob)).following
    assert await counts(graph, alice, bob) == [(0, 0), (0, 0)]


async def test_counts_stay_exact_under_fifty_concurrent_follows(graph) -> None:
    star = uuid.uuid4()
    fans = new_users(50)
    # Each fan follows twice at once: duplicates race each other too.
    await asyncio.gather(*(follow(graph, fan, star) for fan in fans for _ in range(2)))
    assert await counts(graph, star) == [(50, 0)]
    assert await counts(graph, *fans) == [(0, 1)] * 50
    listed = await walk(graph, "ListFollowers", star, limit=100)
    assert sorted(listed[0]) == sorted(str(fan) for fan in fans)
    await asyncio.gather(*(unfollow(graph, fan, star) for fan in fans[:20] for _ in range(2)))
    assert await counts(graph, star) == [(30, 0)]


async def test_concurrent_mutual_follows_neither_deadlock_nor_miscount(graph) -> None:
    pairs = [tuple(new_users(2)) for _ in range(10)]

    async def churn(a: uuid.UUID, b: uuid.UUID) -> None:
        for _ in range(5):
            await unfollow(graph, a, b)
            await follow(graph, a, b)

    # A follows B while B follows A, over and over: both touch the same two counts rows.
    calls = [churn(a, b) for a, b in pairs] + [churn(b, a) for a, b in pairs]
    await asyncio.wait_for(asyncio.gather(*calls), timeout=60)
    for a, b in pairs:
        assert await counts(graph, a, b) == [(1, 1), (1, 1)]
        mutual = await relationship(graph, a, b)
        assert (mutual.following, mutual.followed_by) == (True, True)


async def test_a_user_cannot_follow_block_or_mute_themself(graph) -> None:
    me = uuid.uuid4()
    mine = as_user(me)
    target = str(me)
    await refused(
        graph.Follow(graph_pb2.FollowRequest(user_id=target), metadata=mine),
        grpc.StatusCode.INVALID_ARGUMENT,
        "cannot-follow-self",
    )
    await refused(
        graph.Block(graph_pb2.BlockRequest(user_id=target), metadata=mine),
        grpc.StatusCode.INVALID_ARGUMENT,
        "cannot-block-self",
    )
    await refused(
        graph.Mute(graph_pb2.MuteRequest(user_id=target), metadata=mine),
        grpc.StatusCode.INVALID_ARGUMENT,
        "cannot-mute-self",
    )
    assert await counts(graph, me) == [(0, 0)]


@pytest.mark.parametrize("bad", ["", "nope", "123", "' OR 1=1 --"])
async def test_target_ids_must_be_uuids(graph, bad) -> None:
    fields = await refused(
        graph.Follow(graph_pb2.FollowRequest(user_id=bad), metadata=as_user(uuid.uuid4())),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "user_id" in fields


async def test_writes_need_a_signed_in_user(graph) -> None:
    request = graph_pb2.FollowRequest(user_id=str(uuid.uuid4()))
    await refused(graph.Follow(request, metadata=as_service()), grpc.StatusCode.UNAUTHENTICATED)
    await refused(graph.Follow(request), grpc.StatusCode.UNAUTHENTICATED)


# --- blocks and mutes -----------------------------------------------------------------------


async def test_block_removes_follows_both_ways_and_refuses_new_ones(graph) -> None:
    alice, bob, carol = new_users(3)
    await asyncio.gather(follow(graph, alice, bob), follow(graph, bob, alice))
    await follow(graph, carol, alice)
    assert await counts(graph, alice, bob) == [(2, 1), (1, 1)]

    seen = await block(graph, alice, bob)
    assert (seen.blocking, seen.following, seen.followed_by) == (True, False, False)
    assert await block(graph, alice, bob) == seen  # idempotent
    assert await counts(graph, alice, bob) == [(1, 0), (0, 0)]
    from_bob = await relationship(graph, bob, alice)
    assert (from_bob.blocked_by, from_bob.following) == (True, False)

    for follower, followee in [(bob, alice), (alice, bob)]:
        await refused(
            graph.Follow(
                graph_pb2.FollowRequest(user_id=str(followee)), metadata=as_user(follower)
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "blocked",
        )
    assert await counts(graph, alice, bob) == [(1, 0), (0, 0)]

    await graph.Unblock(graph_pb2.UnblockRequest(user_id=str(bob)), metadata=as_user(alice))
    # Unblocking restores nothing, but allows following again.
    assert not (await relationship(graph, alice, bob)).following
    assert (await follow(graph, bob, alice)).following
    assert await counts(graph, alice, bob) == [(2, 0), (0, 1)]


async def test_follows_racing_blocks_never_survive_them(graph) -> None:
    pairs = [tuple(new_users(2)) for _ in range(10)]

    async def follow_or_refused(a: uuid.UUID, b: uuid.UUID) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await follow(graph, a, b)

    calls = []
    for a, b in pairs:
        calls += [follow_or_refused(b, a), block(graph, a, b), follow_or_refused(a, b)]
    await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
    for a, b in pairs:
        seen = await relationship(graph, a, b)
        assert (seen.blocking, seen.following, seen.followed_by) == (True, False, False)
        assert await counts(graph, a, b) == [(0, 0), (0, 0)]


async def test_mute_keeps_the_follow(graph) -> None:
    alice, bob = new_users(2)
    await follow(graph, alice, bob)
    muted = await graph.Mute(graph_pb2.MuteRequest(user_id=str(bob)), metadata=as_user(alice))
    assert (muted.relationship.muting, muted.relationship.following) == (True, True)
    assert await counts(graph, bob) == [(1, 0)]
    unmuted = await graph.Unmute(graph_pb2.UnmuteRequest(user_id=str(bob)), metadata=as_user(alice))
    assert (unmuted.relationship.muting, unmuted.relationship.following) == (False, True)


async def test_exclusions_list_blocks_both_ways_and_mutes(graph) -> None:
    me, blocked, blocker, muted, friend = new_users(5)
    await block(graph, me, blocked)
    await block(graph, blocker, me)
    await graph.Mute(graph_pb2.MuteRequest(user_id=str(muted)), metadata=as_user(me))
    await follow(graph, me, friend)
    answer = await graph.GetExclusions(
        graph_pb2.GetExclusionsRequest(viewer_id=str(me)), metadata=as_service()
    )
    assert list(answer.blocking_ids) == [str(blocked)]
    assert list(answer.blocked_by_ids) == [str(blocker)]
    assert list(answer.muted_ids) == [str(muted)]


# --- batch reads ----------------------------------------------------------------------------


async def test_relationships_answer_in_request_order(graph) -> None:
    me, followed, follower, stranger = new_users(4)
    await follow(graph, me, followed)
    await follow(graph, follower, me)
    asked = [stranger, followed, me, follower, followed]
    answer = await graph.GetRelationships(
        graph_pb2.GetRelationshipsRequest(viewer_id=str(me), user_ids=[str(u) for u in asked]),
        metadata=as_service(),
    )
    assert [r.user_id for r in answer.relationships] == [str(u) for u in asked]
    assert [(r.following, r.followed_by) for r in answer.relationships] == [
        (False, False),
        (True, False),
        (False, False),
        (False, True),
        (True, False),
    ]


async def test_batch_reads_take_at_most_a_hundred_ids(graph) -> None:
    ids = [str(u) for u in new_users(101)]
    await refused(
        graph.GetCounts(graph_pb2.GetCountsRequest(user_ids=ids), metadata=as_service()),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        graph.GetRelationships(
            graph_pb2.GetRelationshipsRequest(viewer_id=ids[0], user_ids=ids), metadata=as_service()
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_counts_answer_in_request_order_and_unknown_users_count_zero(graph) -> None:
    popular, fan, nobody = new_users(3)
    await follow(graph, fan, popular)
    answer = await graph.GetCounts(
        graph_pb2.GetCountsRequest(user_ids=[str(nobody), str(popular), str(fan)]),
        metadata=as_service(),
    )
    assert [(c.user_id, c.followers, c.following, c.pulled) for c in answer.counts] == [
        (str(nobody), 0, 0, False),
        (str(popular), 1, 0, False),
        (str(fan), 0, 1, False),
    ]


async def test_authors_at_the_threshold_are_pulled(stack, databases) -> None:
    # A second graph server on the same database, with a threshold small enough to reach.
    settings = GraphSettings(database_url=databases["graph"], grpc_port=0, fanout_threshold=3)
    async with running(stack.platform, settings) as server:
        port = await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            reader, celebrity, almost, other = new_users(4)
            for author in (celebrity, almost, other):
                await follow(graph, reader, author)
            for fan in new_users(2):
                await follow(graph, fan, celebrity)
                await follow(graph, fan, almost)
            await follow(graph, uuid.uuid4(), celebrity)
            answer = await graph.GetCounts(
                graph_pb2.GetCountsRequest(user_ids=[str(celebrity), str(almost)]),
                metadata=as_service(),
            )
            assert [(c.followers, c.pulled) for c in answer.counts] == [(4, True), (3, True)]
            await unfollow(graph, reader, almost)
            pulled = await graph.ListPulledFollowees(
                graph_pb2.ListPulledFolloweesRequest(user_id=str(reader)), metadata=as_service()
            )
            assert list(pulled.user_ids) == [str(celebrity)]


# --- the fanout stream ----------------------------------------------------------------------


async def test_stream_followers_delivers_everyone_once_in_batches_and_resumes(graph) -> None:
    author = uuid.uuid4()
    fans = new_users(250)
    for start in range(0, len(fans), 50):
        await asyncio.gather(*(follow(graph, fan, author) for fan in fans[start : start + 50]))
    expected = sorted(str(fan) for fan in fans)

    def stream(after: str = "", batch_size: int = 100):
        return graph.StreamFollowers(
            graph_pb2.StreamFollowersRequest(
                user_id=str(author), after_user_id=after, batch_size=batch_size
            ),
            metadata=as_service(),
            timeout=20,
        )

    batches = [list(message.follower_ids) async for message in stream()]
    assert [len(batch) for batch in batches] == [100, 100, 50]
    delivered = [fan for batch in batches for fan in batch]
    assert delivered == expected  # id order, each exactly once

    # A consumer that broke after the first batch resumes from the last id it received.
    resumed = [fan async for message in stream(batches[0][-1]) for fan in message.follower_ids]
    assert resumed == expected[100:]
    default = [list(message.follower_ids) async for message in stream(batch_size=0)]
    assert default == [expected]
    assert [m async for m in stream(expected[-1])] == []


@pytest.mark.parametrize("batch_size", [-1, 10_001])
async def test_stream_batch_size_is_bounded(graph, batch_size) -> None:
    call = graph.StreamFollowers(
        graph_pb2.StreamFollowersRequest(user_id=str(uuid.uuid4()), batch_size=batch_size),
        metadata=as_service(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        [m async for m in call]
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


# --- cursor pagination ----------------------------------------------------------------------


async def test_follower_pages_neither_skip_nor_repeat(graph) -> None:
    author = uuid.uuid4()
    fans = new_users(45)
    for fan in fans:  # one by one, so the newest-first order is known
        await follow(graph, fan, author)
    pages = await walk(graph, "ListFollowers", author, limit=10)
    assert [len(page) for page in pages] == [10, 10, 10, 10, 5]
    assert [fan for page in pages for fan in page] == [str(fan) for fan in reversed(fans)]

    # Follows arriving mid-walk land on top: the rest of the walk is unaffected.
    first = await list_page(graph, "ListFollowers", author, limit=20)
    await asyncio.gather(*(follow(graph, late, author) for late in new_users(5)))
    rest = await walk_from(graph, "ListFollowers", author, first.page.next_cursor, 20)
    listed = [edge.user_id for edge in first.edges] + rest
    assert listed == [str(fan) for fan in reversed(fans)]


async def walk_from(graph, method: str, user: uuid.UUID, cursor: str, limit: int) -> list[str]:
    found = []
    while cursor:
        answer = await list_page(graph, method, user, cursor, limit)
        found += [edge.user_id for edge in answer.edges]
        cursor = answer.page.next_cursor
    return found


async def test_following_pages_newest_first_with_timestamps(graph) -> None:
    fan = uuid.uuid4()
    authors = new_users(7)
    for author in authors:
        await follow(graph, fan, author)
    pages = await walk(graph, "ListFollowing", fan, limit=3)
    assert [a for page in pages for a in page] == [str(a) for a in reversed(authors)]
    answer = await list_page(graph, "ListFollowing", fan)
    stamps = [edge.followed_at.ToDatetime() for edge in answer.edges]
    assert stamps == sorted(stamps, reverse=True)
    assert len(answer.edges) == 7
    assert not answer.page.next_cursor


async def test_forged_or_foreign_cursors_are_invalid(graph) -> None:
    author, other = new_users(2)
    for fan in new_users(3):
        await follow(graph, fan, author)
        await follow(graph, fan, other)
    cursor = (await list_page(graph, "ListFollowers", author, limit=1)).page.next_cursor
    assert cursor
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    bad = [
        ("ListFollowers", author, tampered),
        ("ListFollowers", author, "garbage!"),
        ("ListFollowers", author, "x" * 5000),
        # Genuine, but issued for another user's list, or for the other kind of list.
        ("ListFollowers", other, cursor),
        ("ListFollowing", author, cursor),
    ]
    for method, user, forged in bad:
        fields = await refused(
            list_page(graph, method, user, forged, limit=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid-cursor",
        )
        assert "cursor" in fields


@pytest.mark.parametrize("limit", [-1, 101, 100_000])
async def test_limit_out_of_range_is_invalid(graph, limit) -> None:
    fields = await refused(
        list_page(graph, "ListFollowers", uuid.uuid4(), limit=limit),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "limit" in fields


# --- events and export ----------------------------------------------------------------------


async def test_events_are_published_once_per_real_change(graph, redis_db) -> None:
    alice, bob = new_users(2)
    await follow(graph, alice, bob)
    await follow(graph, alice, bob)
    await unfollow(graph, alice, bob)
    await unfollow(graph, alice, bob)
    await follow(graph, alice, bob)
    await block(graph, bob, alice)
    await block(graph, bob, alice)
    a, b = str(alice), str(bob)
    assert event_tuples(await graph_events(redis_db), alice, bob) == [
        ("followed", a, b),
        ("unfollowed", a, b),
        ("followed", a, b),
        ("unfollowed", a, b),  # the block ended the follow
        ("blocked", b, a),
    ]


async def test_concurrent_duplicate_follows_publish_one_event(graph, redis_db) -> None:
    alice, bob = new_users(2)
    await asyncio.gather(*(follow(graph, alice, bob) for _ in range(10)))
    assert event_tuples(await graph_events(redis_db), alice, bob) == [
        ("followed", str(alice), str(bob))
    ]


async def test_export_holds_everything_about_the_caller(graph) -> None:
    me, followed, follower, blocked, muted = new_users(5)
    await follow(graph, me, followed)
    await follow(graph, follower, me)
    await block(graph, me, blocked)
    await graph.Mute(graph_pb2.MuteRequest(user_id=str(muted)), metadata=as_user(me))
    answer = await graph.ExportUserData(graph_pb2.ExportUserDataRequest(), metadata=as_user(me))
    assert [e.user_id for e in answer.following] == [str(followed)]
    assert [e.user_id for e in answer.followers] == [str(follower)]
    assert all(e.HasField("followed_at") for e in [*answer.following, *answer.followers])
    assert list(answer.blocking_ids) == [str(blocked)]
    assert list(answer.muted_ids) == [str(muted)]
    await refused(
        graph.ExportUserData(graph_pb2.ExportUserDataRequest(), metadata=as_service()),
        grpc.StatusCode.UNAUTHENTICATED,
    )
