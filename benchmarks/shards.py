"""Offline tokenization throughput: ``dhtgraph tokenize-shards`` with 1 and 2 processes.

Writes ``--images`` copies of the shared photographs (resized to ``--size``², cycling
through them; random-noise images when ../shared is absent) into one folder, then runs
``dhtgraph tokenize-shards`` on it, each run into a fresh output folder:

- 1 process: ``python -m dhtgraph tokenize-shards`` with OMP_NUM_THREADS=1;
- 2 processes: ``torchrun --standalone --nproc-per-node 2`` (gloo; OMP_NUM_THREADS=1 each).

Per run it reports the images per second of the tokenization itself (all images divided
by the slowest rank's time in ``write_shards``: reading, tokenizing, writing and hashing
the shards) and of the whole command (process start, ``import torch`` and the launcher
included). Medians over ``--repeats`` runs. Prints a table and writes
``benchmarks/results/shards.json``.

Run: ``python benchmarks/shards.py [--images 48] [--size 128] [--max-tokens 256] [--repeats 2]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shadows the standard library's ``tokenize``: take the script
# folder off the import path before anything imports it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "images"
_RANK_LINE = re.compile(r"rank (\d+): wrote \d+ shard\(s\) \((\d+) images, ([\d.]+) s")


def make_folder(folder: Path, count: int, size: int) -> str:
    folder.mkdir(parents=True)
    photos = sorted(p for p in PHOTOS.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")) \
        if PHOTOS.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(count):
        if photos:
            image = Image.open(photos[i % len(photos)]).convert("RGB").resize((size, size))
        else:
            image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        image.save(folder / f"{i:05d}.png")
    return "shared photographs" if photos else "random noise (../shared absent)"


def run(folder: Path, out: Path, processes: int, max_tokens: int, shard_size: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    args = [str(folder), "--out", str(out), "--max-tokens", str(max_tokens),
            "--shard-size", str(shard_size), "--no-progress"]
    if processes == 1:
        cmd = [sys.executable, "-m", "dhtgraph", "tokenize-shards", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", "-m", "dhtgraph", "tokenize-shards", *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    ranks = [(int(r), int(n), float(s)) for r, n, s in _RANK_LINE.findall(done.stderr)]
    if len(ranks) != processes:
        raise SystemExit(f"expected {processes} rank lines, got:\n{done.stderr[-2000:]}")
    images = sum(n for _, n, _ in ranks)
    slowest = max(s for _, _, s in ranks)
    return {"images": images, "tokenize_seconds": slowest, "wall_seconds": wall,
            "per_rank": [{"rank": r, "images": n, "seconds": s} for r, n, s in ranks]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dht-shards-"))
    try:
        source = make_folder(work / "images", options.images, options.size)
        results = {}
        for processes in (1, 2):
            runs = [run(work / "images", work / f"out-{processes}-{i}", processes,
                        options.max_tokens, options.shard_size) for i in range(options.repeats)]
            assert all(r["images"] == options.images for r in runs)
            tok = statistics.median(r["tokenize_seconds"] for r in runs)
            wall = statistics.median(r["wall_seconds"] for r in runs)
            results[processes] = {"tokenize_images_per_second": options.images / tok,
                                  "command_images_per_second": options.images / wall,
                                  "runs": runs}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{options.images} images of {options.size}² ({source}), max_tokens {options.max_tokens}, "
          f"shards of {options.shard_size}, median of {options.repeats}, {os.cpu_count()} CPUs")
    print(f"{'processes':>9}  {'tokenize img/s':>14}  {'command img/s':>13}")
    for processes, r in results.items():
        print(f"{processes:>9}  {r['tokenize_images_per_second']:>14.2f}  "
              f"{r['command_images_per_second']:>13.2f}")
    speedup = (results[2]["tokenize_images_per_second"] / results[1]["tokenize_images_per_second"])
    print(f"2 processes / 1 process (tokenization): {speedup:.2f}×")
    out = ROOT / "benchmarks" / "results" / "shards.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"options": vars(options), "source": source,
                               "results": results, "speedup_2_over_1": speedup}, indent=1))


if __name__ == "__main__":
    main()
