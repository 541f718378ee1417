"""Argon2id hashing, off the event loop, with a bounded number of concurrent hashes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from passlib.hash import argon2


class PasswordHasher:
    """Hashes and verifies passwords in a small thread pool.

    Argon2 is deliberately slow and memory-hard; running it on the event loop would
    stall every other call during a login burst. The pool size bounds memory
    (each hash holds `memory_kib`) and CPU, so a burst queues instead of thrashing.
    """

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int, workers: int) -> None:
        self._scheme = argon2.using(
            type="ID", memory_cost=memory_kib, rounds=time_cost, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        # Verified when the email is unknown, so that case costs what a real check costs.
        self._dummy_hash = self._scheme.hash("zap-dummy-password-for-timing")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        digest: str = await loop.run_in_executor(self._pool, self._scheme.hash, password)
        return digest

    async def verify(self, password: str, digest: str | None) -> bool:
        """Check a password; with no digest, spend the same time and return False."""
        loop = asyncio.get_running_loop()
        target = digest or self._dummy_hash
        ok: bool = await loop.run_in_executor(self._pool, self._scheme.verify, password, target)
        return ok and digest is not None

    def needs_rehash(self, digest: str) -> bool:
        """True when the digest was made with other parameters than the current ones."""
        return bool(self._scheme.needs_update(digest))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
