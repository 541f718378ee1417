"""Authors' public cards for a page of posts: from auth's read model in Redis, with auth
asked only for the cards it has not filled yet (zapcore.user_cards)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from zap.auth.v1 import auth_pb2
from zap.feed.v1 import feed_pb2
from zapcore.redis import Batch
from zapcore.user_cards import Cards, UserCards

if TYPE_CHECKING:
    from zap.auth.v1.auth_pb2_grpc import AuthServiceAsyncStub as AuthClient

# GetUsers answers at most this many ids a call.
_USERS_BATCH = 100


@dataclass(frozen=True)
class QueuedCards:
    """The authors' cards a batch reads: whose, and where their replies are."""

    user_ids: list[str]
    replies: slice


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
        return await self._completed(known)

    def queue(self, batch: Batch, posts: Sequence[feed_pb2.Post]) -> QueuedCards:
        """Add the reads of these posts' authors' cards to a batch another read sends."""
        wanted = list(dict.fromkeys(post.author_id for post in posts))
        return QueuedCards(wanted, self._cards.queue_get(batch, wanted))

    async def attach_queued(
        self, queued: QueuedCards, replies: Sequence[Any], posts: Sequence[feed_pb2.Post]
    ) -> None:
        """`attach`, from the cards a batch read."""
        known = UserCards.parse(queued.user_ids, replies[queued.replies])
        _attach(await self._completed(known), posts)

    async def _completed(self, known: Cards) -> dict[str, auth_pb2.User]:
        """The cards found, and those auth fills for the ones its read model lacked."""
        missing = known.missing
        for start in range(0, len(missing), _USERS_BATCH):
            batch = missing[start : start + _USERS_BATCH]
            answer = await self._auth.GetUsers(auth_pb2.GetUsersRequest(user_ids=batch))
            known.found.update((user.id, user) for user in answer.users)
        return known.found

    async def attach(self, posts: Sequence[feed_pb2.Post]) -> None:
        """Set each post's author card where the account can be shown; callers leave out
        (or look up again) a post left without one."""
        _attach(await self.cards(post.author_id for post in posts), posts)


def _attach(cards: dict[str, auth_pb2.User], posts: Sequence[feed_pb2.Post]) -> None:
    for post in posts:
        card = cards.get(post.author_id)
        if card is not None:
            post.author.CopyFrom(card)
