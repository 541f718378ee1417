"""Authors' public cards for a page of posts: from auth's read model in Redis, with auth
asked only for the cards it has not filled yet (zapcore.user_cards)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zapcore.user_cards import Cards, UserCards

if TYPE_CHECKING:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient

# GetUsers answers at most this many ids a call.
_USERS_BATCH = 100


class Authors:
    def __init__(self, cards: UserCards, auth: AuthClient) -> None:
        self._cards = cards
        self._auth = auth

    async def cards(self, user_ids: Iterable[str]) -> dict[str, auth_pb2.User]:
        """The cards of the accounts that can be shown; a gone account has none."""
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        try:
            known = await self._cards.get(wanted)
        except RedisError:
            known = Cards(missing=wanted)
        missing = known.missing
        for start in range(0, len(missing), _USERS_BATCH):
            batch = missing[start : start + _USERS_BATCH]
            answer = await self._auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=batch))
            known.found.update((user.id, user) for user in answer.users)
        return known.found

    async def attach(self, posts: Sequence[feed_pb2.Post]) -> None:
        """Set each post's author card where the account can be shown; callers leave out
        (or look up again) a post left without one."""
        cards = await self.cards(post.author_id for post in posts)
        for post in posts:
            card = cards.get(post.author_id)
            if card is not None:
                post.author.CopyFrom(card)
