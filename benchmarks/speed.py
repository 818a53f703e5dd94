"""Tokenizer speed at 224² and its scaling, against peers in the same process (issue 15).

What one run measures (``--threads``, default 2: ``torch.set_num_threads(2)`` for the
process and ``num_threads=2`` for every dhtgraph call; OpenCV gets ``cv2.setNumThreads(2)``
and fast-slic ``num_threads=2``; scikit-image is single-threaded). ``max_tokens=400``
everywhere; wall time (``time.perf_counter``); one warm-up call per method first.

1. **224², single image**: the 8 shared photographs (``../shared/data/images``, resized
   bicubic to 224²), each timed ``--repeats`` times (default 5; ``--quick`` 2),
   interleaved photo by photo with the peers below, and also as ``dhtgraph default``:
   ``tokenize`` with its default thread policy (one intra-op thread below 2¹⁷ pixels).
   Reported: the median over all photo × repeat calls, ms per image. ``dhtgraph tensor
   path`` is the same call with the native kernels turned off (``dhtgraph._native.disabled``:
   torch ops only, as on CUDA or without a C compiler), interleaved with the others.
2. **224², batch of 16** (the 8 photographs and their mirror images): ``tokenize(batch,
   num_threads=2)`` — two worker threads with one intra-op thread each over the two
   halves (the batch pool) — and the same batch as one call with 2 intra-op threads
   (the 0.2.0 path), and the pool without the native kernels; median of ``--repeats``
   calls (``--quick`` 1), divided by 16.
3. **Op counts and host syncs per call** (bedcat, single image and the batch of 16 as one
   call): aten ops from ``torch.profiler`` (all, nested included, and top level only),
   and host syncs counted with a dispatch mode: ``_local_scalar_dense`` (``int()``,
   ``.item()``, ``bool()``), ``equal``, ``nonzero``, ``unique``, ``masked_select``,
   ``repeat_interleave`` without ``output_size``, boolean-mask indexing, and ``.tolist()``.
4. **Time per stage** (single image, 2 intra-op threads, the 8 photographs × repeats,
   medians): encoder, ``build_hierarchy``, ``select_partition``, ``assemble_tokens``,
   called as ``DHTTokenizer`` calls them.
5. **Time per pixel**: bedcat resized to 224², 512², 1024², 2048², 4096² (``--quick``:
   224², 512², 1024²); median of ``--repeats`` calls at ≤ 1024², of 2 at 2048², one run at
   4096²; ns per pixel.
6. **Peak extra memory** (B/px): one tokenize call at 4096² (``--quick``: 1024²) on the
   elephant photograph in a fresh subprocess: ``VmHWM`` after the call minus ``VmRSS``
   before it (after a 64² warm-up call and a reset of the peak mark through
   ``/proc/self/clear_refs``), divided by the pixels; once with the native kernels and
   once with ``DHTGRAPH_NATIVE=off``.
7. **Peers** at 224² on the same photographs, same interleaving: scikit-image
   Felzenszwalb (scale 200, sigma 0.5, min_size 10) and SLIC (400 segments), OpenCV
   ximgproc SLIC (SLICO, region size 11 ≈ 400 regions, 10 iterations) and SEEDS (400
   superpixels, 4 levels, 4 iterations), fast-slic (AVX2 when available, 400 components,
   compactness 10). A peer that is not installed is skipped with the reason printed (they
   are benchmark-only: ``pip install opencv-contrib-python-headless``; ``pip install cython``
   then ``pip install --no-build-isolation fast-slic``). Every time is also given as a
   ratio to Felzenszwalb's median.

Writes ``benchmarks/results/speed.json`` (``--quick``: ``speed_quick.json``).

Run: ``python benchmarks/speed.py [--quick] [--repeats 5] [--threads 2]``
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
import statistics
import subprocess
import time
from collections import Counter

import numpy as np

sys.path.append(str(_HERE))
from _common import SHARED_IMAGES, write_json  # noqa: E402

MAX_TOKENS = 400
PHOTOS = ("bedcat", "cowbike", "elephant", "kids", "painting", "skier", "tennis", "toys")
SCALING_PHOTO = "bedcat"
MEMORY_PHOTO = "elephant"  # textured: issue 15's memory goal is stated on it
BATCH = 16
SIZES = (224, 512, 1024, 2048, 4096)
QUICK_SIZES = (224, 512, 1024)
#: OpenCV SLIC region size giving about MAX_TOKENS regions at 224²: √(224²/400) ≈ 11.
CV_REGION_SIZE = 11

_MEMORY_CHILD = """
import sys, numpy as np, torch
from PIL import Image
import dhtgraph
torch.set_num_threads(int(sys.argv[3]))
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
side = int(sys.argv[2])
image = np.asarray(Image.open(sys.argv[1]).convert("RGB").resize((side, side), Image.BICUBIC))
dhtgraph.tokenize(image[:64, :64], 400, num_threads=int(sys.argv[3]))  # imports, caches
with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
    f.write("5")
before = status("VmRSS:")
dhtgraph.tokenize(image, 400, num_threads=int(sys.argv[3]))
print(status("VmHWM:") - before)
"""


def load_photo(name: str, side: int) -> np.ndarray:
    from PIL import Image

    path = SHARED_IMAGES / f"{name}.jpg"
    return np.asarray(Image.open(path).convert("RGB").resize((side, side), Image.BICUBIC))


# ------------------------------------------------------------------ counting
def count_ops(fn) -> dict:
    """aten ops of one ``fn()`` (torch.profiler): all (nested included) and top level."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return {"aten_ops": len(events), "aten_ops_top_level": len(top)}


def count_syncs(fn) -> dict:
    """Host syncs of one ``fn()`` by kind (a dispatch mode on this thread)."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: Counter = Counter()
    reads = {"_local_scalar_dense", "equal", "nonzero", "_unique2", "unique_dim",
             "unique_consecutive", "masked_select", "repeat_interleave"}

    class Dispatch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = func.overloadpacket.__name__
            if name == "index" and len(args) > 1 and any(
                    isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
                    if i is not None):
                counts["index (bool mask)"] += 1
            elif name in reads and not (name == "repeat_interleave"
                                        and kwargs.get("output_size") is not None):
                counts[name] += 1
            return func(*args, **kwargs)

    class ToList(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", None) == "tolist":
                counts["tolist"] += 1
            return func(*args, **(kwargs or {}))

    with ToList(), Dispatch():
        fn()
    return {"total": sum(counts.values()), "by_kind": dict(sorted(counts.items()))}


# ------------------------------------------------------------------ peers
def make_peers(threads: int) -> tuple[dict, dict]:
    """name → fn(image uint8 (H, W, 3)); and name → reason for the skipped ones."""
    from skimage.segmentation import felzenszwalb, slic

    peers = {
        "felzenszwalb": lambda im: felzenszwalb(im, scale=200, sigma=0.5, min_size=10),
        "skimage slic": lambda im: slic(im, n_segments=MAX_TOKENS, start_label=0),
    }
    skipped = {}
    try:
        import cv2

        cv2.setNumThreads(threads)
        ximgproc = cv2.ximgproc

        def cv_slic(im):
            lab = cv2.cvtColor(im, cv2.COLOR_RGB2LAB)
            seg = ximgproc.createSuperpixelSLIC(lab, algorithm=ximgproc.SLICO,
                                                region_size=CV_REGION_SIZE)
            seg.iterate(10)
            return seg.getLabels()

        def cv_seeds(im):
            h, w, c = im.shape
            seg = ximgproc.createSuperpixelSEEDS(w, h, c, MAX_TOKENS, 4)
            seg.iterate(im, 4)
            return seg.getLabels()

        peers["opencv slic"] = cv_slic
        peers["opencv seeds"] = cv_seeds
    except (ImportError, AttributeError) as exc:
        reason = f"opencv ximgproc unavailable ({exc}); pip install opencv-contrib-python-headless"
        skipped["opencv slic"] = skipped["opencv seeds"] = reason
    try:
        try:
            from fast_slic.avx2 import SlicAvx2 as FastSlic
        except ImportError:
            from fast_slic import Slic as FastSlic

        def fast(im):
            return FastSlic(num_components=MAX_TOKENS, compactness=10,
                            num_threads=threads).iterate(np.ascontiguousarray(im))

        peers["fast-slic"] = fast
    except ImportError as exc:
        skipped["fast-slic"] = (f"fast-slic unavailable ({exc}); pip install cython, then "
                                "pip install --no-build-isolation fast-slic (may not build)")
    return peers, skipped


# ------------------------------------------------------------------ timing
def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(times: list) -> float:
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, sizes up to 1024², memory at 1024² (for make bench)")
    parser.add_argument("--repeats", type=int, default=None, help="default 5; --quick 2")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    threads = args.threads

    import torch

    import dhtgraph
    from dhtgraph.graph.pixel import as_image_tensor
    from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
    from dhtgraph.nn.config import DHTConfig
    from dhtgraph.nn.tokens import assemble_tokens
    from dhtgraph.selection.select import ic_stopping, select_partition
    from dhtgraph.threads import limit
    from dhtgraph import _native
    from dhtgraph.tokenize import _tokenizer

    torch.set_num_threads(threads)
    module = _tokenizer(DHTConfig.preset("recommended", in_channels=3), torch.device("cpu"))
    photos = {name: load_photo(name, 224) for name in PHOTOS}
    tensors = {name: as_image_tensor(im) for name, im in photos.items()}  # (1, 3, H, W)
    batch = torch.cat([tensors[n] for n in PHOTOS] + [tensors[n].flip(-1) for n in PHOTOS])

    def dht(x):
        return dhtgraph.tokenize(x, MAX_TOKENS, num_threads=threads)

    def one_call(x):  # the batch as one call with `threads` intra-op threads (no pool)
        with limit(threads), torch.no_grad():
            return module._forward(x, MAX_TOKENS, None)

    peers, skipped = make_peers(threads)
    for reason in skipped.values():
        print("skipped:", reason, file=sys.stderr)
    results: dict = {"threads": threads, "max_tokens": MAX_TOKENS, "repeats": repeats,
                     "quick": args.quick, "photos": list(PHOTOS), "skipped": skipped,
                     "native": _native.status(),
                     "machine_load_start": open("/proc/loadavg").read().split()[:4]}
    print(_native.status())

    def tensor_path(fn):
        def run(*args):
            with _native.disabled():
                return fn(*args)
        return run

    # 1 + 7: single images, interleaved with the peers.
    methods = {"dhtgraph": lambda name: dht(tensors[name]),
               # the default thread policy (one intra-op thread below 2^17 pixels)
               "dhtgraph default": lambda name: dhtgraph.tokenize(tensors[name], MAX_TOKENS),
               "dhtgraph tensor path": tensor_path(lambda name: dht(tensors[name]))}
    methods.update({peer: (lambda name, f=fn: f(photos[name])) for peer, fn in peers.items()})
    for fn in methods.values():
        fn(PHOTOS[0])  # warm-up
    single: dict = {m: [] for m in methods}
    for _ in range(repeats):
        for name in PHOTOS:
            for method, fn in methods.items():
                single[method].append(timed(lambda: fn(name)))
    felz = median_ms(single["felzenszwalb"])
    results["single_224_ms"] = {m: {"median_ms": median_ms(t), "vs_felzenszwalb":
                                    median_ms(t) / felz, "calls": len(t)}
                                for m, t in single.items()}
    print(f"224², single image, median ms over {len(PHOTOS)} photos × {repeats} "
          f"({threads} threads):")
    for method, row in results["single_224_ms"].items():
        print(f"  {method:20s} {row['median_ms']:8.2f} ms   {row['vs_felzenszwalb']:5.2f}× "
              "Felzenszwalb")

    # 2: the batch of 16.
    batch_repeats = 1 if args.quick else repeats
    pool_tensor = tensor_path(dht)
    dht(batch), one_call(batch), pool_tensor(batch)  # warm-up
    pooled, whole, pooled_tensor = [], [], []
    for _ in range(batch_repeats):
        pooled.append(timed(lambda: dht(batch)))
        whole.append(timed(lambda: one_call(batch)))
        pooled_tensor.append(timed(lambda: pool_tensor(batch)))
    results["batch16_224_ms_per_image"] = {
        "pool": median_ms(pooled) / BATCH, "one_call": median_ms(whole) / BATCH,
        "pool_tensor_path": median_ms(pooled_tensor) / BATCH,
        "pool_vs_felzenszwalb_single": median_ms(pooled) / BATCH / felz, "calls": batch_repeats}
    print(f"224², batch of {BATCH}, ms per image: pool {median_ms(pooled) / BATCH:.2f}, one call "
          f"{median_ms(whole) / BATCH:.2f}, pool without native kernels "
          f"{median_ms(pooled_tensor) / BATCH:.2f} ({median_ms(pooled) / BATCH / felz:.2f}× "
          "Felzenszwalb's single-image time)")

    # 3: op counts and host syncs (one thread: the counters see this thread only).
    bedcat = tensors[SCALING_PHOTO]
    counts = {}
    for label, x in (("single", bedcat), (f"batch{BATCH}", batch)):
        with limit(1), torch.no_grad():
            call = lambda: module._forward(x, MAX_TOKENS, None)  # noqa: E731
            counts[label] = {**count_ops(call), "host_syncs": count_syncs(call)}
        print(f"per call, {label}: {counts[label]['aten_ops']} aten ops "
              f"({counts[label]['aten_ops_top_level']} top level), "
              f"{counts[label]['host_syncs']['total']} host syncs")
    results["per_call"] = counts

    # 4: time per stage.
    cfg = module.config
    stages: dict = {"encode": [], "build_hierarchy": [], "select_partition": [],
                    "assemble_tokens": []}
    with limit(threads), torch.no_grad():
        for _ in range(repeats):
            for name in PHOTOS:
                x = tensors[name].to(module.linear.weight.dtype)
                b, _, h, w = x.shape
                t0 = time.perf_counter()
                feats = module.encode(x)
                t1 = time.perf_counter()
                built = build_hierarchy(
                    feats, PixelGrid(b, h, w), compactness=cfg.compactness,
                    var_projection=module.varproj, loop_default=cfg.loop_potential,
                    weights=cfg.weights, min_blocks=cfg.min_blocks, max_levels=cfg.max_levels,
                    stop=ic_stopping(cfg.criterion, cfg.iota), tie_break=cfg.tie_break)
                t2 = time.perf_counter()
                selection = select_partition(built, cfg.criterion, cfg.iota)
                t3 = time.perf_counter()
                assemble_tokens(x, feats, built, selection, module.linear, MAX_TOKENS,
                                priority=cfg.budget_priority)
                t4 = time.perf_counter()
                for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    stages[key].append(dt)
    results["stages_224_ms"] = {k: median_ms(v) for k, v in stages.items()}
    print("stages at 224² (median ms): " + ", ".join(
        f"{k} {v:.2f}" for k, v in results["stages_224_ms"].items()))

    # 5: time per pixel.
    scaling = {}
    for side in (QUICK_SIZES if args.quick else SIZES):
        x = as_image_tensor(load_photo(SCALING_PHOTO, side))
        runs = 1 if side >= 4096 else 2 if side >= 2048 else repeats
        if side < 2048:
            dht(x)  # warm-up
        ms = median_ms([timed(lambda: dht(x)) for _ in range(runs)])
        scaling[side] = {"ms": ms, "ns_per_pixel": ms * 1e6 / side ** 2, "runs": runs}
        print(f"  {side}²: {ms:9.1f} ms  {ms * 1e6 / side ** 2:7.1f} ns/px  ({runs} runs)",
              flush=True)
    results["scaling"] = scaling

    # 6: peak extra memory in a fresh process.
    side = 1024 if args.quick else 4096
    for key, setting in (("peak_extra_memory", "auto"), ("peak_extra_memory_tensor_path", "off")):
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD,
                              str(SHARED_IMAGES / f"{MEMORY_PHOTO}.jpg"), str(side), str(threads)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, _native.ENV: setting})
        extra = int(out.stdout.split()[-1])
        results[key] = {"photo": MEMORY_PHOTO, "side": side, "bytes": extra,
                        "bytes_per_pixel": extra / side ** 2, _native.ENV: setting}
        print(f"peak extra memory at {side}² ({MEMORY_PHOTO}, {_native.ENV}={setting}): "
              f"{extra / 2 ** 20:.0f} MiB, {extra / side ** 2:.0f} B/px")

    results["machine_load_end"] = open("/proc/loadavg").read().split()[:4]
    path = write_json("speed_quick" if args.quick else "speed", results)
    print("written", path)


if __name__ == "__main__":
    if not SHARED_IMAGES.exists():
        sys.exit(f"speed.py needs the shared photographs ({SHARED_IMAGES} is absent)")
    main()
