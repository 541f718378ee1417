"""Benchmark the auth slice through the running gateway.

    make up                      # in one terminal (see README: raise the per-IP limit first)
    make bench                   # or: python -m scripts.bench.auth --rate 100 --seconds 20

- GET /api/v1/auth/me/ at a fixed arrival rate (open loop: requests are sent on schedule
  whether or not earlier ones finished, so a slow server cannot hide its queueing),
  spread over several users so the per-user rate limit is not what is measured;
- POST /api/v1/auth/login/ at a fixed concurrency (dominated by Argon2id by design).
Reports p50/p90/p99/max and throughput, and writes bench-results/auth.json.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import secrets
from collections.abc import Awaitable
from pathlib import Path

import httpx

from scripts.bench.load import closed_loop, open_loop
from scripts.bench.report import Summary, summarise, write_json

PASSWORD = "benchmark password 2026"


async def make_users(client: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    """(email, access token) for `count` fresh users."""
    users = []
    for _ in range(count):
        tag = secrets.token_hex(5)
        email = f"bench_{tag}@example.com"
        body = {
            "email": email,
            "username": f"bench_{tag}",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        }
        created = await client.post("/api/v1/auth/register/", json=body)
        created.raise_for_status()
        login = await client.post(
            "/api/v1/auth/login/", json={"email": email, "password": PASSWORD}
        )
        login.raise_for_status()
        users.append((email, login.json()["access"]))
    return users


async def bench_me(
    client: httpx.AsyncClient, tokens: list[str], rate: float, seconds: float
) -> Summary:
    def me(index: int) -> Awaitable[httpx.Response]:
        token = tokens[index % len(tokens)]
        return client.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {token}"})

    samples = await open_loop(rate, seconds, me)
    return summarise(
        f"GET /auth/me/ @{rate:g}/s", samples.latencies_s, samples.statuses, samples.seconds, {200}
    )


async def bench_login(
    client: httpx.AsyncClient, emails: list[str], count: int, concurrency: int
) -> Summary:
    def login(index: int) -> Awaitable[httpx.Response]:
        email = emails[index % len(emails)]
        return client.post("/api/v1/auth/login/", json={"email": email, "password": PASSWORD})

    samples = await closed_loop(count, concurrency, login)
    return summarise(
        f"POST /auth/login/ x{concurrency}",
        samples.latencies_s,
        samples.statuses,
        samples.seconds,
        {200},
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--rate", type=float, default=100.0, help="GET /me/ requests per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--login-concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench-results/auth.json"))
    args = parser.parse_args()

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
        users = await make_users(client, args.users)
        # Warm connections and caches so the first second is not measured as cold start.
        await bench_me(client, [token for _, token in users], rate=50, seconds=2)
        results = [
            await bench_me(client, [token for _, token in users], args.rate, args.seconds),
            await bench_login(
                client, [email for email, _ in users], args.logins, args.login_concurrency
            ),
        ]
    for summary in results:
        print(summary.line())
    write_json(
        args.out,
        results,
        {"url": args.url, "machine": platform.node(), "cpus": __import__("os").cpu_count()},
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
