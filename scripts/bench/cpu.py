"""CPU per request, process by process, under closed-loop load from `wrk`.

Where does one home-feed read spend its CPU? This signs in the seeded readers, writes a wrk
Lua script that rotates their real bearer tokens, and runs wrk (Debian's, written in C, so
the load generator's own cost is small and outside every ZAP process) against a path for a
fixed time, once per path. Around each run it reads utime+stime of every ZAP process,
PostgreSQL backend and Redis from /proc/<pid>/stat and divides the deltas by the requests
wrk completed: milliseconds of CPU per request, per process and summed.

`/healthz` is measured in the same way in the same run, because absolute throughput drifts
from run to run on a shared machine while the ratio holds.

    make up-bench                                  # the stack, rate limits out of the way
    python -m scripts.seed --reset                 # the data set (seed.json: the readers)
    python -m scripts.bench.cpu                    # home feed, /auth/me and /healthz
    python -m scripts.bench.cpu --paths /api/v1/feed/home/?limit=20 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

DEFAULT_PATHS = ("/healthz", "/api/v1/auth/me/", "/api/v1/feed/home/?limit=20")
_TICKS = os.sysconf("SC_CLK_TCK")
# Process command lines, first match wins: the name a row of the table gets.
_ROLES = (
    (re.compile(r"services\.(\w+)\.worker"), "{}-worker"),
    (re.compile(r"-m services\.(\w+)\b"), "{}"),
    (re.compile(r"-m gateway\b"), "gateway"),
    (re.compile(r"scripts\.s3_dev"), "s3"),
    (re.compile(r"^postgres"), "postgresql"),
    (re.compile(r"redis-server"), "redis"),
)

_LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local n = 0
request = function()
  n = n + 1
  local token = tokens[(n %% #tokens) + 1]
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. token})
end
"""


def _role(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    for pattern, name in _ROLES:
        found = pattern.search(command)
        if found:
            return name.format(*found.groups())
    return None


def _cpu_seconds() -> dict[str, float]:
    """utime+stime of every process with a role, summed by role."""
    totals: dict[str, float] = defaultdict(float)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        role = _role(int(entry))
        if role is None:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        totals[role] += (int(fields[11]) + int(fields[12])) / _TICKS
    return totals


async def _sign_in(url: str, seed: dict[str, object], count: int) -> list[str]:
    readers = list(seed["readers"])[:count]  # type: ignore[call-overload]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def login(email: str) -> str:
            answer = await client.post(
                "/api/v1/auth/login/", json={"email": email, "password": seed["password"]}
            )
            answer.raise_for_status()
            return str(answer.json()["access"])

        tokens: list[str] = []
        for start in range(0, len(readers), 8):
            tokens += await asyncio.gather(*(login(e) for e in readers[start : start + 8]))
    return tokens


def _wrk(url: str, path: str, lua: Path, seconds: float, connections: int) -> dict[str, float]:
    command = [
        "wrk", f"-c{connections}", "-t1", f"-d{int(seconds)}s", "--latency",
        "-s", str(lua), url + path,
    ]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.MULTILINE))
    return {
        "requests": requests,
        "per_second": requests / seconds,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p50_ms": _ms(latency.get("50", "0ms")),
        "p99_ms": _ms(latency.get("99", "0ms")),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def measure(url: str, path: str, lua: Path, seconds: float, connections: int) -> dict[str, object]:
    before, started = _cpu_seconds(), time.monotonic()
    load = _wrk(url, path, lua, seconds, connections)
    after, elapsed = _cpu_seconds(), time.monotonic() - started
    requests = max(1, int(load["requests"]))
    per_request = {
        role: round((after[role] - before.get(role, 0.0)) * 1000 / requests, 3)
        for role in sorted(after)
        if after[role] - before.get(role, 0.0) > 0
    }
    return {
        "path": path,
        "connections": connections,
        "seconds": round(elapsed, 1),
        **load,
        "cpu_ms_per_request": per_request,
        "cpu_ms_total": round(sum(per_request.values()), 3),
    }


def _table(results: list[dict[str, object]]) -> str:
    roles = sorted({r for res in results for r in res["cpu_ms_per_request"]})  # type: ignore[attr-defined]
    head = "| process | " + " | ".join(str(r["path"]) for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for role in roles:
        cells = [f"{r['cpu_ms_per_request'].get(role, 0):.3f}" for r in results]  # type: ignore[attr-defined]
        lines.append(f"| {role} | " + " | ".join(cells) + " |")
    for label, key, fmt in (
        ("**CPU ms / request**", "cpu_ms_total", "{:.2f}"),
        ("requests/s", "per_second", "{:.0f}"),
        ("p50 ms", "p50_ms", "{:.2f}"),
        ("p99 ms", "p99_ms", "{:.2f}"),
        ("non-2xx", "non_2xx", "{}"),
    ):
        lines.append(f"| {label} | " + " | ".join(fmt.format(r[key]) for r in results) + " |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    seed = json.loads(args.seed_file.read_text())
    tokens = asyncio.run(_sign_in(args.url, seed, args.readers))
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder, "tokens.txt")
        token_file.write_text("\n".join(tokens) + "\n")
        lua = Path(folder, "rotate.lua")
        lua.write_text(_LUA % token_file)
        # Warm every reader's cached feed once, so the runs measure the warm path.
        _wrk(args.url, args.paths[-1], lua, 3, args.connections)
        results = [
            measure(args.url, path, lua, args.seconds, args.connections) for path in args.paths
        ]
    healthz = next((r for r in results if r["path"] == "/healthz"), None)
    for result in results:
        if healthz and result is not healthz:
            ratio = float(str(result["per_second"])) / float(str(healthz["per_second"]))
            result["ratio_to_healthz"] = round(ratio, 3)
    print(_table(results))
    for result in results:
        if "ratio_to_healthz" in result:
            print(f"{result['path']}: {result['ratio_to_healthz']:.1%} of /healthz throughput")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seed-file", type=Path, default=Path("bench-results/seed.json"))
    parser.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("bench-results/cpu.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
