"""Tokenization speed and memory: dhtgraph vs scikit-image Felzenszwalb and SLIC (issue 3).

For each size (224², 512², 1024², 2048² and a 3584² photograph) the same photograph
is resized and tokenized by ``dhtgraph.tokenize`` (no budget); Felzenszwalb (its
``scale`` bisected to the same region count, ±15 %) and SLIC (``n_segments`` = that
count) then run on the same image. Time is the median of several runs after a warm-up,
with 2 threads; peak extra memory is measured in a fresh subprocess per method and size
(the kernel's peak resident size VmHWM, reset just before the call, minus the
resident size before it). A batch of 8 224²
images is timed against 8 single calls (``dhtgraph.tokenize``'s default policy: the batch
runs in 2 worker threads of one intra-op thread each, see ``dhtgraph.threads``; single
images with the load-aware intra-op count). Prints a table and writes
``benchmarks/results/tokenize.json``.

Run: ``python benchmarks/tokenize.py [--sizes 224 512 ...] [--repeats 5]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name is also the standard library's ``tokenize`` (imported by ``inspect``):
# take the script folder off the import path before anything imports it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import json
import subprocess

import numpy as np
import torch

sys.path.append(str(_HERE))
from _common import PHOTO, load_image, median_time, status_bytes, write_json  # noqa: E402


def run_dhtgraph(image: np.ndarray, **kw) -> int:
    import dhtgraph

    return int(dhtgraph.tokenize(image, **kw).num_tokens.sum())


def run_felzenszwalb(image: np.ndarray, scale: float) -> int:
    from skimage.segmentation import felzenszwalb

    return int(felzenszwalb(image, scale=scale, sigma=0.5, min_size=10).max()) + 1


def run_slic(image: np.ndarray, n_segments: int) -> int:
    from skimage.segmentation import slic

    return int(slic(image, n_segments=n_segments, start_label=0).max()) + 1


def match_felzenszwalb(image: np.ndarray, target: int, steps: int = 8) -> float:
    """Bisect Felzenszwalb's ``scale`` (log-space) until its count is within 15 % of target."""
    lo, hi = 1.0, 5000.0
    best = (float("inf"), 100.0)
    for _ in range(steps):
        scale = float(np.sqrt(lo * hi))
        count = run_felzenszwalb(image, scale)
        best = min(best, (abs(count - target) / target, scale))
        if abs(count - target) <= 0.15 * target:
            break
        lo, hi = (scale, hi) if count > target else (lo, scale)
    return best[1]


def call(method: str, image: np.ndarray, param: float | None) -> int:
    if method == "dhtgraph":
        return run_dhtgraph(image)
    if method == "felzenszwalb":
        return run_felzenszwalb(image, param)
    return run_slic(image, int(param))


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def memory_child(method: str, side: int, param: float | None) -> None:
    """Subprocess body: print the peak extra memory of one call, in bytes."""
    torch.set_num_threads(2)
    image = load_image(side)
    import dhtgraph  # noqa: F401  (import cost is not part of the measured call)
    from skimage import segmentation  # noqa: F401  (nor is scikit-image's)

    _reset_peak()
    before = status_bytes("VmRSS")
    call(method, image, param)
    peak = status_bytes("VmHWM")
    print(json.dumps({"extra_bytes": max(peak - before, 0)}))


def peak_memory(method: str, side: int, param: float | None) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", method, str(side), str(param)],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 512, 1024, 2048, 3584])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        method, side, param = args.memory_child
        memory_child(method, int(side), None if param == "None" else float(param))
        return

    torch.set_num_threads(2)
    rows = []
    for side in args.sizes:
        image = load_image(side)
        repeats = args.repeats if side <= 1024 else max(1, min(args.repeats, 3 if side <= 2048 else 1))
        t_dht = median_time(lambda: run_dhtgraph(image), repeats=repeats)
        k = run_dhtgraph(image)
        scale = match_felzenszwalb(image, k)
        t_fz = median_time(lambda: run_felzenszwalb(image, scale), repeats=repeats)
        t_slic = median_time(lambda: run_slic(image, k), repeats=repeats)
        row = {
            "side": side, "pixels": side * side, "tokens": k,
            "felzenszwalb_scale": scale, "felzenszwalb_regions": run_felzenszwalb(image, scale),
            "slic_regions": run_slic(image, k),
            "seconds": {"dhtgraph": t_dht, "felzenszwalb": t_fz, "slic": t_slic},
            "ns_per_pixel": {"dhtgraph": 1e9 * t_dht / side ** 2},
        }
        if not args.no_memory:
            row["extra_memory_bytes"] = {
                "dhtgraph": peak_memory("dhtgraph", side, None),
                "felzenszwalb": peak_memory("felzenszwalb", side, scale),
                "slic": peak_memory("slic", side, k),
            }
        rows.append(row)
        mem = row.get("extra_memory_bytes", {})
        print(f"{side:5d}² tokens {k:6d} | dhtgraph {t_dht * 1e3:9.1f} ms"
              f" ({row['ns_per_pixel']['dhtgraph']:6.0f} ns/px, +{mem.get('dhtgraph', 0) / 2**20:7.0f} MB)"
              f" | felzenszwalb {t_fz * 1e3:9.1f} ms ({row['felzenszwalb_regions']} regions,"
              f" +{mem.get('felzenszwalb', 0) / 2**20:6.0f} MB)"
              f" | slic {t_slic * 1e3:9.1f} ms ({row['slic_regions']} regions,"
              f" +{mem.get('slic', 0) / 2**20:6.0f} MB) | dht/fz {t_dht / t_fz:5.2f}×", flush=True)

    # A batch of 8 224² images against 8 single calls, same images.
    import dhtgraph

    batch = np.stack([load_image(224)] * 4 + [np.ascontiguousarray(load_image(224)[::-1])] * 4)
    t_batch = median_time(lambda: dhtgraph.tokenize(batch), repeats=args.repeats)
    t_single = median_time(lambda: [dhtgraph.tokenize(im) for im in batch], repeats=args.repeats)
    batch_row = {"batch_of_8_seconds": t_batch, "eight_singles_seconds": t_single,
                 "per_image_ms_batched": 1e3 * t_batch / 8, "per_image_ms_single": 1e3 * t_single / 8}
    print(f"batch of 8 at 224²: {batch_row['per_image_ms_batched']:.1f} ms/image batched, "
          f"{batch_row['per_image_ms_single']:.1f} ms/image one by one")
    by_side = {r["side"]: r for r in rows}
    if 512 in by_side and 2048 in by_side:
        growth = by_side[2048]["ns_per_pixel"]["dhtgraph"] / by_side[512]["ns_per_pixel"]["dhtgraph"]
        print(f"time per pixel at 2048² / 512²: {growth:.2f}× (goal ≤ 1.5×; reference 1.7×)")
    print("written", write_json("tokenize", {"threads": 2, "photo": PHOTO, "rows": rows, "batch": batch_row}))


if __name__ == "__main__":
    main()
