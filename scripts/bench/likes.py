"""CPU per post, like, unlike and share, process by process, against the running stack.

Where does one like spend its CPU? This signs up `--likers` accounts and `--authors` with
one post each, then sends `--count` new posts (by the likers, who have no followers: the
fanout is the author's own feed), `--count` likes (each a new liker/post pair), the same
number of unlikes of them, and as many shares, closed loop with `--concurrency` requests
in flight. A post's span includes its ML scoring, which runs after the answer.
Around each phase it reads utime+stime of every ZAP process, PostgreSQL backend and Redis
from /proc (scripts.bench.cpu) and divides the deltas by the requests sent: milliseconds
of CPU per request, per process. The liker's notifications, the outbox relay and anything
else the stack does meanwhile are inside the span, as they are part of what a like costs.

    make up-bench                                  # the stack, rate limits out of the way
    .venv/bin/python -m scripts.bench.likes        # 1000 of each, 8 in flight
    .venv/bin/python -m scripts.bench.likes --count 400 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

from scripts.bench.cpu import _cpu_seconds as cpu_by_process
from scripts.bench.drain import Drain
from scripts.bench.load import closed_loop
from scripts.bench.notifications import Account, publish_posts, sign_up
from scripts.bench.report import summarise


async def phase(
    name: str,
    count: int,
    concurrency: int,
    request: Callable[[int], Awaitable[httpx.Response]],
    settle: float,
    ok: int = 200,
) -> dict[str, Any]:
    before = cpu_by_process()
    samples = await closed_loop(count, concurrency, request)
    await asyncio.sleep(settle)
    # What the phase caused (scoring, fanout, notifications, events) is part of its cost:
    # the span ends once the stack has done all of it.
    drain = await Drain.open()
    try:
        report = await drain.wait(120)
    finally:
        await drain.close()
    print(f"  {report.line()}", flush=True)
    after = cpu_by_process()
    summary = summarise(name, samples.latencies_s, samples.statuses, samples.seconds, {ok})
    cpu_ms = {
        role: round((after[role] - before.get(role, 0.0)) * 1000 / count, 3)
        for role in sorted(after)
        if after[role] - before.get(role, 0.0) > 0
    }
    print(summary.line())
    print(f"  CPU ms per request: {cpu_ms} (sum {sum(cpu_ms.values()):.2f})", flush=True)
    return {**summary.__dict__, "cpu_ms_per_request": cpu_ms}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
        print(f"signing up {args.likers} likers and {args.authors} authors ...", flush=True)
        likers = await sign_up(client, args.likers, f"{tag}l")
        authors = await sign_up(client, args.authors, f"{tag}a")
        if len(likers) < args.likers or len(authors) < args.authors:
            raise SystemExit("sign-ups failed: is the stack ready (/readyz)?")
        await publish_posts(client, authors)
        pairs: list[tuple[Account, Account]] = [
            (authors[i % len(authors)], likers[(i // len(authors)) % len(likers)])
            for i in range(args.count)
        ]
        if args.count > len(authors) * len(likers):
            raise SystemExit("--count is more than likers x authors: likes would repeat")
        # The set-up's own background work (scoring the posts, the welcome jobs) ends first.
        await asyncio.sleep(args.warm)

        def write(index: int) -> Awaitable[httpx.Response]:
            liker = likers[index % len(likers)]
            body = {"content": f"benchmark post {index} #bench"}
            return client.post("/api/v1/posts/", json=body, headers=liker.headers)

        def like(index: int) -> Awaitable[httpx.Response]:
            author, liker = pairs[index]
            return client.post(f"/api/v1/posts/{author.post_id}/like/", headers=liker.headers)

        def unlike(index: int) -> Awaitable[httpx.Response]:
            author, liker = pairs[index]
            return client.delete(f"/api/v1/posts/{author.post_id}/like/", headers=liker.headers)

        def share(index: int) -> Awaitable[httpx.Response]:
            author, liker = pairs[index]
            return client.post(f"/api/v1/posts/{author.post_id}/share/", headers=liker.headers)

        phases = [await phase("post", args.count, args.concurrency, write, args.settle, 201)]
        phases += [
            await phase(name, args.count, args.concurrency, request, args.settle)
            for name, request in (("like", like), ("unlike", unlike), ("share", share))
        ]
    return {"at": time.time(), "count": args.count, "concurrency": args.concurrency,
            "phases": phases}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--likers", type=int, default=20)
    parser.add_argument("--authors", type=int, default=50)
    parser.add_argument("--count", type=int, default=1000, help="likes (and unlikes, shares)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--settle", type=float, default=2.0, help="pause after each phase")
    parser.add_argument("--warm", type=float, default=20.0, help="pause after the set-up")
    parser.add_argument("--out", type=Path, default=Path("bench-results/likes.json"))
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    outcome = uvloop.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(outcome, indent=2) + "\n")
    print(f"wrote {arguments.out}")
