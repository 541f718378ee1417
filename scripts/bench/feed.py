"""Benchmark the feed against the running stack, on the seeded data set.

    make up-bench                       # terminal 1
    python -m scripts.seed --reset      # terminal 2, once (see scripts/seed.py)
    python -m scripts.bench.feed --levels 30,60,100,200,300 --runs 3

1. Mixed open-loop load at rising levels: home-feed reads, post writes and follows at once
   (reads:writes:follows = 10:2:1), each level for --seconds; p50/p99 and throughput of each.
   Every level starts only once the background work of the one before has drained (fanout
   outbox, arq queues, event-stream consumer lag, unscored content: scripts/bench/drain.py),
   and a level the 15-minute rescoring would overlap waits for it first; each wait is
   printed. The whole ladder runs --runs times; for each run the highest level whose
   home-feed p99 < 50 ms and post-write p99 < 100 ms with no errors is reported, and for
   each level in how many runs it held. A level that could not drain before it is reported
   as such and never counts as held. Requests still unanswered --grace seconds after a
   level's schedule are cut off as errors, so an overloaded level ends; the load
   generator's lag behind its schedule is reported beside each level.
2. Fanout: the seeded giant (just under the fanout threshold) posts; feed items written per
   second by the worker (from its outbox record) and time until a follower's feed shows it.
3. Baseline: a naive pull-only feed, one SQL query joining follows and posts ordered by the
   same score, over a copy of the same data in one database, for the same readers.

Writes bench-results/feed.json and bench-results/feed.png: the latency distributions of
levels the table reports (the last run's highest level that held and the one above it).
`python -m scripts.bench.plot --after bench-results/feed.json` turns the JSON into the
committed p99-against-load picture (docs/feed-p99.png).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.bench.drain import Drain, DrainReport
from scripts.bench.load import CUT_OFF, Samples, closed_loop, open_loop
from scripts.bench.report import Summary, summarise
from services.feed.settings import FeedSettings
from services.graph.settings import GraphSettings

HOME_P99_MS = 50.0
POST_P99_MS = 100.0
# A level this close to the quarter-hour rescoring waits for it (the rescoring takes a few
# seconds on the small seed set, minutes on the large one; the drain covers the rest).
RESCORING_MARGIN_S = 10.0
STARTED = time.perf_counter()


def dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


class Bench:
    def __init__(self, client: httpx.AsyncClient, seed: dict[str, Any]) -> None:
        self.client = client
        self.seed = seed
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.rng = random.Random(7)

    async def sign_in(self, emails: list[str]) -> None:
        async def login(index: int) -> httpx.Response:
            email = emails[index]
            answer = await self.client.post(
                "/api/v1/auth/login/", json={"email": email, "password": self.seed["password"]}
            )
            answer.raise_for_status()
            self.tokens[email] = answer.json()["access"]
            self.ids[email] = answer.json()["user"]["id"]
            return answer

        await closed_loop(len(emails), 4, login)

    def auth(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[email]}"}

    def home(self, index: int) -> Awaitable[httpx.Response]:
        reader = self.seed["readers"][index % len(self.seed["readers"])]
        return self.client.get(
            "/api/v1/feed/home/", params={"limit": 20}, headers=self.auth(reader)
        )

    def write(self, index: int) -> Awaitable[httpx.Response]:
        author = self.rng.choice(self.seed["readers"])
        body = {"content": f"benchmark post {index} #bench", "hashtags": ["load"]}
        return self.client.post("/api/v1/posts/", json=body, headers=self.auth(author))

    def follow(self, index: int) -> Awaitable[httpx.Response]:
        # Two different readers: following oneself is refused (422), which is the API doing
        # its job, not the load failing — about one draw in a hundred used to.
        reader, followed = self.rng.sample(self.seed["readers"], 2)
        target = self.ids[followed]
        return self.client.post(f"/api/v1/users/{target}/follow/", headers=self.auth(reader))

    async def level(
        self, reads: float, seconds: float, grace_s: float
    ) -> tuple[list[Summary], dict[str, list[float]], list[float]]:
        """Summaries of home reads, post writes and follows; their latencies; and how late
        the generator sent each request against its schedule."""
        writes, follows = reads / 5, reads / 10
        home, post, follow = await asyncio.gather(
            open_loop(reads, seconds, self.home, grace_s),
            open_loop(writes, seconds, self.write, grace_s),
            open_loop(follows, seconds, self.follow, grace_s),
        )
        summaries = [
            summary(f"home feed @{reads:g}/s", home, {200}),
            summary(f"post write @{writes:g}/s", post, {201}),
            summary(f"follow @{follows:g}/s", follow, {200}),
        ]
        latencies = {summaries[0].name: home.latencies_s, summaries[1].name: post.latencies_s}
        return summaries, latencies, home.lags_s + post.lags_s + follow.lags_s


@dataclass
class LevelRun:
    """One level of one run of the ladder, with the wait that came before it."""

    run: int
    reads: float
    drain: DrainReport
    rescoring_waited: str | None
    summaries: list[Summary]
    samples: dict[str, list[float]]
    generator_lag_p99_ms: float
    generator_lag_max_ms: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def home(self) -> Summary:
        return self.summaries[0]

    @property
    def post(self) -> Summary:
        return self.summaries[1]

    @property
    def held(self) -> bool:
        """Targets met, on a level that started drained (otherwise it measured leftovers)."""
        met = self.home.p99_ms < HOME_P99_MS and self.post.p99_ms < POST_P99_MS
        return met and self.drain.drained and not any(s.errors for s in self.summaries)

    @property
    def verdict(self) -> str:
        if not self.drain.drained:
            return "STARTED UNDRAINED: not counted"
        if self.held:
            return "held the targets"
        errors = sum(s.errors for s in self.summaries)
        return "missed" + (f" ({errors} errors)" if errors else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "reads_per_second": self.reads,
            "posts_per_second": self.reads / 5,
            "follows_per_second": self.reads / 10,
            "held": self.held,
            "drain_before": asdict(self.drain),
            "rescoring_waited": self.rescoring_waited,
            "home": asdict(self.home),
            "post": asdict(self.post),
            "follow": asdict(self.summaries[2]),
            "generator_lag_p99_ms": self.generator_lag_p99_ms,
            "generator_lag_max_ms": self.generator_lag_max_ms,
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in self.load_after],
        }


def summary(name: str, samples: Samples, ok: set[int]) -> Summary:
    return summarise(name, samples.latencies_s, samples.statuses, samples.seconds, ok)


async def worker_counters(url: str) -> dict[str, float]:
    """Fanout counters from the feed worker's Prometheus endpoint (make up-bench opens it)."""
    wanted = ("zap_feed_items_written_total", "zap_feed_fanout_batch_seconds_sum")
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(url)).text
    except httpx.HTTPError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name] = float(value)
    return values


async def fanout(bench: Bench, feed_dsn: str, metrics_url: str) -> dict[str, Any]:
    """The giant posts; measure the worker's fanout and the time until a follower sees it."""
    giant = bench.seed["giant"]["email"]
    await bench.sign_in([giant])
    before = await worker_counters(metrics_url)
    follower = next(
        (email for email in bench.seed["readers"] if email != giant),
        bench.seed["readers"][0],
    )
    started = time.perf_counter()
    answer = await bench.client.post(
        "/api/v1/posts/", json={"content": "the giant speaks #fanout"}, headers=bench.auth(giant)
    )
    answer.raise_for_status()
    post_id = answer.json()["id"]
    write_ms = (time.perf_counter() - started) * 1000
    visible_s = None
    while time.perf_counter() - started < 120:
        home = await bench.client.get(
            "/api/v1/feed/home/", params={"limit": 100}, headers=bench.auth(follower)
        )
        if post_id in {entry["id"] for entry in home.json()["results"]}:
            visible_s = time.perf_counter() - started
            break
        await asyncio.sleep(0.02)
    connection = await asyncpg.connect(feed_dsn)
    try:
        for _ in range(600):
            row = await connection.fetchrow(
                "SELECT created_at, done_at FROM fanout_outbox WHERE post_id = $1::uuid", post_id
            )
            if row and row["done_at"]:
                break
            await asyncio.sleep(0.1)
        items = await connection.fetchval(
            "SELECT count(*) FROM feed_items WHERE post_id = $1::uuid", post_id
        )
        post_created = await connection.fetchval(
            "SELECT created_at FROM posts WHERE id = $1::uuid", post_id
        )
    finally:
        await connection.close()
    seconds = (row["done_at"] - post_created).total_seconds() if row and row["done_at"] else None
    after = await worker_counters(metrics_url)
    inserted = after.get("zap_feed_items_written_total", 0) - before.get(
        "zap_feed_items_written_total", 0
    )
    inserting = after.get("zap_feed_fanout_batch_seconds_sum", 0) - before.get(
        "zap_feed_fanout_batch_seconds_sum", 0
    )
    return {
        # One worker's write rate while writing: items over the time spent in batch inserts.
        "worker_items_per_second_while_writing": round(inserted / inserting) if inserting else None,
        "author_followers": bench.seed["giant"]["followers"],
        "post_write_ms": round(write_ms, 2),
        "feed_items_written": items,
        "fanout_seconds": round(seconds, 3) if seconds else None,
        "feed_items_per_second": round(items / seconds) if seconds else None,
        "time_to_visible_ms": round(visible_s * 1000, 1) if visible_s else None,
    }


NAIVE_QUERY = """
SELECT p.id FROM follows f JOIN posts p ON p.author_id = f.followee_id
WHERE f.follower_id = $1::uuid AND p.deleted_at IS NULL
ORDER BY (p.like_count + 2.5 * p.comment_count + 3 * p.share_count + 1)
    / power(extract(epoch FROM now() - p.created_at) / 3600 + 2, 1.8) DESC
LIMIT 20
"""


async def build_baseline(feed_dsn: str, graph_dsn: str) -> str:
    """The naive design's database: follows and posts side by side, indexed as it would be."""
    admin = await asyncpg.connect(dsn_for_database(feed_dsn, "postgres"))
    try:
        await admin.execute("DROP DATABASE IF EXISTS zap_bench_baseline WITH (FORCE)")
        await admin.execute("CREATE DATABASE zap_bench_baseline")
    finally:
        await admin.close()
    target_dsn = dsn_for_database(feed_dsn, "zap_bench_baseline")
    target = await asyncpg.connect(target_dsn)
    try:
        await target.execute(
            "CREATE TABLE follows (follower_id uuid, followee_id uuid,"
            " PRIMARY KEY (follower_id, followee_id));"
            "CREATE TABLE posts (id uuid PRIMARY KEY, author_id uuid, like_count bigint,"
            " comment_count bigint, share_count bigint, created_at timestamptz,"
            " deleted_at timestamptz);"
        )
        for source, table, columns in (
            (graph_dsn, "follows", ["follower_id", "followee_id"]),
            (
                feed_dsn,
                "posts",
                [
                    "id",
                    "author_id",
                    "like_count",
                    "comment_count",
                    "share_count",
                    "created_at",
                    "deleted_at",
                ],
            ),
        ):
            origin = await asyncpg.connect(source)
            try:
                rows = await origin.fetch(f"SELECT {', '.join(columns)} FROM {table}")
            finally:
                await origin.close()
            await target.copy_records_to_table(table, records=rows, columns=columns)
        await target.execute("CREATE INDEX ON posts (author_id, created_at DESC); ANALYZE")
    finally:
        await target.close()
    return target_dsn


async def baseline(bench: Bench, target_dsn: str, rate: float, seconds: float) -> Summary:
    """The naive feed read at an open-loop rate, straight against PostgreSQL (no HTTP, no
    gRPC: the comparison flatters the baseline)."""
    readers = [bench.ids[email] for email in bench.seed["readers"]]
    pool = await asyncpg.create_pool(target_dsn, min_size=10, max_size=10)
    latencies: list[float] = []

    async def one(index: int) -> None:
        started = time.perf_counter()
        async with pool.acquire() as connection:
            await connection.fetch(NAIVE_QUERY, readers[index % len(readers)])
        latencies.append(time.perf_counter() - started)

    try:
        began = time.perf_counter()
        tasks = []
        for index in range(int(rate * seconds)):
            delay = began + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    finally:
        await pool.close()
    return summarise(
        f"naive pull SQL @{rate:g}/s", latencies, [200] * len(latencies), elapsed, {200}
    )


def dsn_for_database(base: str, database: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + database


def plot(path: Path, groups: dict[str, list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5))
    for name, values in groups.items():
        ms = sorted(v * 1000 for v in values)
        if not ms:
            continue
        axes.plot(ms, [i / len(ms) * 100 for i in range(1, len(ms) + 1)], label=name)
    axes.axvline(HOME_P99_MS, color="grey", linestyle=":", label="home p99 target (50 ms)")
    axes.axvline(POST_P99_MS, color="grey", linestyle="--", label="post p99 target (100 ms)")
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("percent of requests at or below")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def commit() -> str:
    """The commit measured, and whether the tree had changes on top of it."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--untracked-files=no")
        return git("log", "-1", "--format=%h %s") + (" (+ uncommitted changes)" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def ladder_runs(
    bench: Bench,
    drain: Drain,
    args: argparse.Namespace,
    after_run: Callable[[list[LevelRun]], None],
) -> list[LevelRun]:
    """The whole ladder of levels, `args.runs` times; every level starts drained. With a
    --budget (seconds from the benchmark's start), a run that would not end within it
    (judged by the runs before) is not begun: the stack is shared, and a hold on it is
    bounded."""
    done: list[LevelRun] = []
    began = time.perf_counter()
    for run in range(1, args.runs + 1):
        elapsed = time.perf_counter() - began
        per_run = elapsed / (run - 1) if run > 1 else 0.0
        if args.budget and run > 1 and time.perf_counter() - STARTED + per_run > args.budget:
            print(f"--- run {run} not begun: it would end past the {args.budget:g} s budget")
            break
        print(f"--- run {run} of {args.runs}: levels {', '.join(f'{r:g}' for r in args.levels)}")
        for reads in args.levels:
            report = await drain.wait(args.drain_timeout)
            print(f"[run {run} @{reads:g}/s] {report.line()}", flush=True)
            waited = await clear_of_rescoring(args.seconds)
            if waited:
                report = await drain.wait(args.drain_timeout)
                print(f"[run {run} @{reads:g}/s] after the rescoring: {report.line()}")
            load_before = os.getloadavg()
            summaries, samples, lags = await bench.level(reads, args.seconds, args.grace)
            level = LevelRun(
                run=run,
                reads=reads,
                drain=report,
                rescoring_waited=waited,
                summaries=summaries,
                samples=samples,
                generator_lag_p99_ms=percentile_ms(lags, 99),
                generator_lag_max_ms=round(max(lags, default=0.0) * 1000, 2),
                load_before=load_before,
                load_after=os.getloadavg(),
            )
            done.append(level)
            for line in summaries:
                print(line.line(), flush=True)
            cut = sum(s.statuses.get(str(CUT_OFF), 0) for s in summaries)
            print(
                f"  generator lag p99 {level.generator_lag_p99_ms} ms; load "
                f"{level.load_before[0]:.2f} -> {level.load_after[0]:.2f}; "
                + (f"{cut} cut off unanswered {args.grace:g} s after the schedule; " if cut else "")
                + level.verdict,
                flush=True,
            )
            if cut:
                # The server may still be working through requests the client gave up on;
                # none of the drain's counts show that, the gateway's answer time does.
                print(f"  {await gateway_settled(bench.client)}", flush=True)
        after_run(done)
    return done


async def gateway_settled(client: httpx.AsyncClient, timeout_s: float = 120.0) -> str:
    """Wait until the gateway answers /healthz within 25 ms five times in a row."""
    began = time.perf_counter()
    prompt = 0
    while prompt < 5 and time.perf_counter() - began < timeout_s:
        started = time.perf_counter()
        try:
            await client.get("/healthz", timeout=5)
            prompt = prompt + 1 if time.perf_counter() - started < 0.025 else 0
        except httpx.HTTPError:
            prompt = 0
        await asyncio.sleep(0.2)
    state = "prompt again" if prompt >= 5 else "STILL SLOW"
    return f"gateway {state} after {time.perf_counter() - began:.1f} s"


async def clear_of_rescoring(seconds: float) -> str | None:
    """The feed worker rescores every feed at :00, :15, :30 and :45; a level that would
    overlap it waits for it to start (the drain then waits for it to finish)."""
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    upcoming = quarter + timedelta(minutes=15)
    until = (upcoming - now).total_seconds()
    if until > seconds + RESCORING_MARGIN_S:
        return None
    note = f"the 15-minute rescoring at {upcoming:%H:%M} UTC would fall inside the level"
    print(f"  {note}: waiting {until + 3:.0f} s for it to start", flush=True)
    await asyncio.sleep(until + 3)
    return note


def percentile_ms(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))] * 1000, 2)


def held_per_level(levels: list[LevelRun], runs: int) -> dict[str, str]:
    counts: dict[str, str] = {}
    for reads in dict.fromkeys(level.reads for level in levels):
        at = [level for level in levels if level.reads == reads]
        held = sum(1 for level in at if level.held)
        undrained = sum(1 for level in at if not level.drain.drained)
        note = f" ({undrained} started undrained)" if undrained else ""
        counts[f"{reads:g}"] = f"{held} of {runs}{note}"
    return counts


def highest_held(levels: list[LevelRun], run: int) -> float | None:
    held = [level.reads for level in levels if level.run == run and level.held]
    return max(held) if held else None


def plotted_levels(levels: list[LevelRun], runs: int) -> list[LevelRun]:
    """From the last run: its highest level that held and the level above it (the first
    that did not), or its lowest level if none held. Always levels the table reports."""
    last = [level for level in levels if level.run == runs]
    best = highest_held(levels, runs)
    if best is None:
        return last[:1]
    above = [level for level in last if level.reads > best]
    return [level for level in last if level.reads == best] + above[:1]


async def main(args: argparse.Namespace) -> None:
    seed = json.loads(args.seed_file.read_text())
    feed_dsn = dsn(FeedSettings().database_url)
    graph_dsn = dsn(GraphSettings().database_url)
    started_at = datetime.now(UTC)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    drain = await Drain.open()
    try:
        print("draining before the benchmark ...", flush=True)
        first = await drain.wait(args.initial_drain_timeout, progress=True)
        print(first.line(), flush=True)
        async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:
            bench = Bench(client, seed)
            print(f"signing in {len(seed['readers'])} readers ...", flush=True)
            await bench.sign_in(seed["readers"])
            # The first read of each reader rebuilds a cold cache from the database.
            cold = await closed_loop(len(seed["readers"]), 8, bench.home)
            cold_summary = summary("home feed, cold cache x8", cold, {200})
            print(cold_summary.line(), flush=True)
            levels = await ladder_runs(
                bench,
                drain,
                args,
                lambda done: write_results(args, seed, started_at, first, cold_summary, done),
            )
            fan: dict[str, Any] | None = None
            naive: list[Summary] = []
            if not args.ladder_only:
                report = await drain.wait(args.drain_timeout)
                print(f"[fanout] {report.line()}", flush=True)
                print("fanout of the giant's post ...", flush=True)
                fan = await fanout(bench, feed_dsn, args.worker_metrics)
                print(json.dumps(fan), flush=True)
                print("naive pull-only baseline at the same read rates ...", flush=True)
                target_dsn = await build_baseline(feed_dsn, graph_dsn)
                for reads in args.levels:
                    naive.append(await baseline(bench, target_dsn, reads, args.seconds))
                    print(naive[-1].line(), flush=True)
    finally:
        await drain.close()
    if not args.ladder_only:  # the ladder's results were written after its last run
        write_results(args, seed, started_at, first, cold_summary, levels, fan, naive)


def write_results(
    args: argparse.Namespace,
    seed: dict[str, Any],
    started_at: datetime,
    first: DrainReport,
    cold_summary: Summary,
    levels: list[LevelRun],
    fan: dict[str, Any] | None = None,
    naive: list[Summary] | None = None,
) -> None:
    """The JSON and the distributions' picture, for the runs complete so far (written after
    each, so a run cut short by the stack's hold loses only itself)."""
    runs = max(level.run for level in levels)
    per_run = {run: highest_held(levels, run) for run in range(1, runs + 1)}
    held = held_per_level(levels, runs)
    shown = plotted_levels(levels, runs)
    out = {
        "meta": {
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit(),
            "machine": f"{platform.machine()} {platform.system()} python {platform.python_version()}",
            "cpus": os.cpu_count(),
            "data": {
                k: seed[k] for k in ("users", "posts", "follows", "likes", "comments", "feed_items")
            },
            "fanout_threshold": seed["fanout_threshold"],
            "targets": {"home_p99_ms": HOME_P99_MS, "post_p99_ms": POST_P99_MS},
            "mix": "reads:posts:follows = 10:2:1, open loop",
            "levels_reads_per_second": args.levels,
            "seconds_per_level": args.seconds,
            "runs": runs,
            "runs_asked": args.runs,
            "initial_drain": asdict(first),
        },
        "cold_cache": asdict(cold_summary),
        "levels": [level.as_json() for level in levels],
        "highest_level_holding_per_run": {str(k): v for k, v in per_run.items()},
        "held_per_level": held,
        "plotted": [{"run": level.run, "reads_per_second": level.reads} for level in shown],
        "fanout": fan,
        "baseline": [asdict(n) for n in naive or []],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    png = args.out.with_suffix(".png")
    groups: dict[str, list[float]] = {}
    for level in shown:
        tag = "held" if level.held else "missed"
        for name, values in level.samples.items():
            groups[f"{name} (run {level.run}, {tag})"] = values
    plot(png, groups, f"ZAP feed latency distributions, {started_at:%Y-%m-%d %H:%M} UTC")
    print()
    print("highest level holding the targets (home p99 < 50 ms, post p99 < 100 ms, no errors):")
    for run, best in per_run.items():
        print(f"  run {run}: {f'{best:g} reads/s' if best is not None else 'none'}")
    print("held per level: " + ", ".join(f"{k}/s {v}" for k, v in held.items()))
    print(
        "plotted distributions: "
        + ", ".join(f"run {level.run} @{level.reads:g}/s" for level in shown)
    )
    print(f"wrote {args.out} and {png}")


def reading_levels(text: str) -> list[float]:
    return [float(part) for part in text.replace(",", " ").split()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seed-file", type=Path, default=Path("bench-results/seed.json"))
    parser.add_argument(
        "--levels",
        nargs="+",
        default=["30,60,100,200,300"],
        help="home reads/s, comma- or space-separated; posts and follows are a fifth and a tenth",
    )
    parser.add_argument("--runs", type=int, default=1, help="times the whole ladder is run")
    parser.add_argument("--seconds", type=float, default=15.0, help="per level")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds after a level's schedule before unanswered requests are cut off (errors)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=0.0,
        help="seconds from the start within which the last run must end; 0: no limit",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait before each level"
    )
    parser.add_argument(
        "--initial-drain-timeout",
        type=float,
        default=900.0,
        help="seconds to wait before the first level (a fresh seed leaves much to score)",
    )
    parser.add_argument(
        "--ladder-only", action="store_true", help="skip the fanout and the naive baseline"
    )
    parser.add_argument("--worker-metrics", default="http://127.0.0.1:9102/metrics")
    parser.add_argument("--out", type=Path, default=Path("bench-results/feed.json"))
    args = parser.parse_args()
    args.levels = [level for text in args.levels for level in reading_levels(text)]
    if args.runs < 1 or not args.levels:
        parser.error("at least one run of at least one level")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
