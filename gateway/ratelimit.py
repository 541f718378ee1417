"""Request rate limits in Redis: sliding-window counters, batched into one round trip.

The counters are the `limits` library's sliding-window counter (its Lua, mirrored here):
per rule, the current window's count plus the previous window's, weighted by how much of
the previous window still overlaps. `limits` runs one script per rule per call and one more
to learn when a refused client may come back, and has no way to batch; here one script
counts one subject (an address, a user) against all of its rules and answers the wait
itself, and the gateway sends the scripts of one request, with its deny-list checks, in one
pipeline: one round trip (see `gateway.deps.admit`). Rules are still written and parsed in
`limits`' notation ("600/minute;20/second").

A subject's rules count a request all together or not at all: a request refused by one rule
counts against none of the subject's rules (`limits`, rule after rule, left it counted by
the rules before the one that refused). Retry-After is the longest wait among the rules that
refused.

Redis Cluster: every key of one subject carries the subject in its hash tag
(`zap:rl:{<subject>}/<scope>/<rule>`), so one script touches one slot; a user's counters
share the slot of the user's deny-list entry (`zap:denied-user:{<user id>}`), which the
user's script reads. A pipeline of such scripts is what a cluster client splits by node and
sends in parallel, so the request still waits one round trip. (`limits` tagged each rule's
key on its own, so its counters, `zap:rl:{LIMITER/...}`, are not read: a deploy of this
starts every budget afresh, within one window.)

Redis down: the request is served (not counted) rather than everyone refused; /readyz
reports the outage.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from limits import parse_many
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, RedisError

from gateway.problems import Problem
from zapcore.logging import get_logger

log = get_logger(__name__)

# KEYS: each rule's previous and current window counters, then (optionally) the subject's
# "refuse tokens issued at or before" stamp. ARGV[1]: the token's issued-at (with a stamp);
# then each rule's limit and window (ms). Answer: {0, 0} counted; {1, wait ms} refused by a
# rule; {2, 0} the stamp refuses the token (nothing counted).
_HIT = """
local rules = (#ARGV - 1) / 2
if #KEYS > rules * 2 then
  local stamp = redis.call('get', KEYS[#KEYS])
  if stamp and tonumber(ARGV[1]) <= tonumber(stamp) then
    return {2, 0}
  end
end
local wait = -1
for i = 1, rules do
  local previous, current = KEYS[2 * i - 1], KEYS[2 * i]
  local limit, expiry = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local current_ttl = tonumber(redis.call('pttl', current))
  if current_ttl > 0 and current_ttl < expiry then
    -- the current window is over: it becomes the previous one
    redis.call('rename', current, previous)
    redis.call('set', current, 0, 'PX', current_ttl + expiry)
  end
  local previous_count = tonumber(redis.call('get', previous)) or 0
  local previous_ttl = math.max(tonumber(redis.call('pttl', previous)), 0)
  local current_count = tonumber(redis.call('get', current)) or 0
  current_ttl = math.max(tonumber(redis.call('pttl', current)), 0)
  if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 > limit then
    -- when the weighted count next drops by one (limits' get_window_stats)
    local reset = 0
    if previous_count > 0 then
      reset = previous_ttl % (expiry / previous_count)
    end
    if current_count > 0 and (previous_count == 0 or current_ttl % expiry < reset) then
      reset = current_ttl % expiry
    end
    wait = math.max(wait, reset)
  end
end
if wait >= 0 then
  return {1, math.ceil(wait)}
end
for i = 1, rules do
  local current = KEYS[2 * i]
  if redis.call('exists', current) == 1 then
    redis.call('incr', current)
  else
    redis.call('set', current, 1, 'PX', tonumber(ARGV[2 * i + 1]) * 2)
  end
end
return {0, 0}
"""
_HIT_SHA = hashlib.sha1(_HIT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

# KEYS: current window counters that counted a request which was refused anyway.
_REFUND = """
for i = 1, #KEYS do
  if (tonumber(redis.call('get', KEYS[i])) or 0) > 0 then
    redis.call('decr', KEYS[i])
  end
end
return 0
"""

COUNTED, REFUSED, STAMP_DENIED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Rule:
    limit: int
    window_ms: int
    # "600/1/minute": part of the counter's key, so changing a rule starts a fresh counter.
    name: str


def rules(spec: str) -> tuple[Rule, ...]:
    """Parse "600/minute;20/second" into rules."""
    return tuple(
        Rule(
            item.amount,
            item.get_expiry() * 1000,
            f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}",
        )
        for item in parse_many(spec)
    )


@dataclass(frozen=True, slots=True)
class Count:
    """One subject's counters for one request: the script's keys and arguments, made once."""

    keys: list[str]
    args: list[str]
    current_keys: list[str]

    @classmethod
    def of(
        cls,
        rules: tuple[Rule, ...],
        scope: str,
        subject: str,
        stamp_key: str = "",
        issued_at: int = 0,
    ) -> Count:
        keys: list[str] = []
        args = [str(issued_at)]
        for rule in rules:
            current = f"zap:rl:{{{subject}}}/{scope}/{rule.name}"
            keys += (current + "/-1", current)
            args += (str(rule.limit), str(rule.window_ms))
        current_keys = keys[1::2]
        if stamp_key:
            keys.append(stamp_key)
        return cls(keys, args, current_keys)


def refusal(wait_ms: int) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        "slow down and retry later",
        headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
    )


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def queue(self, pipe: Pipeline, count: Count) -> None:
        """Add the count to a pipeline; its answer is read by `verdict`."""
        pipe.evalsha(_HIT_SHA, len(count.keys), *count.keys, *count.args)

    @staticmethod
    def verdict(answer: Any) -> tuple[int, int]:
        """(COUNTED | REFUSED | STAMP_DENIED, wait in ms) from a queued count's answer."""
        return int(answer[0]), int(answer[1])

    async def load(self) -> None:
        """Install the script (after a Redis restart or SCRIPT FLUSH, EVALSHA cannot find it)."""
        await self._redis.script_load(_HIT)

    async def _count(self, count: Count) -> Any:
        keys = len(count.keys)
        return await self._redis.evalsha(_HIT_SHA, keys, *count.keys, *count.args)  # type: ignore[misc]

    async def refund(self, count: Count) -> None:
        """Take back a request that counted, for one refused for another reason (rare)."""
        try:
            await self._redis.eval(_REFUND, len(count.current_keys), *count.current_keys)  # type: ignore[misc]
        except (RedisError, OSError):
            log.warning("ratelimit.unavailable")

    async def hit(self, rules: tuple[Rule, ...], scope: str, subject: str) -> None:
        """Count one request against every rule; 429 with Retry-After when one is spent."""
        count = Count.of(rules, scope, subject)
        try:
            try:
                answer = await self._count(count)
            except NoScriptError:
                await self.load()
                answer = await self._count(count)
        except (RedisError, OSError):
            # Redis down: serve rather than refuse everyone; /readyz reports the outage.
            log.warning("ratelimit.unavailable")
            return
        outcome, wait_ms = self.verdict(answer)
        if outcome == REFUSED:
            raise refusal(wait_ms)
