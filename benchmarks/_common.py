"""Shared helpers for the benchmark scripts: medians after warm-up, peak extra memory, the photograph."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
PHOTO = "bedcat.jpg"


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs, read
    on ``clock`` (wall time by default; ``time.process_time`` for this process's CPU time)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_memory(fn: Callable[[], object], interval: float = 0.002) -> int:
    """Peak resident memory above the level before ``fn()`` ran, in bytes (sampled)."""
    baseline = _rss_bytes()
    peak = baseline
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(interval)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak = max(peak, _rss_bytes())
    return peak - baseline


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``, ...) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def load_image(side: int, name: str = PHOTO):
    """A shared photograph (default: the benchmark photograph) resized to side×side,
    uint8 (H, W, 3); scikit-image's astronaut where ../shared is absent."""
    import numpy as np
    from PIL import Image

    path = SHARED_IMAGES / name
    if path.exists():
        pil = Image.open(path).convert("RGB")
    else:
        from skimage import data

        print(f"note: {path} is absent; using skimage.data.astronaut instead", file=sys.stderr)
        pil = Image.fromarray(data.astronaut())
    if pil.size != (side, side):
        pil = pil.resize((side, side), Image.BICUBIC)
    return np.asarray(pil)
