"""Wait until the stack's background work has drained, and say what was waited for.

A load level leaves work behind it (fanouts, ML scoring of the posts it wrote, events the
notification and feed workers have not consumed yet); a level started on top of that
backlog measures the previous level's leftovers, not its own load. So a benchmark level
starts only once all of these are back to zero:

- the fanout outbox (`fanout_outbox` rows in the feed database with no `done_at`);
- unpublished events (`event_outbox` rows in the feed, graph and moderation databases);
- arq jobs due in each service's queue (`zap:<service>:jobs`: a sorted set scored by the
  time a job may run; a running job stays in it until it finishes). Jobs deferred more
  than a few seconds (a retry in 30 s) are counted apart and not waited for; arq queues
  each cron job a second ahead of its time, and those are not counted at all;
- every consumer group of every event stream (`zap:events:{topic}`: notification's
  deliver readers, feed's graph consumer, media's, the deletion cascades): entries not yet
  delivered to the group (lag) and delivered but not acknowledged (pending);
- content the ML tier has not scored (posts and comments with no `moderation_score`,
  no human decision, from the last 7 days): the feed worker asks again for 500 of each a
  minute, so a freshly seeded data set keeps the moderation worker busy for many minutes.
  The drain asks for those scores itself, as the worker's sweeper would, once the
  moderation queue is empty (`kick_scoring`), so that work is done before a level, not
  inside one.

python -m scripts.bench.drain               # wait (up to --timeout), print what was waited for
python -m scripts.bench.drain --once        # print the backlog and exit
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from services.auth.worker import QUEUE as AUTH_QUEUE
from services.feed.posts.repository import HUMAN_DECISION_PREFIX
from services.feed.resources import JOB_QUEUE as FEED_QUEUE
from services.feed.settings import FeedSettings
from services.graph.settings import GraphSettings
from services.media.resources import JOB_QUEUE as MEDIA_QUEUE
from services.moderation.resources import JOB_QUEUE as MODERATION_QUEUE
from services.moderation.settings import ModerationSettings
from services.notification.resources import JOB_QUEUE as NOTIFICATION_QUEUE
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

QUEUES = (FEED_QUEUE, MODERATION_QUEUE, NOTIFICATION_QUEUE, MEDIA_QUEUE, AUTH_QUEUE)
STREAMS = "zap:events:{*}"
# arq queues cron jobs up to a second before they are due: not a backlog, not reported.
DEFERRED_AFTER_MS = 5000
# Content the feed worker would ask scores for again (services/feed/posts/scoring.py).
SCORING_WINDOW = timedelta(days=7)

_UNSCORED = """
SELECT count(*) FROM {table}
WHERE moderation_score IS NULL AND deleted_at IS NULL
  AND (moderation_source_id IS NULL OR moderation_source_id NOT LIKE $1)
  AND created_at > $2
"""


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Backlog:
    """Background work outstanding at one instant; every count is zero once drained."""

    fanouts_owed: int = 0
    unscored: int = 0
    events_unpublished: dict[str, int] = field(default_factory=dict)
    jobs_due: dict[str, int] = field(default_factory=dict)
    stream_backlog: dict[str, int] = field(default_factory=dict)
    # Not waited for: a job deferred to later (a retry) would hold every level back.
    jobs_deferred: dict[str, int] = field(default_factory=dict)

    def parts(self) -> dict[str, int]:
        counts = {"fanout outbox": self.fanouts_owed, "unscored content": self.unscored}
        counts |= {f"event outbox {db}": n for db, n in self.events_unpublished.items()}
        counts |= {f"queue {queue}": n for queue, n in self.jobs_due.items()}
        counts |= {f"stream {name}": n for name, n in self.stream_backlog.items()}
        return counts

    def outstanding(self) -> dict[str, int]:
        return {name: n for name, n in self.parts().items() if n}

    @property
    def empty(self) -> bool:
        return not self.outstanding()

    def describe(self) -> str:
        left = self.outstanding()
        return ", ".join(f"{name} {n}" for name, n in left.items()) if left else "nothing"


@dataclass
class DrainReport:
    drained: bool
    seconds: float
    # What was outstanding when the wait began (what was waited for) and when it ended.
    waited_for: dict[str, int]
    remaining: dict[str, int]
    scores_requested: int
    deferred_jobs: dict[str, int]

    def line(self) -> str:
        waited = ", ".join(f"{k} {v}" for k, v in self.waited_for.items()) or "nothing"
        if self.drained:
            text = f"drained in {self.seconds:.1f} s (waited for: {waited})"
        else:
            left = ", ".join(f"{k} {v}" for k, v in self.remaining.items())
            text = f"NOT drained after {self.seconds:.1f} s (waited for: {waited}; left: {left})"
        if self.scores_requested:
            text += f"; asked moderation for {self.scores_requested} missing scores"
        deferred = {k: v for k, v in self.deferred_jobs.items() if v}
        if deferred:
            text += f"; deferred jobs not waited for: {deferred}"
        return text


class Drain:
    """Reads the backlog straight from Redis and PostgreSQL (no service API exposes it)."""

    def __init__(self, redis: Redis, feed: asyncpg.Pool, outboxes: dict[str, asyncpg.Pool]):
        self._redis = redis
        self._feed = feed
        self._outboxes = outboxes
        self._scoring: Any = None  # FeedResources, opened only if scores must be asked for

    @classmethod
    async def open(cls) -> Drain:
        feed_dsn = asyncpg_dsn(FeedSettings().database_url)
        outbox_dsns = {
            "feed": feed_dsn,
            "graph": asyncpg_dsn(GraphSettings().database_url),
            "moderation": asyncpg_dsn(ModerationSettings().database_url),
        }
        pools = {
            name: await asyncpg.create_pool(url, min_size=1, max_size=2)
            for name, url in outbox_dsns.items()
        }
        return cls(create_redis(PlatformSettings().redis_url), pools["feed"], pools)

    async def close(self) -> None:
        if self._scoring is not None:
            await self._scoring.close()
        await self._redis.aclose()
        for pool in self._outboxes.values():
            await pool.close()

    async def backlog(self) -> Backlog:
        now_ms = time.time() * 1000
        backlog = Backlog()
        async with self._feed.acquire() as connection:
            backlog.fanouts_owed = await connection.fetchval(
                "SELECT count(*) FROM fanout_outbox WHERE done_at IS NULL"
            )
            since = datetime.now(UTC) - SCORING_WINDOW
            for table in ("posts", "comments"):
                backlog.unscored += await connection.fetchval(
                    _UNSCORED.format(table=table), f"{HUMAN_DECISION_PREFIX}%", since
                )
        for name, pool in self._outboxes.items():
            async with pool.acquire() as connection:
                backlog.events_unpublished[name] = await connection.fetchval(
                    "SELECT count(*) FROM event_outbox"
                )
        for queue in QUEUES:
            backlog.jobs_due[queue] = await self._redis.zcount(queue, "-inf", now_ms)
            later = now_ms + DEFERRED_AFTER_MS
            backlog.jobs_deferred[queue] = await self._redis.zcount(queue, f"({later}", "+inf")
        backlog.stream_backlog = await self._stream_backlog()
        return backlog

    async def _stream_backlog(self) -> dict[str, int]:
        """Per `group@topic`: entries not yet delivered to the group plus those delivered
        and not acknowledged."""
        counts: dict[str, int] = {}
        async for raw in self._redis.scan_iter(match=STREAMS, count=1000, _type="STREAM"):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if ":dead:" in key:
                continue
            topic = key.split("{", 1)[1].split("}", 1)[0]
            groups = await self._redis.xinfo_groups(key)
            last_id: bytes | None = None
            for group in groups:
                name = _text(group["name"])
                lag = group.get("lag")
                if lag is None:
                    # Redis cannot count the lag after deletions: compare the group's last
                    # delivered id with the stream's newest.
                    if last_id is None:
                        last_id = (await self._redis.xinfo_stream(key))["last-generated-id"]
                    lag = 0 if group["last-delivered-id"] == last_id else 1
                counts[f"{name}@{topic}"] = int(lag) + int(group["pending"])
        return counts

    async def request_missing_scores(self, limit: int = 20_000, concurrency: int = 8) -> int:
        """Ask moderation for every missing score at once, with the feed worker's own code
        (its sweeper asks for 500 posts and 500 comments a minute)."""
        from services.feed.posts.repository import PostRepository
        from services.feed.posts.scoring import request_score
        from services.feed.resources import FeedResources

        if self._scoring is None:
            self._scoring = FeedResources.open(PlatformSettings(), FeedSettings())
        resources = self._scoring
        now = datetime.now(UTC)
        # Content younger than this is still being scored by its own write's request.
        until = now - timedelta(seconds=30)
        async with resources.db.read_only() as session:
            missing = await PostRepository(session).unscored(now - SCORING_WINDOW, until, limit)
        gate = asyncio.Semaphore(concurrency)

        async def ask(kind: str, content_id: uuid.UUID, author_id: uuid.UUID, text: str) -> bool:
            async with gate:
                return await request_score(resources, kind, content_id, author_id, text)

        answers = await asyncio.gather(*(ask(*row) for row in missing))
        return sum(answers)

    async def wait(
        self,
        timeout_s: float = 300.0,
        *,
        poll_s: float = 0.5,
        kick_scoring: bool = True,
        quiet_polls: int = 2,
        progress: bool = False,
    ) -> DrainReport:
        """Poll until the backlog has been empty `quiet_polls` times in a row (a finishing
        job may queue its follow-up just after a poll), or `timeout_s` has passed."""
        began = time.perf_counter()
        first = await self.backlog()
        current = first
        requested = 0
        quiet = 0
        last_kick = -1e9
        last_print = began
        while True:
            quiet = quiet + 1 if current.empty else 0
            if quiet >= quiet_polls:
                break
            elapsed = time.perf_counter() - began
            if elapsed >= timeout_s:
                break
            scoring_idle = not current.jobs_due.get(MODERATION_QUEUE)
            if kick_scoring and current.unscored and scoring_idle and elapsed - last_kick > 15:
                last_kick = elapsed
                requested += await self.request_missing_scores()
            if progress and time.perf_counter() - last_print > 10:
                last_print = time.perf_counter()
                print(f"  ... {elapsed:.0f} s, outstanding: {current.describe()}", flush=True)
            await asyncio.sleep(poll_s)
            current = await self.backlog()
        return DrainReport(
            drained=current.empty,
            seconds=round(time.perf_counter() - began, 1),
            waited_for=first.outstanding(),
            remaining=current.outstanding(),
            scores_requested=requested,
            deferred_jobs=current.jobs_deferred,
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def main(args: argparse.Namespace) -> None:
    drain = await Drain.open()
    try:
        if args.once:
            backlog = await drain.backlog()
            print(f"outstanding: {backlog.describe()}")
            deferred = {k: v for k, v in backlog.jobs_deferred.items() if v}
            if deferred:
                print(f"deferred jobs (not waited for): {deferred}")
            return
        report = await drain.wait(args.timeout, kick_scoring=not args.no_kick, progress=True)
        print(report.line())
        if not report.drained:
            raise SystemExit(1)
    finally:
        await drain.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--once", action="store_true", help="print the backlog and exit")
    parser.add_argument(
        "--no-kick", action="store_true", help="do not ask for missing scores, only wait"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
