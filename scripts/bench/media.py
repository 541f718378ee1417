"""Benchmark media processing: 12-megapixel JPEGs through the worker's image pipeline.

    python -m scripts.bench.media [--images 12] [--processes 1 2]

What is timed is the worker's render pool (services/media/processing/pool.py) running
`images.render` as a job does: decode with the bomb checks, EXIF orientation, sRGB,
metadata stripped, thumbnail 320 px, medium 1080 px and the full-size original re-encoded,
on distinct photo-like 4000x3000 JPEGs carrying EXIF/GPS and orientation 6. Store and
database round trips are left out (small next to the pixels). Each run uses N child
processes (ZAP_MEDIA_RENDER_PROCESSES) with N images in flight, and reports images/s,
latency per image, and peak memory: the largest child's peak resident set (each child
holds one image at a time; /proc VmHWM, reset after warm-up).

Writes bench-results/media.json. Needs no running stack.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageFilter

from services.media.processing.pool import RenderPool
from services.media.settings import MediaSettings

WIDTH, HEIGHT = 4000, 3000
GPS_IFD, ORIENTATION = 0x8825, 0x0112


def photo_like(seed: int) -> bytes:
    """A 12 MP JPEG with gradients, edges and sensor-like noise (3-5 MB, as phones make)."""
    small = (WIDTH // 8, HEIGHT // 8)
    detail = Image.effect_mandelbrot(small, (-2.0 + seed * 0.01, -1.2, 1.0, 1.2), 60)
    red = Image.linear_gradient("L").resize(small).rotate(seed * 17 % 360)
    blue = Image.radial_gradient("L").resize(small)
    base = Image.merge("RGB", (red, detail, blue)).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    base = base.filter(ImageFilter.GaussianBlur(1))
    noise = Image.effect_noise((WIDTH, HEIGHT), 10).convert("RGB")
    image = ImageChops.add(base, noise, scale=1.0, offset=-64)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, float(seed)), 3: "E", 4: (13.0, 24.0, 1.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_of(pool: RenderPool) -> list[int]:
    # The executor's own bookkeeping: the benchmark looks inside, the worker never does.
    return list(pool._executor._processes)


def reset_peak(pid: int) -> None:
    # A spawned child starts with its parent's peak; "5" resets it to the current size.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(images: list[bytes], processes: int, settings: MediaSettings) -> dict[str, Any]:
    pool = RenderPool(settings.model_copy(update={"render_processes": processes}))
    slots = asyncio.Semaphore(processes)
    latencies: list[float] = []

    async def one(data: bytes) -> int:
        async with slots:  # as many in flight as children, so latency is not queueing
            started = time.perf_counter()
            variants = await pool.render(data, "jpeg")
            latencies.append(time.perf_counter() - started)
        return sum(len(v.data) for v in variants)

    try:
        await asyncio.gather(*(one(data) for data in images[:processes]))  # start the children
        latencies.clear()
        for pid in children_of(pool):
            reset_peak(pid)
        started = time.perf_counter()
        written = sum(await asyncio.gather(*(one(data) for data in images)))
        seconds = time.perf_counter() - started
        child_peaks = [peak_of(pid) for pid in children_of(pool)]
    finally:
        pool.close()
    return {
        "processes": processes,
        "images": len(images),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(images) / seconds, 2),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_max": round(max(latencies) * 1000, 1),
        "variant_bytes_per_image": round(written / len(images)),
        # The largest child's peak during the run, and the benchmark process's own peak
        # (which also made the inputs).
        "peak_rss_per_child_mib": round(max(child_peaks), 1),
        "peak_rss_parent_mib": round(peak_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="media processing benchmark")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("bench-results/media.json"))
    args = parser.parse_args()

    settings = MediaSettings()
    print(f"making {args.images} distinct {WIDTH}x{HEIGHT} JPEGs ...", flush=True)
    images = [photo_like(seed) for seed in range(args.images)]
    sizes = [len(i) / 2**20 for i in images]
    print(f"  {statistics.mean(sizes):.2f} MiB each on average (EXIF with GPS, orientation 6)")

    results = []
    for processes in sorted(args.processes):
        result = asyncio.run(run(images, processes, settings))
        results.append(result)
        print(
            f"processes={processes}: {result['images_per_second']:5.2f} images/s   "
            f"p50 {result['latency_ms_p50']:6.1f} ms   max {result['latency_ms_max']:6.1f} ms   "
            f"peak RSS {result['peak_rss_per_child_mib']:.0f} MiB per child",
            flush=True,
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "meta": {
                    "machine": f"{platform.machine()} {platform.system()} "
                    f"python {platform.python_version()}",
                    "cpus": os.cpu_count(),
                    "pillow": Image.__version__,  # type: ignore[attr-defined]
                    "image": f"{WIDTH}x{HEIGHT} JPEG q90, EXIF+GPS, orientation 6",
                    "input_mib_mean": round(statistics.mean(sizes), 2),
                    "variants": {
                        "thumbnail_px": settings.thumbnail_px,
                        "medium_px": settings.medium_px,
                        "jpeg_quality": settings.jpeg_quality,
                    },
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
