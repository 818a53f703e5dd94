"""Peak extra memory of one ``dhtgraph.tokenize`` call per pixel, at large sizes (issue 15).

For each side (default 1024, 2048, 4096) a fresh Python subprocess loads the photograph
(default ``elephant.jpg``, a textured one, from ``../shared/data/images``; scikit-image's
astronaut when it is absent), resizes it to side × side (PIL bicubic, uint8 RGB), imports
dhtgraph, sets the thread count (default 2), resets the kernel's peak-RSS mark
(``/proc/self/clear_refs`` ← 5, so VmHWM restarts at the current RSS), reads VmRSS,
runs ``dhtgraph.tokenize(image)`` once (no budget, default options), reads VmHWM, and
reports ``(VmHWM − VmRSS before) / side²`` in bytes per pixel — one run per size, so the
figure is a single measurement (it varies by a few B/px between runs with the allocator's
page reuse).

``--where`` adds, in the same child, a thread that samples VmRSS every millisecond and,
at each new maximum, records the main thread's Python stack (the dhtgraph frames): the
printed stack is where the call stood at the (sampled) peak, which tells which level /
function holds the largest temporaries. Sampling costs a little time, not memory.

Run: ``python benchmarks/memory.py [--sizes 1024 2048 4096] [--image elephant.jpg]
[--threads 2] [--where]``. Prints one line per size and writes
``benchmarks/results/memory.json``. Run it with ``PYTHONPATH=<other checkout>`` to
measure another version of dhtgraph (the child inherits the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

# benchmarks/tokenize.py shadows the standard library's ``tokenize`` (imported by
# ``inspect``): take the script folder off the import path, then append it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE))
from _common import load_image, status_bytes, write_json  # noqa: E402

DEFAULT_IMAGE = "elephant.jpg"
#: Seconds between two RSS samples of ``--where``.
SAMPLE_INTERVAL = 0.001


def child(name: str, side: int, threads: int, where: bool) -> None:
    """Subprocess body: print one JSON line with the peak extra bytes of one call."""
    import torch

    torch.set_num_threads(threads)
    image = load_image(side, name)
    import dhtgraph

    stack: list[str] = []
    done = threading.Event()
    main = threading.main_thread().ident

    def watch() -> None:
        peak = 0
        while not done.is_set():
            rss = status_bytes("VmRSS")
            if rss > peak:
                peak = rss
                frame = sys._current_frames().get(main)
                frames = []
                while frame is not None:
                    file = frame.f_code.co_filename
                    if "dhtgraph" in file:
                        frames.append(f"{file.split('dhtgraph/')[-1]}:{frame.f_lineno} "
                                      f"{frame.f_code.co_name}")
                    frame = frame.f_back
                stack[:] = [f"{(rss - before) / side ** 2:.0f} B/px at"] + frames
            time.sleep(SAMPLE_INTERVAL)

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_bytes("VmRSS")
    watcher = threading.Thread(target=watch, daemon=True) if where else None
    if watcher is not None:
        watcher.start()
    start = time.perf_counter()
    tokens = dhtgraph.tokenize(image)
    seconds = time.perf_counter() - start
    peak = status_bytes("VmHWM")
    done.set()
    if watcher is not None:
        watcher.join()
    print(json.dumps({"side": side, "extra_bytes": max(peak - before, 0),
                      "bytes_per_pixel": max(peak - before, 0) / side ** 2,
                      "seconds": seconds, "num_tokens": int(tokens.num_tokens.sum()),
                      "peak_stack": stack}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--where", action="store_true",
                        help="record the dhtgraph stack at the sampled RSS peak")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.image, args.child, args.threads, args.where)
        return
    rows = []
    for side in args.sizes:
        command = [sys.executable, __file__, "--child", str(side), "--image", args.image,
                   "--threads", str(args.threads)] + (["--where"] if args.where else [])
        out = subprocess.run(command, capture_output=True, text=True, check=True,
                             env=os.environ.copy())
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{side}²: {row['bytes_per_pixel']:6.1f} B/px peak extra "
              f"({row['extra_bytes'] / 2**20:.0f} MiB), {row['seconds']:.2f} s, "
              f"{row['num_tokens']} tokens")
        for line in row["peak_stack"]:
            print("    " + line)
    write_json("memory", {"image": args.image, "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
