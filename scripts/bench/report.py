"""Latency summaries for benchmarks: p50/p99/max, throughput and errors, as text and JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Summary:
    name: str
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]

    def line(self) -> str:
        return (
            f"{self.name:<28} n={self.requests:<6} err={self.errors:<4} "
            f"{self.throughput_rps:8.1f} req/s   p50 {self.p50_ms:7.2f} ms   "
            f"p90 {self.p90_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms   max {self.max_ms:7.2f} ms"
        )


def summarise(
    name: str, latencies_s: list[float], statuses: list[int], seconds: float, ok: set[int]
) -> Summary:
    ms = sorted(value * 1000 for value in latencies_s)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) >= 2 else ms * 99
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return Summary(
        name=name,
        requests=len(ms),
        errors=sum(1 for status in statuses if status not in ok),
        seconds=round(seconds, 3),
        throughput_rps=round(len(ms) / seconds, 1) if seconds else 0.0,
        p50_ms=round(cuts[49], 2),
        p90_ms=round(cuts[89], 2),
        p99_ms=round(cuts[98], 2),
        max_ms=round(ms[-1], 2) if ms else 0.0,
        statuses=counts,
    )


def write_json(path: Path, summaries: list[Summary], meta: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": [asdict(s) for s in summaries]}, indent=2))
