"""Tokenizer speed under CPU contention: idle vs loaded, 1 / 2 threads / pool / policy (issue 13).

For each condition — *idle* (no load of ours; whatever else runs on the machine is
reported as the load average and run-queue length) and *loaded* (this script starts a
torch process with torch's default thread count doing element-wise ops on 2¹⁷-element
tensors, and a plain Python busy loop; both stop after ``--load-seconds`` at the latest,
and are killed when the condition ends, also on Ctrl-C / SIGTERM) — and each case (one
224² image, one 1024² image, a batch of 16 224² images; ``--quick``: 224² and a batch of
4, one round of one call each), the script times, interleaved call by call so every
method sees the same background, with ``max_tokens=400``:

* ``dht 1 thread``: ``dhtgraph.tokenize(..., num_threads=1)`` (one call, one thread);
* ``dht 2 threads``: the whole batch as ONE call with 2 intra-op threads (the tokenizer's
  internal one-call path under ``dhtgraph.threads.limit(2)``: what 0.2.0 did by default);
* ``dht pool 2``: ``dhtgraph.tokenize(..., num_threads=2)``: for a batch, 2 worker
  threads with one intra-op thread each over 2 halves of the batch
  (``dhtgraph.threads.map_chunks``); for one image the same as ``dht 2 threads``;
* ``dht policy``: ``dhtgraph.tokenize(...)`` (the default: the pool for batches, the
  load-aware intra-op count for single images);
* optionally (``--wait-policy``) ``dht 2 threads`` in a child process started with
  ``OMP_WAIT_POLICY=PASSIVE`` (the OpenMP runtime reads it only at start-up);
* scikit-image Felzenszwalb (scale 200, sigma 0.5, min_size 10) and SLIC (400 segments)
  on the same images (one call per image of a batch, one thread: they are single-threaded).

Medians over ``--rounds`` × ``--repeats`` calls after one warm-up; prints a table with
loaded/idle ratios and writes ``benchmarks/results/contention.json`` (``--quick``:
``contention_quick.json``).

Run: ``python benchmarks/contention.py [--quick] [--repeats 3] [--rounds 2] [--wait-policy]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shadows the standard library's ``tokenize`` (imported by
# ``inspect``): take the script folder off the front of the import path first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import os
import signal
import statistics
import subprocess
import time

import numpy as np

sys.path.append(str(_HERE))
from _common import PHOTO, load_image, write_json  # noqa: E402

MAX_TOKENS = 400
#: Competing torch load: element-wise ops on tensors of this many elements (above torch's
#: 32768-element grain size, so the competitor opens parallel regions on all its threads).
LOAD_ELEMENTS = 1 << 17

_TORCH_LOAD = """
import os, sys, time, torch
end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()
x = torch.rand({n})
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(200):
        x.mul_(0.999).add_(0.001)
""".format(n=LOAD_ELEMENTS)
_BUSY_LOAD = """
import os, sys, time
end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(100000):
        pass
"""


def case_images(name: str) -> np.ndarray:
    side, batch = CASES[name]
    image = load_image(side)
    if batch == 1:
        return image
    # Different images in the batch (flips and transposes of the photograph).
    variants = [image, image[::-1], image[:, ::-1], image.transpose(1, 0, 2)]
    return np.stack([np.ascontiguousarray(variants[i % 4]) for i in range(batch)])


CASES = {"224": (224, 1), "1024": (1024, 1), "16x224": (224, 16), "4x224": (224, 4)}


def run_load_state() -> dict:
    """The machine's load right now: 1-minute load average and runnable tasks."""
    with open("/proc/loadavg") as f:
        fields = f.read().split()
    return {"loadavg_1min": float(fields[0]), "runnable": int(fields[3].split("/")[0])}


class Load:
    """The competing processes of the *loaded* condition; always stopped on exit."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Load":
        for code in (_TORCH_LOAD, _BUSY_LOAD):
            self.procs.append(subprocess.Popen([sys.executable, "-c", code, str(self.seconds)]))
        time.sleep(1.0)  # let the torch competitor import and start its loop
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []


class PassiveWorker:
    """A child process started with OMP_WAIT_POLICY=PASSIVE that times 2-thread calls."""

    def __init__(self):
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the OMP_WAIT_POLICY=PASSIVE worker did not start")

    def time(self, case: str) -> float:
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def dht_call(images: np.ndarray, how):
    """One tokenize call: ``how`` is 1, 2 (one call, 2 intra-op threads), 'pool' or 'policy'."""
    import torch

    import dhtgraph
    from dhtgraph.graph.pixel import as_image_tensor
    from dhtgraph.threads import limit

    tensor = as_image_tensor(images)
    if how == "policy":
        return dhtgraph.tokenize(tensor, MAX_TOKENS)
    if how == "pool":
        return dhtgraph.tokenize(tensor, MAX_TOKENS, num_threads=2)
    if how == 1:
        return dhtgraph.tokenize(tensor, MAX_TOKENS, num_threads=1)
    # The one-call path with 2 intra-op threads (no pool), as dhtgraph.tokenize builds it.
    from dhtgraph.nn.config import DHTConfig
    from dhtgraph.tokenize import _tokenizer

    module = _tokenizer(DHTConfig.preset("recommended", in_channels=int(tensor.shape[1])),
                        tensor.device)
    with limit(how), torch.no_grad():
        return module._forward(tensor, MAX_TOKENS, None)


def skimage_call(images: np.ndarray, method: str):
    from skimage.segmentation import felzenszwalb, slic

    batch = images if images.ndim == 4 else images[None]
    for image in batch:
        if method == "felzenszwalb":
            felzenszwalb(image, scale=200, sigma=0.5, min_size=10)
        else:
            slic(image, n_segments=MAX_TOKENS, start_label=0)


def worker() -> None:
    """``--worker``: read case names on stdin, print the seconds of one 2-thread call."""
    import torch

    torch.set_num_threads(2)
    images = {}
    print("ready", flush=True)
    for line in sys.stdin:
        case = line.strip()
        if case not in images:
            images[case] = case_images(case)
            dht_call(images[case], 2)  # warm-up
        start = time.perf_counter()
        dht_call(images[case], 2)
        print(time.perf_counter() - start, flush=True)


def _stop_on_sigterm(*_):
    raise SystemExit(143)  # unwinds through the ``with Load`` blocks: the load is stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="224² and a batch of 4, one round of one call (default counts)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES))
    parser.add_argument("--repeats", type=int, default=None,
                        help="calls per round and method (default 3; --quick 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="idle/loaded alternations (default 2; --quick 1)")
    parser.add_argument("--load-seconds", type=float, default=900.0,
                        help="upper bound on each competing process's life")
    parser.add_argument("--wait-policy", action="store_true",
                        help="also time 2 threads in an OMP_WAIT_POLICY=PASSIVE child")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2

    import torch

    torch.set_num_threads(2)
    cases = args.cases or (["224", "4x224"] if args.quick else ["224", "1024", "16x224"])
    methods = ["dht 1 thread", "dht 2 threads", "dht pool 2", "dht policy", "felzenszwalb",
               "slic"]
    passive = PassiveWorker() if args.wait_policy else None
    if passive:
        methods.insert(3, "dht 2 threads PASSIVE")
    images = {case: case_images(case) for case in cases}

    def call(method: str, case: str) -> float:
        if method == "dht 2 threads PASSIVE":
            return passive.time(case)
        start = time.perf_counter()
        if method.startswith("dht"):
            dht_call(images[case], {"dht 1 thread": 1, "dht 2 threads": 2,
                                    "dht pool 2": "pool"}.get(method, "policy"))
        else:
            skimage_call(images[case], method)
        return time.perf_counter() - start

    for case in cases:  # warm-up (imports, caches)
        for method in methods:
            call(method, case)
    times: dict = {}
    states: dict = {"idle": [], "loaded": []}
    try:
        for round_ in range(args.rounds):
            for condition in ("idle", "loaded"):
                load = Load(args.load_seconds) if condition == "loaded" else None
                with load or _Nothing():
                    states[condition].append(run_load_state())
                    for case in cases:
                        for _ in range(args.repeats):
                            for method in methods:
                                times.setdefault((condition, case, method), []).append(
                                    call(method, case))
                    states[condition].append(run_load_state())
                print(f"round {round_ + 1}/{args.rounds} {condition} done; machine load "
                      f"{states[condition][-1]}", file=sys.stderr, flush=True)
    finally:
        if passive:
            passive.close()

    rows = []
    print(f"\nmedian ms per call (max_tokens={MAX_TOKENS}); loaded/idle in brackets")
    print(f"{'case':8s} " + " ".join(f"{m:>24s}" for m in methods))
    for case in cases:
        row = {"case": case, "side": CASES[case][0], "batch": CASES[case][1], "ms": {}}
        cells = []
        for method in methods:
            idle = 1e3 * statistics.median(times[("idle", case, method)])
            loaded = 1e3 * statistics.median(times[("loaded", case, method)])
            row["ms"][method] = {"idle": idle, "loaded": loaded, "ratio": loaded / idle}
            cells.append(f"{idle:8.0f} /{loaded:8.0f} ({loaded / idle:4.1f}×)")
        rows.append(row)
        print(f"{case:8s} " + " ".join(f"{c:>24s}" for c in cells))
    print("background (load average, runnable tasks) idle:", states["idle"], "loaded:",
          states["loaded"])
    path = write_json("contention_quick" if args.quick else "contention", {
        "photo": PHOTO, "max_tokens": MAX_TOKENS, "repeats": args.repeats,
        "rounds": args.rounds, "quick": args.quick, "cpus": os.cpu_count(), "rows": rows,
        "machine_load": states})
    print("written", path)


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


if __name__ == "__main__":
    main()
