"""Where images are decoded: a pool of child processes.

Processes rather than threads: Pillow holds the GIL through much of a decode, resize and
encode, so threads add little on two cores (measured: scripts/bench/media.py), while
processes scale. They also confine what a hostile file can do: each child has a memory
ceiling (RLIMIT_AS), and a decoder that crashes takes down one child, not the worker.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from services.media.processing.images import (
    ImageRejected,
    Rendered,
    RenderSpec,
    configure_pillow,
    render,
)
from services.media.settings import ImageType, MediaSettings
from zapcore.logging import get_logger

log = get_logger(__name__)

# A child is replaced after this many images, so a fragmented heap does not grow forever.
_TASKS_PER_CHILD = 200


def _start_child(max_pixels: int, memory_limit_mib: int) -> None:
    configure_pillow(max_pixels)
    if memory_limit_mib:
        limit = memory_limit_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class RenderPool:
    def __init__(self, settings: MediaSettings) -> None:
        self._spec = RenderSpec.from_settings(settings)
        self._processes = settings.render_processes
        self._initargs = (settings.max_pixels, settings.render_memory_limit_mib)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._processes,
            # Not fork: the worker runs threads (gRPC, asyncio) that a fork would copy broken.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=self._initargs,
            max_tasks_per_child=_TASKS_PER_CHILD,
        )

    async def render(self, data: bytes, kind: ImageType) -> list[Rendered]:
        """Clean variants of an upload; ImageRejected when it is not acceptable."""
        loop = asyncio.get_running_loop()
        # A child that died (this image, or another one in flight) breaks the whole pool:
        # replace it and try once more; an image that kills a child twice is refused.
        for _ in range(2):
            executor = self._executor
            try:
                return await loop.run_in_executor(executor, render, data, kind, self._spec)
            except BrokenProcessPool:
                log.warning("media.render_pool_broken")
                if self._executor is executor:
                    self._executor = self._new_executor()
                    executor.shutdown(wait=False, cancel_futures=True)
        raise ImageRejected("corrupt-image", "decoding the image crashed")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
