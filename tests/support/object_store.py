"""The embedded S3-compatible store (moto's server mode) as a child process on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def run_object_store() -> AsyncIterator[str]:
    """`python -m scripts.s3_dev --port 0`, as `make up` runs it; yields its endpoint URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.s3_dev",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line.startswith(b"listening on "):
            raise RuntimeError(f"the embedded object store did not start: {line!r}")
        yield line.decode().removeprefix("listening on ").strip()
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=10)
        if process.returncode is None:
            process.kill()
            await process.wait()
