"""Token budget quality and time: the least-Ward-cost merge against 0.1's and peers (issue 9).

Before and after in the same process: "before" is ``merge_to_budget`` loaded from the
baseline worktree's ``dhtgraph/selection/budget.py`` (``--baseline``, default
``/tmp/base-budget``; create it with ``git worktree add /tmp/base-budget 02e1659``) and
swapped in for the library's; everything else in the pipeline is today's code.

1. Seeded Voronoi mosaics, 224², 15–60 regions of uniform random colours, in four kinds:
   ``flat``; ``noise`` (light Gaussian noise σ = 0.02); ``blurred`` (Gaussian blur σ = 2,
   then noise σ = 0.01); ``textured`` (per-region sinusoidal stripes of amplitude 0.08,
   random period 4–16 px and orientation, plus noise σ = 0.02). At 64/100/200/400 tokens:
   undersegmentation error (Neubert & Protzel: Σ_S Σ_G min(|S∩G|, |S∖G|) / N),
   achievable segmentation accuracy (Σ_S max_G |S∩G| / N) and boundary recall (ground-truth
   boundary pixels within 2 px, Chebyshev, of a segment boundary pixel) of
   ``dhtgraph.tokenize(image, max_tokens=T)`` before and after, and of scikit-image's
   Felzenszwalb (scale bisected) and SLIC (n_segments bisected) matched to the same count
   (±3 %). Means over ``--seeds`` mosaics per kind.
2. The eight shared 224² photographs (``../shared/data/dht-reference/*.npz``, the
   images of ``../shared/data/images`` at 224²): explained variation (RGB in [0, 1]) at
   64/100/196/400 tokens, before and after.
3. Time: median over ``--repeats`` interleaved runs of ``dhtgraph.tokenize`` of one
   photograph at 224² with ``max_tokens=196`` (one thread), before and after, and of the
   budget stage alone on the same tokens.

The metrics are private helpers of this script (dhtgraph.metrics holds only explained
variation at the time of writing). Prints tables; writes ``benchmarks/results/budget.json``.

Run: ``python benchmarks/budget.py [--seeds 3] [--repeats 7] [--baseline /tmp/base-budget]``

``--assembly`` instead measures the token assembly after selection (issue 15), nothing
else: on ``bedcat`` at 224² (``--side``), one image and a batch of ``--batch`` copies, with
``max_tokens=400``, one thread, it captures the inputs of
:func:`dhtgraph.nn.tokens.assemble_tokens` and of ``merge_to_budget`` and reports per call
the aten op count (torch.profiler, nested ops included), the host reads (ops that return
sizes or values to the host) and the median process CPU time over ``--repeats`` calls of
``assemble_tokens``, ``merge_to_budget`` and the region statistics; "before" is 0.2.0's
merge (the frozen loop in ``tests/selection/budget_reference.py``) and 0.2.0's
``pool_regions`` with pixel positions, interleaved with today's in the same process.
Writes ``benchmarks/results/budget_assembly.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shares its name with the standard library's ``tokenize``: keep
# this folder off the import path until the standard library has loaded it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.append(str(_HERE))
from _common import load_image, median_time, write_json  # noqa: E402

import dhtgraph  # noqa: E402
import dhtgraph.selection.budget as budget_module  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIDE = 224
KINDS = ("flat", "noise", "blurred", "textured")
MOSAIC_COUNTS = (64, 100, 200, 400)
PHOTO_COUNTS = (64, 100, 196, 400)
TIME_TOKENS = 196


# ---------------------------------------------------------------- mosaics (private)
def mosaic(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded Voronoi mosaic (H, W, 3) float32 in [0, 1] and its region labels (H, W)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    regions = int(rng.integers(15, 61))
    points = rng.uniform(0, SIDE, (regions, 2))
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    d = (yy[..., None] - points[:, 0]) ** 2 + (xx[..., None] - points[:, 1]) ** 2
    truth = d.argmin(-1)
    colours = rng.uniform(0, 1, (regions, 3))
    image = colours[truth]
    if kind == "blurred":
        image = np.stack([gaussian_filter(image[..., c], 2.0) for c in range(3)], -1)
        image = image + rng.normal(0, 0.01, image.shape)
    elif kind == "textured":
        angle = rng.uniform(0, np.pi, regions)[truth]
        period = rng.uniform(4, 16, regions)[truth]
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        image = image + 0.08 * np.sin(phase)[..., None] + rng.normal(0, 0.02, image.shape)
    elif kind == "noise":
        image = image + rng.normal(0, 0.02, image.shape)
    return np.clip(image, 0, 1).astype(np.float32), truth


def _contingency(seg: np.ndarray, truth: np.ndarray) -> np.ndarray:
    s = np.unique(seg.ravel(), return_inverse=True)[1]
    g = np.unique(truth.ravel(), return_inverse=True)[1]
    return np.bincount(s * (g.max() + 1) + g, minlength=(s.max() + 1) * (g.max() + 1)
                       ).reshape(s.max() + 1, g.max() + 1)


def undersegmentation_error(seg, truth) -> float:
    table = _contingency(seg, truth)
    sizes = table.sum(1, keepdims=True)
    return float(np.minimum(table, sizes - table)[table > 0].sum() / seg.size)


def achievable_segmentation_accuracy(seg, truth) -> float:
    return float(_contingency(seg, truth).max(1).sum() / seg.size)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    right = labels[:, 1:] != labels[:, :-1]
    down = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= right
    edge[:, :-1] |= right
    edge[1:, :] |= down
    edge[:-1, :] |= down
    return edge


def boundary_recall(seg, truth, radius: int = 2) -> float:
    from scipy.ndimage import binary_dilation

    gt = _boundaries(truth)
    near = binary_dilation(_boundaries(seg), structure=np.ones((2 * radius + 1,) * 2, bool))
    return float((gt & near).sum() / max(gt.sum(), 1))


def bisect_count(run, target: int, lo: float, hi: float, increasing: bool, steps: int = 14):
    """Labels from ``run(parameter)`` with a count within 3 % of ``target`` (log bisection)."""
    best = None
    for _ in range(steps):
        mid = float(np.sqrt(lo * hi))
        labels = run(mid)
        count = int(labels.max()) + 1
        if best is None or abs(count - target) < abs(best[0] - target):
            best = (count, labels)
        if abs(count - target) <= 0.03 * target:
            break
        if (count > target) == increasing:
            hi = mid
        else:
            lo = mid
    return best


# ---------------------------------------------------------------- before / after
def load_baseline(root: Path):
    path = root / "dhtgraph" / "selection" / "budget.py"
    if not path.exists():
        sys.exit(f"no baseline budget at {path}: run `git worktree add {root} 02e1659`")
    spec = importlib.util.spec_from_file_location("dhtgraph.selection._baseline_budget", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.merge_to_budget


def use_budget(fn) -> None:
    """Make every dhtgraph module that imported ``merge_to_budget`` call ``fn``."""
    for name, module in list(sys.modules.items()):
        if (name.startswith("dhtgraph") and module is not budget_module
                and not name.startswith("dhtgraph.selection._baseline")
                and getattr(module, "merge_to_budget", None) is not None):
            module.merge_to_budget = fn


def labels_of(image: np.ndarray, tokens: int) -> np.ndarray:
    out = dhtgraph.tokenize(image, max_tokens=tokens)
    return out.partition.labels.reshape(image.shape[:2]).numpy()


_HOST_READS = ("_local_scalar_dense", "nonzero", "_unique2", "unique_dim", "masked_select",
               "unique_consecutive")


def _count_ops(fn) -> tuple[int, int]:
    """(aten ops, host reads) of one call of ``fn``."""
    from torch.profiler import profile
    from torch.utils._python_dispatch import TorchDispatchMode

    class Reads(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            boolean = name == "index" and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 else ()) if i is not None)
            Reads.total += name in _HOST_READS or boolean
            return func(*args, **(kwargs or {}))

    with profile() as prof:
        fn()
    ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    with Reads():
        fn()
    return ops, Reads.total


def assembly(args) -> None:
    """The ``--assembly`` measurement (module docstring)."""
    from dhtgraph.features.pooling import pool_grid_regions, pool_regions
    from dhtgraph.graph.pixel import grid_quotient
    from dhtgraph.hierarchy.build import PixelGrid, build_hierarchy
    from dhtgraph.nn import DHTConfig, DHTTokenizer
    from dhtgraph.nn.tokens import assemble_tokens
    from dhtgraph.selection import ic_stopping, select_partition

    spec = importlib.util.spec_from_file_location(
        "budget_reference", _HERE.parent / "tests" / "selection" / "budget_reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    side = args.side
    one = torch.from_numpy(load_image(side).copy()).permute(2, 0, 1).float()[None] / 255
    model = DHTTokenizer(DHTConfig.preset("recommended"))
    cfg = model.config
    results = {}
    for b in (1, args.batch):
        images = one.repeat(b, 1, 1, 1)
        with torch.no_grad():
            x = model.encode(images)
            built = build_hierarchy(
                x, PixelGrid(b, side, side), compactness=cfg.compactness,
                var_projection=model.varproj, loop_default=cfg.loop_potential,
                weights=cfg.weights, min_blocks=cfg.min_blocks, max_levels=cfg.max_levels,
                stop=ic_stopping(cfg.criterion, cfg.iota), tie_break=cfg.tie_break)
            sel = select_partition(built, cfg.criterion, cfg.iota)
            part = sel.partition
            edges = grid_quotient(part.labels, part.num_blocks, b, side, side)
            projected = model.linear(sel.mean)
            sizes = part.sizes
            pos = built.grid.pos()
            calls = {
                "assemble_tokens": (None, lambda: assemble_tokens(images, x, built, sel,
                                                                   model.linear, 400)),
                "merge_to_budget": (
                    lambda: reference.reference_merge_to_budget(
                        part, projected, sel.batch, None, 400, token_edge_index=edges),
                    lambda: budget_module.merge_to_budget(
                        part, projected, sel.batch, None, 400, token_edge_index=edges,
                        sizes=sizes)),
                "region statistics": (lambda: pool_regions(part, x, pos=built.grid.pos()),
                                      lambda: pool_grid_regions(part, x, b, side, side,
                                                                sizes=sizes)),
            }
            del pos
            row = {}
            for name, (before, after) in calls.items():
                entry = {}
                for label, fn in (("before", before), ("after", after)):
                    if fn is not None:
                        ops, reads = _count_ops(fn)
                        entry[label] = {"ops": ops, "host_reads": reads, "ms": []}
                for _ in range(3):                       # interleaved rounds
                    for label, fn in (("before", before), ("after", after)):
                        if fn is not None:
                            entry[label]["ms"].append(
                                1e3 * median_time(fn, args.repeats, clock=time.process_time) / b)
                for v in entry.values():
                    v["ms_per_image"] = float(np.median(v.pop("ms")))
                row[name] = entry
            results[f"batch{b}"] = row
        print(f"\n{side}² bedcat, batch {b}, max_tokens=400 ({part.num_blocks} tokens selected), "
              "1 thread: ops / host reads per call, CPU ms per image")
        for name, entry in row.items():
            print(f"  {name:18s} " + "   ".join(
                f"{label}: {v['ops']} ops, {v['host_reads']} reads, {v['ms_per_image']:.2f} ms"
                for label, v in entry.items()))
    write_json("budget_assembly", results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="mosaics per kind")
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats")
    parser.add_argument("--baseline", type=Path, default=Path("/tmp/base-budget"))
    parser.add_argument("--assembly", action="store_true",
                        help="only the assembly-stage op counts and times (issue 15)")
    parser.add_argument("--side", type=int, default=SIDE, help="image side for --assembly")
    parser.add_argument("--batch", type=int, default=16, help="batch size for --assembly")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.assembly:
        assembly(args)
        return
    from skimage.segmentation import felzenszwalb, slic

    versions = {"before": load_baseline(args.baseline), "after": budget_module.merge_to_budget}
    dhtgraph.tokenize(np.zeros((8, 8, 3), np.uint8), max_tokens=2)   # import the pipeline
    metrics = {"UE": undersegmentation_error, "ASA": achievable_segmentation_accuracy,
               "BR": boundary_recall}
    results = {"mosaics": {}, "photos": {}, "time": {}}

    # 1. mosaics
    for kind in KINDS:
        rows = {m: {c: [] for c in MOSAIC_COUNTS} for m in ("before", "after", "felzenszwalb", "slic")}
        for seed in range(args.seeds):
            image, truth = mosaic(kind, 1000 * KINDS.index(kind) + seed)
            for count in MOSAIC_COUNTS:
                segs = {}
                for name, fn in versions.items():
                    use_budget(fn)
                    segs[name] = labels_of(image, count)
                segs["felzenszwalb"] = bisect_count(
                    lambda s: felzenszwalb(image, scale=s, sigma=0.5, min_size=10), count,
                    1.0, 1e5, increasing=False)[1]
                segs["slic"] = bisect_count(
                    lambda n: slic(image, n_segments=int(round(n)), start_label=0), count,
                    count / 4, count * 4, increasing=True)[1]
                for name, seg in segs.items():
                    rows[name][count].append({m: f(seg, truth) for m, f in metrics.items()}
                                             | {"count": int(np.unique(seg).size)})
        table = {name: {str(c): {m: float(np.mean([r[m] for r in runs])) for m in
                                 ("UE", "ASA", "BR", "count")} for c, runs in per.items()}
                 for name, per in rows.items()}
        results["mosaics"][kind] = table
        print(f"\nmosaics '{kind}' ({args.seeds} seeds): UE / ASA / BR")
        print("method        " + "".join(f"{c:>24d}" for c in MOSAIC_COUNTS))
        for name, per in table.items():
            print(f"{name:13s} " + "".join(
                f"   {v['UE']:.4f}/{v['ASA']:.4f}/{v['BR']:.3f}" for v in per.values()))

    # 2. photographs
    files = sorted((SHARED / "dht-reference").glob("*.npz"))
    photos = [np.load(f)["input"] for f in files]
    for name, fn in versions.items():
        use_budget(fn)
        results["photos"][name] = {}
        for count in PHOTO_COUNTS:
            ev = [float(dhtgraph.explained_variation(p, dhtgraph.tokenize(p, max_tokens=count).partition))
                  for p in photos]
            results["photos"][name][str(count)] = {"mean": float(np.mean(ev)), "min": float(np.min(ev))}
    print(f"\nexplained variation on {len(photos)} photographs (mean / worst)")
    for name, per in results["photos"].items():
        print(f"{name:8s} " + "  ".join(f"{c}: {v['mean']:.4f}/{v['min']:.3f}" for c, v in per.items()))

    # 3. time
    if photos:
        photo = photos[files.index(next(f for f in files if f.stem == "kids"))] \
            if any(f.stem == "kids" for f in files) else photos[0]
        captured = {}

        def capture(*a, **k):
            captured["args"] = (a, k)
            return budget_module.merge_to_budget(*a, **k)

        use_budget(capture)
        dhtgraph.tokenize(photo, max_tokens=TIME_TOKENS)
        full = {n: [] for n in versions}
        stage = {n: [] for n in versions}
        a, k = captured["args"]
        for _ in range(args.repeats):
            for name, fn in versions.items():
                use_budget(fn)
                t = time.perf_counter()
                dhtgraph.tokenize(photo, max_tokens=TIME_TOKENS)
                full[name].append(time.perf_counter() - t)
                t = time.perf_counter()
                fn(*a, **k)
                stage[name].append(time.perf_counter() - t)
        use_budget(budget_module.merge_to_budget)
        for name in versions:
            results["time"][name] = {"tokenize_ms": 1e3 * float(np.median(full[name])),
                                     "budget_ms": 1e3 * float(np.median(stage[name]))}
        results["time"]["tokenize_ratio"] = (results["time"]["after"]["tokenize_ms"]
                                             / results["time"]["before"]["tokenize_ms"])
        results["time"]["tokens_before_budget"] = int(a[0].num_blocks)
        print(f"\ntime at 224², max_tokens={TIME_TOKENS} ({a[0].num_blocks} tokens before the budget), "
              f"median of {args.repeats}:")
        for name in versions:
            v = results["time"][name]
            print(f"{name:8s} tokenize {v['tokenize_ms']:.1f} ms, budget stage {v['budget_ms']:.2f} ms")
        print(f"tokenize after/before: {results['time']['tokenize_ratio']:.3f}")
    write_json("budget", results)


if __name__ == "__main__":
    main()
