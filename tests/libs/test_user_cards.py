"""auth's read model of public profiles: cards, "gone" marks, and fills that lose a race."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from zap.auth.v1 import auth_pb2
from zapcore.user_cards import GONE_TTL_SECONDS, UserCards


def card(user_id: str, display_name: str = "Ada") -> auth_pb2.User:
    return auth_pb2.User(id=user_id, username="ada", display_name=display_name)


async def test_cards_and_gone_marks_are_told_apart(redis_db: tuple[str, Redis]) -> None:
    _, redis = redis_db
    cards = UserCards(redis)
    alive, gone, unknown = (str(uuid.uuid4()) for _ in range(3))
    ids = [alive, gone]
    assert await cards.fill(ids, await cards.generations(ids), {alive: card(alive)}) == 2

    read = await cards.get([alive, gone, unknown, alive])
    assert read.found == {alive: card(alive)}
    assert read.gone == {gone}
    assert read.missing == [unknown]
    assert 0 < await redis.ttl(f"zap:users:{{{gone}}}") <= GONE_TTL_SECONDS


async def test_a_fill_that_read_before_a_profile_change_is_not_kept(
    redis_db: tuple[str, Redis],
) -> None:
    _, redis = redis_db
    cards, user_id = UserCards(redis), str(uuid.uuid4())
    [before] = await cards.generations([user_id])
    await cards.invalidate([user_id])  # the change committed while the fill read

    assert await cards.fill([user_id], [before], {user_id: card(user_id, "old name")}) == 0
    assert (await cards.get([user_id])).missing == [user_id]
