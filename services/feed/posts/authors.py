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
        self, queued: QueuedCards, replies: Sequence[Any] | None, posts: Sequence[feed_pb2.Post]
    ) -> None:
        """`attach`, from the cards a batch read (None: Redis could not answer, auth is
        asked about all of them)."""
        if replies is None:
            known = Cards(missing=list(queued.user_ids))
        else:
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

    async def attach(self, items: Sequence[feed_pb2.Post | feed_pb2.Comment]) -> None:
        """Set each post's or comment's author card where the account can be shown; callers
        leave out (or look up again) an item left without one."""
        _attach(await self.cards(item.author_id for item in items), items)

    async def shown(self, comments: Sequence[feed_pb2.Comment]) -> list[feed_pb2.Comment]:
        """The comments whose authors can be shown, each with its author's card: a deleted
        account's comments vanish from every read at once."""
        await self.attach(comments)
        return [comment for comment in comments if comment.HasField("author")]


def _attach(
    cards: dict[str, auth_pb2.User], items: Sequence[feed_pb2.Post | feed_pb2.Comment]
) -> None:
    for item in items:
        card = cards.get(item.author_id)
        if card is not None:
            item.author.CopyFrom(card)
