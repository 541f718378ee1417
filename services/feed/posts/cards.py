"""Post cards: feed's read model of its own posts in Redis, so that a page of posts is read
without PostgreSQL once the posts on it have been read before.

  zap:feed:card:{<post id>}   hash   v  the post row's version
                                     p  the Post bytes a page shows, without the viewer's own
                                        state and without the author's card (auth's); empty
                                        for a post that is gone (deleted)
                                     f  when `p` was written (unix seconds)
                                     m  the ML tier's moderation score ("" when unscored):
                                        the ranking's trust factor, for the read-time re-rank

Versions, not invalidation. A trigger bumps `posts.version` on every update of a row
(migration 0005), and a card keeps the highest version it was ever offered: a write with a
lower version is refused. Writers and readers offer cards the same way — a like offers the
row it just committed, a read that had to ask the database offers the rows it got — so a
read that began before a change can never put back what the change replaced, whichever
finishes first, with no generation to fence and no window in which the card is missing. A
change whose writer does not hold the whole row (a comment counted, a moderation outcome,
the counters an account deletion takes back) raises the card's floor instead: the version
is kept, the bytes dropped, and the next read asks the database and offers the new row.

A card is fresh for `refresh_seconds` after it was written; later the normal read path asks
the database again. That bounds how long a lost write (a Redis error after the commit, a
crash between the two) can leave a card stale. Degraded reads (the database down) take a
card whatever its age: counts a few minutes old, rather than no feed. Keys expire
`ttl_seconds` after their last write, so memory follows the posts read in that time.

A post deleted with its account (the account deletion cascade) gets a card that is gone at
the highest version, so nothing older can come back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from zap.feed.v1 import feed_pb2
from zapcore.errors import Unavailable
from zapcore.logging import get_logger
from zapcore.redis import Batch

log = get_logger(__name__)

CARD_READS = Counter(
    "zap_feed_post_card_reads_total",
    "Posts asked of the card read model: hit (a fresh card), stale (older than the refresh "
    "time), missing.",
    ["outcome"],
)
_HITS, _STALE, _MISSING = (CARD_READS.labels(o) for o in ("hit", "stale", "missing"))
CARD_WRITE_FAILURES = Counter(
    "zap_feed_post_card_write_failures_total",
    "Card writes Redis refused after a committed change (the card heals within the refresh time).",
)

# Above any version a row can reach: the card of a post deleted with its account.
GONE_FOREVER = 2**62

_OFFER = """
local held = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) < held then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'p', ARGV[2], 'f', ARGV[3], 'm', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_FLOOR = """
local held = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) <= held then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
redis.call('HDEL', KEYS[1], 'p', 'f', 'm')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def card_key(post_id: uuid.UUID | str) -> str:
    return f"zap:feed:card:{{{post_id}}}"


@dataclass(frozen=True)
class Offer:
    """A post as committed at `version`; `post` None when it is gone."""

    post_id: uuid.UUID
    version: int
    post: feed_pb2.Post | None
    moderation_score: float | None = None


@dataclass
class Recalled:
    """What the cards said about the posts asked for."""

    # Fresh cards of posts that exist (the viewer's own state unset).
    cards: dict[uuid.UUID, feed_pb2.Post] = field(default_factory=dict)
    # Posts whose card says they are gone.
    gone: set[uuid.UUID] = field(default_factory=set)
    # Posts to ask the database about: no card, a floored card, or one past its refresh.
    unknown: list[uuid.UUID] = field(default_factory=list)
    # Of `unknown`, the stale cards, for a read that cannot ask the database.
    stale: dict[uuid.UUID, feed_pb2.Post] = field(default_factory=dict)
    # The moderation scores of the scored posts among `cards` and `stale`.
    moderation: dict[uuid.UUID, float] = field(default_factory=dict)


class PostCards:
    def __init__(self, redis: Redis, *, ttl_seconds: int, refresh_seconds: float) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._refresh = refresh_seconds
        self._offer = redis.register_script(_OFFER)
        self._floor = redis.register_script(_FLOOR)

    def queue_recall(self, batch: Batch, post_ids: Sequence[uuid.UUID]) -> slice:
        """Add the reads of these cards to a batch (one HMGET each: many slots)."""
        start = len(batch)
        for post_id in post_ids:
            batch.add("HMGET", card_key(post_id), "p", "f", "m")
        return slice(start, len(batch))

    def recalled(
        self, post_ids: Sequence[uuid.UUID], answers: Sequence[list[bytes | None]]
    ) -> Recalled:
        """The batch's replies to `queue_recall`, in the same order."""
        recalled = Recalled()
        fresh_after = time.time() - self._refresh
        for post_id, answer in zip(post_ids, answers, strict=True):
            data, written, moderation = answer
            if moderation:
                recalled.moderation[post_id] = float(moderation)
            if data is None:
                recalled.unknown.append(post_id)
            elif not data:
                recalled.gone.add(post_id)
            elif float(written or 0) < fresh_after:
                recalled.unknown.append(post_id)
                recalled.stale[post_id] = feed_pb2.Post.FromString(data)
            else:
                recalled.cards[post_id] = feed_pb2.Post.FromString(data)
        # Once per read, not per post: a labelled child's lookup costs more than the count.
        _HITS.inc(len(recalled.cards))
        _STALE.inc(len(recalled.stale))
        _MISSING.inc(len(recalled.unknown) - len(recalled.stale))
        return recalled

    async def recall(self, post_ids: Sequence[uuid.UUID]) -> Recalled:
        batch = Batch()
        cards = self.queue_recall(batch, post_ids)
        return self.recalled(post_ids, (await batch.run(self._redis))[cards])

    async def offer(self, offers: Iterable[Offer]) -> None:
        """Write each card unless Redis holds a newer version of it."""
        now = str(time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            for o in offers:
                data = b"" if o.post is None else _shared_part(o.post).SerializeToString()
                moderation = "" if o.moderation_score is None else repr(o.moderation_score)
                await self._offer(
                    keys=[card_key(o.post_id)],
                    args=[o.version, data, now, self._ttl, moderation],
                    client=pipe,
                )
            await pipe.execute()

    async def floor(self, versions: Mapping[uuid.UUID, int]) -> None:
        """These posts changed (to these versions) in ways only the database can tell."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for post_id, version in versions.items():
                await self._floor(keys=[card_key(post_id)], args=[version, self._ttl], client=pipe)
            await pipe.execute()

    async def after_change(
        self,
        offers: Sequence[Offer] = (),
        floors: Mapping[uuid.UUID, int] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        """After a commit. A count that Redis did not take is logged and left to the refresh
        time to heal. A change that hides a post (`strict`: a deletion, a moderation
        outcome) must not wait that long: the call fails, and its caller's retry (deleting
        and moderating are idempotent, and bump the version again) writes the card."""
        try:
            if offers:
                await self.offer(offers)
            if floors:
                await self.floor(floors)
        except RedisError as error:
            CARD_WRITE_FAILURES.inc(len(offers) + len(floors or {}))
            log.warning("feed.post_cards_not_written", error=str(error), strict=strict)
            if strict:
                raise Unavailable(
                    "the change is saved but cached feeds could not be updated; try again",
                    reason="cache-unavailable",
                ) from error


def _shared_part(post: feed_pb2.Post) -> feed_pb2.Post:
    """What every reader shares: no viewer's state, no author card."""
    if not (post.liked_by_viewer or post.shared_by_viewer or post.HasField("author")):
        return post
    shared = feed_pb2.Post()
    shared.CopyFrom(post)
    shared.liked_by_viewer = shared.shared_by_viewer = False
    shared.ClearField("author")
    return shared
