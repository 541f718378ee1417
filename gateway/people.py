"""Public profiles by id for the gateway's lists: auth's cards in Redis (zapcore.user_cards),
one round trip for a page of any size, with auth's GetUsers asked only for the ids Redis
does not know (auth fills their cards as it answers). A deleted account has no profile, so
what it did drops out of every list at once."""

from __future__ import annotations

from collections.abc import Iterable

from redis.exceptions import RedisError

from gateway.upstreams import AuthClient
from zap.auth.v1 import auth_pb2
from zapcore.user_cards import Cards, UserCards

# GetUsers answers at most this many ids a call.
USERS_BATCH = 100


class People:
    def __init__(self, cards: UserCards, auth: AuthClient) -> None:
        self._cards = cards
        self._auth = auth

    async def get(self, user_ids: Iterable[str]) -> dict[str, auth_pb2.User]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        try:
            known = await self._cards.get(wanted)
        except (RedisError, OSError):
            known = Cards(missing=wanted)  # Redis cannot answer: auth can
        missing = known.missing
        for start in range(0, len(missing), USERS_BATCH):
            batch = missing[start : start + USERS_BATCH]
            answer = await self._auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=batch))
            known.found.update((user.id, user) for user in answer.users)
        return known.found
