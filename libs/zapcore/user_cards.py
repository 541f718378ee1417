"""Public profiles (id, username, display name, bio, avatar): auth's read model in Redis.

auth owns every entry (zapcore.read_models). GetUsers answers from it and fills what it
lacks: a card for an active account, a short-lived "gone" mark for an id with no active
account (deleted, or never was). A profile change or a deletion drops the card after it
commits and before auth answers, so every reader shows the change on its next read, and a
deleted account's content vanishes from every read at once. Readers that hydrate many
items (feed pages) read the cards in one round trip and ask auth only for the missing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from zap.auth.v1 import auth_pb2
from zapcore.read_models import FencedEntries, Fill
from zapcore.redis import Batch

CARD_TTL_SECONDS = 24 * 3600
# A deleted account is remembered as gone only briefly: the mark names its id.
GONE_TTL_SECONDS = 3600
_GONE = b""  # a real card always has an id, so it never serialises to nothing


@dataclass
class Cards:
    found: dict[str, auth_pb2.User] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)


class UserCards:
    def __init__(self, redis: Redis) -> None:
        self._entries = FencedEntries(redis, "users")

    async def get(self, user_ids: Sequence[str]) -> Cards:
        wanted = list(dict.fromkeys(user_ids))
        return self.parse(wanted, await self._entries.get_many(wanted))

    def queue_get(self, batch: Batch, user_ids: Sequence[str]) -> slice:
        """Add the reads of these (distinct) users' cards to a batch; where the replies are,
        for `parse` with the same ids."""
        return self._entries.queue_get(batch, user_ids)

    @staticmethod
    def parse(user_ids: Sequence[str], replies: Sequence[bytes | None]) -> Cards:
        cards = Cards()
        for user_id, raw in zip(user_ids, replies, strict=True):
            if raw is None:
                cards.missing.append(user_id)
            elif raw == _GONE:
                cards.gone.add(user_id)
            else:
                cards.found[user_id] = auth_pb2.User.FromString(raw)
        return cards

    async def generations(self, user_ids: Sequence[str]) -> list[bytes]:
        return await self._entries.generations(user_ids)

    async def fill(
        self,
        user_ids: Sequence[str],
        generations: Sequence[bytes],
        found: dict[str, auth_pb2.User],
    ) -> int:
        """Cards for the ids found, "gone" for the others (both only if no change raced)."""
        fills = [
            Fill(user_id, generation, found[user_id].SerializeToString(), CARD_TTL_SECONDS)
            if user_id in found
            else Fill(user_id, generation, _GONE, GONE_TTL_SECONDS)
            for user_id, generation in zip(user_ids, generations, strict=True)
        ]
        return await self._entries.fill(fills)

    async def invalidate(self, user_ids: Iterable[str]) -> None:
        await self._entries.invalidate(user_ids)
