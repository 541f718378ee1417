"""A cap on each user's open notification sockets, counted in Redis across every gateway.

Each open socket holds a slot: a member of the user's sorted set, scored with the time its
lease ends. The gateway serving it renews the lease while it is open and gives the slot back
when it closes; a gateway that dies renews nothing, so its slots lapse within one lease and
the user's set itself expires, and no crash leaves a user locked out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from zapcore.logging import get_logger

log = get_logger(__name__)

_KEY = "zap:ws:sockets:{user_id}"

# KEYS[1] the user's set; ARGV: now, lease end, lease ms, cap, slot. 1 when taken, else 0.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


class SocketSlotsFull(Exception):
    """The user has as many sockets open as the cap allows."""


class SocketSlots:
    def __init__(self, redis: Redis, cap: int, lease_seconds: float) -> None:
        self._redis = redis
        self._cap = cap
        self._lease = lease_seconds
        self._take = redis.register_script(_TAKE)

    @contextlib.asynccontextmanager
    async def held(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """A slot for the block's duration; `SocketSlotsFull` when there is none free.
        Redis down: the socket is served uncounted, as the rate limits' absence would."""
        key = _KEY.format(user_id=user_id)
        slot = uuid.uuid4().hex
        try:
            now = time.time()
            taken = await self._take(
                keys=[key],
                args=[now, now + self._lease, int(self._lease * 1000), self._cap, slot],
            )
        except (RedisError, OSError) as error:
            log.warning("ws.slots_unavailable", error=str(error))
            taken = 1
        if not taken:
            raise SocketSlotsFull
        renewing = asyncio.create_task(self._renew(key, slot))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(RedisError, OSError):
                await self._redis.zrem(key, slot)

    async def _renew(self, key: str, slot: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.zadd(key, {slot: time.time() + self._lease})
                    pipe.pexpire(key, int(self._lease * 1000))
                    await pipe.execute()
            except (RedisError, OSError) as error:
                log.warning("ws.slot_renewal_failed", error=str(error))
