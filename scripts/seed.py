"""Seed a realistic data set into the running stack's databases, through the services' code.

    make up-bench                       # terminal 1 (the stack: graph and Redis are needed)
    python -m scripts.seed              # terminal 2: 12 000 users, 100 000 posts, ...

Shape: power-law follower counts (Zipf-weighted choice of whom to follow, log-normal number
of follows per user), one "giant" just under the fanout threshold (pushed, the fanout
benchmark's author), a few celebrities above it (pulled at read time), posts spread over the
last week with Zipf-distributed hashtags, likes and comments biased towards popular posts.

Rows are written with each service's own models (auth's users with a real Argon2id hash,
graph's edges and counts, feed's posts, likes, comments and interactions); home feeds are
materialised with the statement the fanout worker uses, then scored by the worker's own
rescoring code. The accounts the benchmark signs in as are written to
bench-results/seed.json (they all share one password).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from tqdm import tqdm

from services.auth.models import User
from services.auth.passwords.hasher import PasswordHasher
from services.auth.settings import AuthSettings
from services.feed.models import Comment, Interaction, Like, Post, PostHashtag
from services.feed.resources import FeedResources
from services.feed.settings import FeedSettings
from services.feed.timeline.ranking import engagement_score
from services.feed.timeline.repository import FeedRepository
from services.feed.timeline.upkeep import rescore
from services.graph.models import Follow, UserCounts
from services.graph.settings import GraphSettings
from zapcore.db import Database
from zapcore.ids import new_id
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

PASSWORD = "seed password 2026"
WORDS = [
    "zap",
    "ship",
    "build",
    "feed",
    "graph",
    "coffee",
    "morning",
    "launch",
    "rust",
    "python",
    "deploy",
    "queue",
    "cache",
    "latency",
    "cloud",
    "music",
    "photo",
    "travel",
    "city",
    "night",
    "code",
    "review",
    "garden",
    "books",
    "design",
    "data",
    "team",
    "friday",
    "weekend",
    "sunrise",
    "ocean",
    "mountain",
    "bike",
    "run",
    "film",
    "art",
    "game",
    "news",
    "idea",
]
CHUNK = 5000


def chunks(rows: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Plan:
    """The whole data set, decided up front from one seed, so a run is reproducible."""

    def __init__(self, args: argparse.Namespace, threshold: int) -> None:
        rng = random.Random(args.seed)
        self.rng = rng
        self.now = datetime.now(UTC)
        n = args.users
        self.user_ids = [new_id() for _ in range(n)]
        self.giant = self.user_ids[0]
        self.celebrities = self.user_ids[1 : 1 + args.celebrities]
        # Followers: the giant just under the threshold, celebrities above it, everyone else
        # by preferential (Zipf) choice.
        followers: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        others = self.user_ids[1 + args.celebrities :]
        rng.shuffle(others)
        giant_fans = min(threshold - 1, n - 1)
        followers[self.giant] = set(rng.sample(self.user_ids[1:], giant_fans))
        for number, celebrity in enumerate(self.celebrities):
            count = min(n - 1, threshold + 500 * (number + 1))
            candidates = [u for u in self.user_ids if u != celebrity]
            followers[celebrity] = set(rng.sample(candidates, count))
        weights = [1 / (rank + 10) ** 1.1 for rank in range(len(others))]
        cumulative = list(itertools.accumulate(weights))
        for follower in self.user_ids:
            wanted = min(len(others) - 1, int(rng.lognormvariate(3.0, 1.0)))
            for _ in range(wanted):
                followee = others[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
                if followee != follower:
                    followers[followee].add(follower)
        self.followers = followers

        # Posts: activity is Zipf-like too; the special accounts post a fixed amount.
        special = [self.giant, *self.celebrities]
        regular = self.user_ids[len(special) :]
        activity = [1 / (rank + 5) ** 0.8 for rank in range(len(regular))]
        authors = [*special * args.special_posts]
        authors += rng.choices(regular, weights=activity, k=args.posts - len(authors))
        tags = [f"{rng.choice(WORDS)}{i}" for i in range(500)]
        tag_weights = [1 / (i + 1) for i in range(len(tags))]
        self.posts: list[dict[str, Any]] = []
        window = timedelta(days=7).total_seconds()
        for author in authors:
            hashtags = sorted(set(rng.choices(tags, weights=tag_weights, k=rng.randint(0, 3))))
            words = " ".join(rng.choices(WORDS, k=rng.randint(5, 25)))
            self.posts.append(
                {
                    "id": new_id(),
                    "author_id": author,
                    "content": words + "".join(f" #{t}" for t in hashtags),
                    "hashtags": hashtags,
                    "created_at": self.now - timedelta(seconds=rng.random() * window),
                }
            )
        # Likes and comments lean towards the posts of popular authors.
        popularity = [1 + len(followers.get(p["author_id"], ())) for p in self.posts]
        self.likes: set[tuple[uuid.UUID, uuid.UUID]] = set()
        for post in rng.choices(self.posts, weights=popularity, k=args.likes):
            self.likes.add((post["id"], rng.choice(self.user_ids)))
        self.comments = [
            (post, rng.choice(self.user_ids))
            for post in rng.choices(self.posts, weights=popularity, k=args.comments)
        ]


async def seed_auth(plan: Plan, platform: PlatformSettings) -> None:
    settings = AuthSettings()
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=1,
    )
    digest = await hasher.hash(PASSWORD)
    hasher.close()
    db = Database(settings.database_url, pool_size=2)
    rows = [
        {
            "id": uid,
            "email": f"seed{i:06d}@zap.example",
            "username": f"seed{i:06d}",
            "display_name": f"Seed {i}",
            "password_hash": digest,
        }
        for i, uid in enumerate(plan.user_ids)
    ]
    with tqdm(total=len(rows), desc="auth users", unit="row") as bar:
        for part in chunks(rows):
            async with db.unit_of_work() as session:
                await session.execute(insert(User), part)
            bar.update(len(part))
    await db.dispose()


async def seed_graph(plan: Plan) -> int:
    db = Database(GraphSettings().database_url, pool_size=2)
    edges = [
        {"followee_id": followee, "follower_id": follower, "created_at": plan.now}
        for followee, fans in plan.followers.items()
        for follower in fans
    ]
    following = Counter(edge["follower_id"] for edge in edges)
    counts = [
        {"user_id": uid, "followers": len(plan.followers.get(uid, ())), "following": following[uid]}
        for uid in plan.user_ids
    ]
    with tqdm(total=len(edges) + len(counts), desc="graph edges", unit="row") as bar:
        for table, rows in ((Follow, edges), (UserCounts, counts)):
            for part in chunks(rows):
                async with db.unit_of_work() as session:
                    await session.execute(insert(table), part)
                bar.update(len(part))
    await db.dispose()
    return len(edges)


async def seed_feed(plan: Plan, platform: PlatformSettings, threshold: int) -> int:
    settings = FeedSettings()
    db = Database(settings.database_url, pool_size=4)
    likes = Counter(post_id for post_id, _ in plan.likes)
    comments = Counter(post["id"] for post, _ in plan.comments)
    post_rows = [
        {**post, "like_count": likes[post["id"]], "comment_count": comments[post["id"]]}
        for post in plan.posts
    ]
    author_of = {post["id"]: post["author_id"] for post in plan.posts}
    interactions: Counter[tuple[uuid.UUID, uuid.UUID]] = Counter()
    comment_interactions: Counter[tuple[uuid.UUID, uuid.UUID]] = Counter()
    for post_id, user in plan.likes:
        interactions[(user, author_of[post_id])] += 1
    for post, user in plan.comments:
        comment_interactions[(user, post["author_id"])] += 1
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Post, post_rows),
        (
            PostHashtag,
            [
                {"hashtag": tag, "post_id": p["id"], "created_at": p["created_at"]}
                for p in plan.posts
                for tag in p["hashtags"]
            ],
        ),
        (Like, [{"post_id": p, "user_id": u} for p, u in plan.likes]),
        (
            Comment,
            [
                {
                    "id": new_id(),
                    "post_id": post["id"],
                    "author_id": user,
                    "content": "nice " + plan.rng.choice(WORDS),
                    "created_at": post["created_at"] + timedelta(minutes=5),
                }
                for post, user in plan.comments
            ],
        ),
        (
            Interaction,
            [
                {
                    "user_id": user,
                    "author_id": author,
                    "likes": interactions[(user, author)],
                    "comments": comment_interactions[(user, author)],
                }
                for user, author in set(interactions) | set(comment_interactions)
                if user != author
            ],
        ),
    ]
    total = sum(len(rows) for _, rows in tables)
    with tqdm(total=total, desc="feed rows", unit="row") as bar:
        for table, rows in tables:
            for part in chunks(rows, 2000):
                async with db.unit_of_work() as session:
                    await session.execute(insert(table), part)
                bar.update(len(part))

    # Home feeds, as the fanout worker writes them (authors above the threshold are pulled).
    pushed = [p for p in post_rows if len(plan.followers.get(p["author_id"], ())) < threshold]
    expected = sum(len(plan.followers.get(p["author_id"], ())) + 1 for p in pushed)
    written = 0
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=64)

    async def materialise(bar: tqdm[Any]) -> None:
        nonlocal written
        while (row := await queue.get()) is not None:
            post = Post(**{k: row[k] for k in ("id", "author_id", "created_at")})
            fans = [post.author_id, *plan.followers.get(post.author_id, ())]
            base = engagement_score(0, 0, 0, post.created_at, post.created_at)
            for part in chunks(fans, settings.fanout_batch_size):
                async with db.unit_of_work() as session:
                    result = await FeedRepository(session).fan_out(post, list(part), base)
                written += len(result)
                bar.update(len(result))

    with tqdm(total=expected, desc="feed items", unit="item") as bar:
        workers = [asyncio.create_task(materialise(bar)) for _ in range(4)]
        for row in pushed:
            await queue.put(row)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    async with db.unit_of_work() as session:
        await session.execute(text("ANALYZE"))
    await db.dispose()

    print("scoring every feed item with the worker's rescoring ...", flush=True)
    resources = FeedResources.open(
        platform, settings.model_copy(update={"rescore_window_hours": 24 * 8})
    )
    try:
        await rescore(resources)
    finally:
        await resources.close()
    return written


async def reset(platform: PlatformSettings) -> None:
    if platform.is_production:
        raise SystemExit("refusing to reset a production environment")
    for settings in (AuthSettings(), GraphSettings(), FeedSettings()):
        db = Database(settings.database_url, pool_size=1)
        async with db.unit_of_work() as session:
            tables = (
                await session.execute(
                    text(
                        "SELECT c.relname FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
                        " AND NOT c.relispartition AND c.relname <> 'alembic_version'"
                    )
                )
            ).scalars()
            names = ", ".join(f'"{name}"' for name in tables)
            if names:
                await session.execute(text(f"TRUNCATE {names}"))
        await db.dispose()
    redis = create_redis(platform.redis_url)
    async for key in redis.scan_iter(match="zap:feed:*", count=1000):
        await redis.delete(key)
    await redis.aclose()
    print("emptied auth, graph and feed, and the feed caches")


async def main(args: argparse.Namespace) -> None:
    platform = PlatformSettings()
    threshold = GraphSettings().fanout_threshold
    started = time.perf_counter()
    print(f"planning {args.users} users, {args.posts} posts (fanout threshold {threshold}) ...")
    if args.reset:
        await reset(platform)
    plan = Plan(args, threshold)
    await seed_auth(plan, platform)
    edges = await seed_graph(plan)
    items = await seed_feed(plan, platform, threshold)
    out = {
        "password": PASSWORD,
        "users": len(plan.user_ids),
        "posts": len(plan.posts),
        "follows": edges,
        "likes": len(plan.likes),
        "comments": len(plan.comments),
        "feed_items": items,
        "fanout_threshold": threshold,
        "giant": {"email": "seed000000@zap.example", "followers": len(plan.followers[plan.giant])},
        "celebrities": [
            {"email": f"seed{i + 1:06d}@zap.example", "followers": len(plan.followers[c])}
            for i, c in enumerate(plan.celebrities)
        ],
        # Readers the benchmark signs in as: ordinary users who follow a celebrity.
        "readers": [
            f"seed{i:06d}@zap.example"
            for i, uid in enumerate(plan.user_ids)
            if i > args.celebrities and any(uid in plan.followers[c] for c in plan.celebrities)
        ][: args.readers],
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "readers"}, indent=2))
    print(f"wrote {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=12_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--likes", type=int, default=300_000)
    parser.add_argument("--comments", type=int, default=50_000)
    parser.add_argument("--celebrities", type=int, default=3)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument(
        "--special-posts", type=int, default=10, help="posts by the giant and each celebrity"
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="first empty the auth, graph and feed tables and the feed caches (not in production)",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("bench-results/seed.json"))
    args = parser.parse_args()
    if args.users < 100:
        parser.error("--users must be at least 100")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
