"""Benchmark moderation: tier-1 rules, and tier-2 time from post to applied score.

    make up-bench                          # terminal 1 (seeded: python -m scripts.seed)
    python -m scripts.bench.moderation     # terminal 2

1. Tier 1 in process: RuleSet.check over a corpus of ordinary, spammy and long texts.
2. Tier 1 over gRPC: CheckText against the running moderation service.
3. Tier 2 end to end under load: posts through the gateway while home feeds are read, each
   timed from the POST to the moment feed holds its ML score.

Writes bench-results/moderation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.bench.load import open_loop
from scripts.bench.report import summarise
from services.feed.settings import FeedSettings
from services.moderation.settings import ModerationSettings
from zap.moderation.v1 import moderation_pb2, moderation_pb2_grpc
from zapcore.identity import IdentitySigner
from zapcore.peers import Peers
from zapcore.settings import PlatformSettings

ORDINARY = [
    "Morning run by the river, 10k in 52 minutes. Coffee next! #running",
    "Our write-up on feed ranking is here: https://example.com/blog/feed-ranking",
    "@ada @grace thanks for the review, merging after lunch",
    "Hello, ZAP.",
    "Anyone else think the new bridge lights look amazing tonight? #city #night",
]
SPAMMY = [
    "BUY NOW!!! click here for free money http://a.test http://b.test http://c.test",
    "wooooooooooooooooooooow amazing amazing amazing amazing amazing amazing deal",
    " ".join(f"#tag{i}" for i in range(20)),
]


def corpus(rng: random.Random, count: int) -> list[str]:
    texts = ORDINARY * 6 + SPAMMY
    long = " ".join(rng.choice(ORDINARY) for _ in range(25))[:2000]
    return [rng.choice([*texts, long]) for _ in range(count)]


def tier1_in_process(texts: list[str]) -> dict[str, Any]:
    rules = ModerationSettings().rules()
    latencies = []
    for text in texts:
        started = time.perf_counter()
        rules.check(text)
        latencies.append(time.perf_counter() - started)
    return summarise(
        "tier 1 RuleSet.check", latencies, [200] * len(latencies), sum(latencies), {200}
    ).__dict__


async def tier1_over_grpc(texts: list[str]) -> dict[str, Any]:
    platform = PlatformSettings()
    peers = Peers(IdentitySigner(platform.internal_secret.get_secret_value()), caller="bench")
    channel = peers.channel(platform.moderation_target, moderation_pb2.DESCRIPTOR)
    stub = moderation_pb2_grpc.ModerationServiceStub(channel)
    latencies = []
    try:
        for text in texts:
            started = time.perf_counter()
            await stub.CheckText(
                moderation_pb2.CheckTextRequest(
                    content_kind=moderation_pb2.CONTENT_KIND_POST, text=text
                )
            )
            latencies.append(time.perf_counter() - started)
    finally:
        await peers.close()
    return summarise(
        "tier 1 CheckText over gRPC", latencies, [200] * len(latencies), sum(latencies), {200}
    ).__dict__


async def tier2_under_load(
    url: str, seed: dict[str, Any], posts: int, reads: float
) -> dict[str, Any]:
    feed = await asyncpg.connect(
        FeedSettings().database_url.replace("postgresql+asyncpg", "postgresql")
    )
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        tokens = []
        for email in seed["readers"][:20]:
            login = await client.post(
                "/api/v1/auth/login/", json={"email": email, "password": seed["password"]}
            )
            tokens.append(login.json()["access"])

        def read(index: int) -> Any:
            auth = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            return client.get("/api/v1/feed/home/", params={"limit": 20}, headers=auth)

        delays: list[float] = []

        async def one(index: int) -> None:
            auth = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            started = time.perf_counter()
            answer = await client.post(
                "/api/v1/posts/", json={"content": f"{ORDINARY[index % 5]} #{index}"}, headers=auth
            )
            post_id = answer.json()["id"]
            while time.perf_counter() - started < 60:
                score = await feed.fetchval(
                    "SELECT moderation_score FROM posts WHERE id = $1::uuid", post_id
                )
                if score is not None:
                    delays.append(time.perf_counter() - started)
                    return
                await asyncio.sleep(0.02)

        async def writes() -> None:
            tasks = []
            for index in range(posts):
                tasks.append(asyncio.create_task(one(index)))
                await asyncio.sleep(0.2)
            await asyncio.gather(*tasks)

        await asyncio.gather(open_loop(reads, posts * 0.2 + 2, read), writes())
    await feed.close()
    return summarise(
        f"tier 2 post -> score applied ({reads:g} reads/s beside)",
        delays,
        [200] * len(delays),
        sum(delays),
        {200},
    ).__dict__


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(3)
    texts = corpus(rng, args.checks)
    results: dict[str, Any] = {"tier1_in_process": tier1_in_process(texts)}
    print(json.dumps(results["tier1_in_process"]), flush=True)
    results["tier1_grpc"] = await tier1_over_grpc(texts[: args.checks // 5])
    print(json.dumps(results["tier1_grpc"]), flush=True)
    seed = json.loads(await asyncio.to_thread(args.seed_file.read_text))
    results["tier2"] = await tier2_under_load(args.url, seed, args.posts, args.reads)
    print(json.dumps(results["tier2"]), flush=True)
    await asyncio.to_thread(args.out.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(args.out.write_text, json.dumps(results, indent=2))
    print(f"wrote {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seed-file", type=Path, default=Path("bench-results/seed.json"))
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--posts", type=int, default=100, help="posts at 5/s for the tier-2 timing")
    parser.add_argument("--reads", type=float, default=20.0, help="home-feed reads/s beside them")
    parser.add_argument("--out", type=Path, default=Path("bench-results/moderation.json"))
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
