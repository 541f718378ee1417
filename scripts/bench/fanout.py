"""Push fanout throughput, end to end, against a running stack (`make up-bench`).

An author gets N followers (rows in graph's own table, a share of them active readers with
a cached feed), then posts K times, one after another. For each post: the time from the
post's creation to the end of its fanout (the outbox row's done_at), and items per second.

    .venv/bin/python -m scripts.bench.fanout --followers 9999 --posts 10 --active-share 0.3

No seed needed. Results go to bench-results/fanout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.feed.settings import FeedSettings
from services.feed.timeline.cache import FeedCache
from services.graph.settings import GraphSettings
from zapcore.redis import create_redis
from zapcore.settings import PlatformSettings

PASSWORD = "correct horse battery staple"


def dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg", "postgresql")


async def author(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    tag = secrets.token_hex(5)
    email = f"fanout_{tag}@example.com"
    body = {"email": email, "username": f"fanout_{tag}", "password": PASSWORD}
    created = await client.post(
        "/api/v1/auth/register/", json={**body, "password_confirm": PASSWORD}
    )
    created.raise_for_status()
    tokens = await client.post("/api/v1/auth/login/", json={"email": email, "password": PASSWORD})
    tokens.raise_for_status()
    return created.json()["id"], {"Authorization": f"Bearer {tokens.json()['access']}"}


async def give_followers(graph_dsn: str, author_id: str, count: int) -> list[uuid.UUID]:
    followers = [uuid.uuid4() for _ in range(count)]
    connection = await asyncpg.connect(graph_dsn)
    try:
        await connection.copy_records_to_table(
            "follows",
            records=[(uuid.UUID(author_id), f) for f in followers],
            columns=["followee_id", "follower_id"],
        )
    finally:
        await connection.close()
    return followers


async def make_active(readers: list[uuid.UUID]) -> None:
    """Give these followers a cached feed, as if each had read theirs a moment ago."""
    platform, settings = PlatformSettings(), FeedSettings()
    redis = create_redis(platform.redis_url)
    cache = FeedCache(
        redis,
        size=settings.cache_size,
        ttl_seconds=settings.active_window_seconds,
        paging_ttl_seconds=settings.paging_ttl_seconds,
    )
    try:
        for start in range(0, len(readers), 200):
            await asyncio.gather(*(cache.begin_rebuild(r) for r in readers[start : start + 200]))
    finally:
        await redis.aclose()


async def fanout_seconds(feed_dsn: str, post_id: str, limit_seconds: float = 120) -> float:
    connection = await asyncpg.connect(feed_dsn)
    try:
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            row = await connection.fetchrow(
                "SELECT p.created_at, o.done_at FROM posts p "
                "JOIN fanout_outbox o ON o.post_id = p.id WHERE p.id = $1::uuid",
                post_id,
            )
            if row is not None and row["done_at"] is not None:
                return float((row["done_at"] - row["created_at"]).total_seconds())
            await asyncio.sleep(0.02)
    finally:
        await connection.close()
    raise TimeoutError(f"the fanout of {post_id} did not finish")


async def main(args: argparse.Namespace) -> None:
    feed_dsn, graph_dsn = dsn(FeedSettings().database_url), dsn(GraphSettings().database_url)
    async with httpx.AsyncClient(base_url=args.gateway, timeout=30) as client:
        author_id, headers = await author(client)
        followers = await give_followers(graph_dsn, author_id, args.followers)
        await make_active(followers[: int(len(followers) * args.active_share)])
        items = args.followers + 1  # the author sees their own post too
        seconds: list[float] = []
        for index in range(args.posts):
            posted = await client.post(
                "/api/v1/posts/", json={"content": f"fanout bench {index}"}, headers=headers
            )
            posted.raise_for_status()
            seconds.append(await fanout_seconds(feed_dsn, posted.json()["id"]))
            print(f"post {index}: {seconds[-1]:.3f} s, {items / seconds[-1]:,.0f} items/s")
    ordered = sorted(seconds)
    result: dict[str, Any] = {
        "followers": args.followers,
        "active_share": args.active_share,
        "posts": args.posts,
        "p50_seconds": round(statistics.median(ordered), 3),
        "p99_seconds": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "items_per_second_p50": round(items / statistics.median(ordered)),
        "items_per_second_best": round(items / ordered[0]),
    }
    print(json.dumps(result, indent=2))
    write(Path("bench-results/fanout.json"), result)


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--followers", type=int, default=9999)
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--active-share", type=float, default=0.3)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
