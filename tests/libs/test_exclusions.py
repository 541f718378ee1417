"""graph's read model of blocks and mutes in Redis: fills never undo a change."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from zap.graph.v1 import graph_pb2
from zapcore.exclusions import ENTRY_TTL_SECONDS, ExclusionsCache


def blocking(*user_ids: uuid.UUID) -> graph_pb2.GetExclusionsResponse:
    return graph_pb2.GetExclusionsResponse(blocking_ids=[str(u) for u in user_ids])


async def test_a_fill_is_read_back_until_a_change_drops_it(redis_db: tuple[str, Redis]) -> None:
    _, redis = redis_db
    cache, viewer, other = ExclusionsCache(redis), uuid.uuid4(), uuid.uuid4()
    assert await cache.get(viewer) is None

    assert await cache.fill(viewer, await cache.generation(viewer), blocking(other))
    assert await cache.get(viewer) == blocking(other)
    assert 0 < await redis.ttl(f"zap:exclusions:{{{viewer}}}") <= ENTRY_TTL_SECONDS

    await cache.invalidate([viewer])
    assert await cache.get(viewer) is None


async def test_nobody_excluded_is_an_entry_too(redis_db: tuple[str, Redis]) -> None:
    _, redis = redis_db
    cache, viewer = ExclusionsCache(redis), uuid.uuid4()
    assert await cache.fill(viewer, await cache.generation(viewer), blocking())
    assert await cache.get(viewer) == blocking()


async def test_a_fill_begun_before_a_change_is_not_kept(redis_db: tuple[str, Redis]) -> None:
    """The fill read the database before a block committed: writing it would undo the block
    (an unblock: hide someone again) until the entry expires."""
    _, redis = redis_db
    cache, viewer, other = ExclusionsCache(redis), uuid.uuid4(), uuid.uuid4()
    before = await cache.generation(viewer)
    await cache.invalidate([viewer, other])  # the change, committed meanwhile

    assert not await cache.fill(viewer, before, blocking())
    assert await cache.get(viewer) is None
    # The next fill, begun after the change, is kept.
    assert await cache.fill(viewer, await cache.generation(viewer), blocking(other))
    assert await cache.get(viewer) == blocking(other)


async def test_a_forgotten_user_leaves_no_key(redis_db: tuple[str, Redis]) -> None:
    _, redis = redis_db
    cache, viewer = ExclusionsCache(redis), uuid.uuid4()
    await cache.invalidate([viewer])
    await cache.fill(viewer, await cache.generation(viewer), blocking(uuid.uuid4()))

    await cache.forget(viewer)
    assert [k async for k in redis.scan_iter(match=f"*{viewer}*")] == []
