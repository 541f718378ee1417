"""Benchmark live notifications against the running stack.

    make up-bench                                   # terminal 1
    .venv/bin/python -m scripts.bench.notifications  # terminal 2 (also part of `make bench`)

1. Signs up `--sockets` recipients (default 1000), each with one post, and `--likers` (20).
2. Opens one WebSocket per recipient (token as the bearer subprotocol) and waits until
   every one has said `ready`.
3. Memory per idle connection: the resident memory (VmRSS) of the gateway process, and of
   the notification service process (which holds one Subscribe stream per socket), just
   before the sockets open and after they have all been open and idle for `--idle` seconds;
   the difference divided by the number of sockets.
4. Delivery latency, with every socket still open: likes at fixed arrival rates (open loop,
   each of `--rates` per second for `--seconds`), each on another recipient's post. The clock starts
   just before the like's HTTP request is sent and stops when the author's socket receives
   the notification naming that liker (one process, one clock). The causing write, the
   event, the deliver worker, PostgreSQL, Redis pub/sub, the gRPC stream and the gateway's
   relay are all inside the measurement. A like whose notification has not arrived 10 s
   after the last like was sent counts as missing.

Writes bench-results/notifications.json. Target: p99 < 100 ms with 1000 sockets; the
highest rate that meets it is reported. Run it on a freshly started stack: RSS deltas of a
process that already served sockets once understate the cost (freed memory is reused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from scripts.bench.cpu import _cpu_seconds as cpu_by_process
from scripts.bench.load import closed_loop, open_loop
from scripts.bench.report import summarise

PASSWORD = "notification benchmark 2026"
P99_TARGET_MS = 100.0


@dataclass
class Account:
    id: str
    access: str
    post_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class Deliveries:
    """Send times of likes, by (post, liker), and the latencies of those that arrived."""

    sent: dict[tuple[str, str], float] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    arrived: set[tuple[str, str]] = field(default_factory=set)
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def reset(self, expected: int) -> None:
        self.sent.clear()
        self.latencies_s.clear()
        self.arrived.clear()
        self.all_arrived.clear()
        self.expected = expected

    def received(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        if message.get("type") != "notification":
            return
        notification = message["notification"]
        if notification["kind"] != "like" or not notification["actors"]:
            return
        key = (notification["post_id"], notification["actors"][0]["id"])
        started = self.sent.get(key)
        if started is None or key in self.arrived:
            return
        self.arrived.add(key)
        self.latencies_s.append(now - started)
        if len(self.arrived) >= self.expected:
            self.all_arrived.set()


async def sign_up(client: httpx.AsyncClient, count: int, tag: str) -> list[Account]:
    accounts: list[Account] = []

    async def one(index: int) -> httpx.Response:
        email = f"nb_{tag}_{index}@example.com"
        answer = await client.post(
            "/api/v1/auth/register/",
            json={
                "email": email,
                "username": f"nb_{tag}_{index}",
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
        )
        answer.raise_for_status()
        login = await client.post(
            "/api/v1/auth/login/", json={"email": email, "password": PASSWORD}
        )
        login.raise_for_status()
        accounts.append(Account(id=login.json()["user"]["id"], access=login.json()["access"]))
        return login

    await closed_loop(count, 8, one)
    return accounts


async def publish_posts(client: httpx.AsyncClient, authors: list[Account]) -> None:
    async def one(index: int) -> httpx.Response:
        author = authors[index]
        answer = await client.post(
            "/api/v1/posts/",
            json={"content": f"post {index} for the bench"},
            headers=author.headers,
        )
        answer.raise_for_status()
        author.post_id = answer.json()["id"]
        return answer

    await closed_loop(len(authors), 16, one)


async def open_sockets(
    base_url: str, recipients: list[Account], deliveries: Deliveries, concurrency: int = 50
) -> tuple[list[ClientConnection], list[asyncio.Task[None]]]:
    url = base_url.replace("http://", "ws://", 1) + "/ws/notifications/"
    sockets: list[ClientConnection] = []
    readers: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(concurrency)

    async def read(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                deliveries.received(json.loads(raw))

    async def one(account: Account) -> None:
        async with gate:
            ws = await connect(
                url,
                subprotocols=["bearer", account.access],  # type: ignore[list-item]
                compression=None,
                proxy=None,
                open_timeout=30,
                ping_interval=None,
            )
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ready["type"] == "ready", ready
            sockets.append(ws)
            readers.append(asyncio.create_task(read(ws)))

    await asyncio.gather(*(one(account) for account in recipients))
    return sockets, readers


def _reusable(
    cache: Path | None, sockets: int, likers: int
) -> tuple[list[Account], list[Account]] | None:
    """Accounts from an earlier run, while their access tokens are fresh (a rerun then skips
    the sign-ups; each like pairs a liker and a post only once per set, so likes do not
    repeat while the rate x seconds stays below sockets x likers / runs)."""
    if cache is None or not cache.exists():
        return None
    saved = json.loads(cache.read_text())
    if time.time() - saved["at"] > 600 or len(saved["recipients"]) < sockets:
        return None
    if len(saved["likers"]) < likers:
        return None
    runs = saved.get("runs", 0)
    saved["runs"] = runs + 1
    cache.write_text(json.dumps(saved))
    recipients = [Account(**a) for a in saved["recipients"][:sockets]]
    # Another liker set each run, so a rerun's likes are new likes.
    chosen = saved["likers"][likers * runs : likers * (runs + 1)]
    if len(chosen) < likers:
        return None
    return recipients, [Account(**a) for a in chosen]


def _remember(cache: Path, recipients: list[Account], likers: list[Account]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(
        json.dumps(
            {
                "at": time.time(),
                "runs": 1,
                "recipients": [a.__dict__ for a in recipients],
                "likers": [a.__dict__ for a in likers],
            }
        )
    )


def find_process(*argv: str) -> int | None:
    """The pid of the process whose command line ends with `argv` (e.g. -m gateway)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parts = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        parts = [p for p in parts if p]
        if len(parts) >= len(argv) and parts[-len(argv) :] == list(argv) and "python" in parts[0]:
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


async def main(args: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.sockets * 2 + 512)), hard))
    tag = secrets.token_hex(3)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        cache = Path(args.accounts) if args.accounts else None
        reused = _reusable(cache, args.sockets, args.likers)
        if reused is not None:
            recipients, likers = reused
            print(f"reusing {len(recipients)} recipients and {len(likers)} likers", flush=True)
        else:
            print(f"signing up {args.sockets} recipients and {args.likers} likers ...", flush=True)
            recipients = await sign_up(client, args.sockets, f"{tag}r")
            # With a cache, spare likers for the reruns (a like is news only once).
            spare = 5 if cache is not None else 1
            likers = await sign_up(client, args.likers * spare, f"{tag}l")
            await publish_posts(client, recipients)
            if cache is not None:
                _remember(cache, recipients, likers)
            likers = likers[: args.likers]
        print(
            f"  done in {time.perf_counter() - started:.0f} s; settling {args.settle} s", flush=True
        )
        await asyncio.sleep(args.settle)

        gateway_pid = args.gateway_pid or find_process("-m", "gateway")
        service_pid = args.notification_pid or find_process("-m", "services.notification")
        before = {"gateway": rss_kib(gateway_pid), "notification": rss_kib(service_pid)}
        deliveries = Deliveries()
        print(f"opening {args.sockets} sockets ...", flush=True)
        opened = time.perf_counter()
        sockets, readers = await open_sockets(args.url, recipients, deliveries)
        open_seconds = time.perf_counter() - opened
        print(
            f"  {len(sockets)} open and ready in {open_seconds:.1f} s; idle {args.idle} s",
            flush=True,
        )
        cpu_before = {"gateway": cpu_seconds(gateway_pid), "notification": cpu_seconds(service_pid)}
        await asyncio.sleep(args.idle)
        after = {"gateway": rss_kib(gateway_pid), "notification": rss_kib(service_pid)}
        idle_cpu = {
            name: round((cpu_seconds(pid) - cpu_before[name]) / args.idle * 100, 1)
            for name, pid in (("gateway", gateway_pid), ("notification", service_pid))
            if pid is not None
        }

        rates = [float(r) for r in args.rates.split(",")]
        pairs = (
            (recipients[i % len(recipients)], likers[(i // len(recipients)) % len(likers)])
            for i in range(len(recipients) * len(likers))
        )
        levels = []
        for rate in rates:
            levels.append(await like_level(client, deliveries, pairs, rate, args.seconds))
            await asyncio.sleep(2)
        still_open = sum(1 for ws in sockets if ws.close_code is None)
        for ws in sockets:
            await ws.close()
        for reader in readers:
            reader.cancel()

    per_socket = {
        name: round((after[name] - before[name]) * 1024 / len(sockets))
        for name in before
        if before[name] is not None and after[name] is not None and sockets
    }
    passing = [level for level in levels if level["p99_met"]]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "sockets": len(sockets),
        "sockets_still_open_after_run": still_open,
        "sockets_open_seconds": round(open_seconds, 2),
        "levels": levels,
        "highest_rate_meeting_target": passing[-1]["rate"] if passing else None,
        "p99_target_ms": P99_TARGET_MS,
        "rss_kib_before": before,
        "rss_kib_after": after,
        "bytes_per_idle_connection": per_socket,
        "idle_cpu_percent": idle_cpu,
    }
    print(f"memory per idle connection: {per_socket} bytes (RSS delta / sockets)")
    print(f"CPU with the sockets open and idle: {idle_cpu} % of one core")
    return result


async def like_level(
    client: httpx.AsyncClient,
    deliveries: Deliveries,
    pairs: Iterator[tuple[Account, Account]],
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """Likes at `rate` per second for `seconds`, each a new (post, liker) pair."""
    count = int(rate * seconds)
    chosen = [next(pairs) for _ in range(count)]
    deliveries.reset(count)

    def like(index: int) -> Any:
        author, liker = chosen[index]
        deliveries.sent[(author.post_id, liker.id)] = time.perf_counter()
        return client.post(f"/api/v1/posts/{author.post_id}/like/", headers=liker.headers)

    print(f"liking: {rate:g}/s for {seconds:g} s ...", flush=True)
    cpu_before = cpu_by_process()
    http = await open_loop(rate, seconds, like)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(deliveries.all_arrived.wait(), 10)
    cpu_after = cpu_by_process()
    received = len(deliveries.latencies_s)
    # CPU per like, process by process (utime+stime from /proc; the level's whole span,
    # so idle-socket upkeep and anything else the process did meanwhile are included).
    cpu_ms_per_like = {
        role: round((cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / max(count, 1), 2)
        for role in sorted(cpu_after)
        if cpu_after[role] - cpu_before.get(role, 0.0) > 0
    }
    delivery = summarise(
        f"like -> socket @{rate:g}/s",
        deliveries.latencies_s,
        [200] * received,
        http.seconds,
        {200},
    )
    writes = summarise(
        f"like request @{rate:g}/s", http.latencies_s, http.statuses, http.seconds, {200}
    )
    print(delivery.line())
    print(writes.line())
    print(f"  CPU ms per like: {cpu_ms_per_like} (load average {os.getloadavg()[0]:.2f})")
    return {
        "rate": rate,
        "likes_sent": count,
        "notifications_received": received,
        "missing": count - received,
        "delivery": delivery.__dict__,
        "like_request": writes.__dict__,
        "mean_ms": round(statistics.fmean(deliveries.latencies_s) * 1000, 2) if received else None,
        "p99_met": delivery.p99_ms < P99_TARGET_MS and received == count,
        "cpu_ms_per_like": cpu_ms_per_like,
        "load_average": os.getloadavg(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--likers", type=int, default=20)
    parser.add_argument("--rates", default="10,20,30", help="like rates per second, one level each")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--idle", type=float, default=30.0, help="idle time before measuring RSS and idle CPU"
    )
    parser.add_argument("--settle", type=float, default=5.0, help="pause after the set-up writes")
    parser.add_argument("--gateway-pid", type=int, default=None)
    parser.add_argument("--notification-pid", type=int, default=None)
    parser.add_argument("--out", default="bench-results/notifications.json")
    parser.add_argument(
        "--accounts",
        default="",
        help="remember the accounts here and reuse them within 10 minutes (development)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    outcome = uvloop.run(main(arguments))
    path = Path(arguments.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome, indent=2) + "\n")
    print(f"wrote {path}")
