"""Segmentation quality at matched token counts: dhtgraph against the superpixel methods a
user would pick (issue 12 §3).

Methods: ``dhtgraph.tokenize`` (defaults; ``iota`` raised ×10 at a time only when the
selection yields fewer tokens than asked), the official dHT weights through
``DHTTokenizer.from_dht_checkpoint`` (where ``../shared`` is present; budget only, so at
most the selection's count), scikit-image SLIC, Felzenszwalb, Quickshift and compact
watershed, OpenCV ximgproc SLIC (SLICO), SEEDS and LSC (``opencv-contrib-python-headless``)
and ``fast-slic`` (each skipped with the printed reason when it does not import).

Every method's parameter is searched per image so that its segment count comes within
5 % of the target (log-secant steps on count ∝ parameter^a, at most ``--steps`` calls);
the table reports the counts reached. Time per image is the wall time of the call that
produced the reported segmentation, after one warm-up call of each tokenizer (2 torch threads; machines here are shared and
noisy: compare methods measured in the same run).

Image sets (all 224², uint8 RGB, the same array to every method and metric):
- ground truth: ``dhtgraph.datasets`` Voronoi mosaics (gradient 0.2, blur 0.7, noise
  0.03), textured polygon mosaics (texture 0.1, gradient 0.2, noise 0.03), and
  ``skimage.data.shepp_logan_phantom`` (truth: its exact intensity levels, resized by
  nearest neighbour). Metrics: boundary recall and precision (thin boundaries, tolerance
  1 px), undersegmentation error, achievable segmentation accuracy, compactness,
  explained variation, PSNR of the mean-colour image;
- photographs: the eight shared 224² reference inputs (``../shared/data/dht-reference``)
  or, without them, four ``skimage.data`` images. Metrics: explained variation,
  compactness, PSNR.

Output: a table per set and metric, ``benchmarks/results/quality.json`` and
``benchmarks/results/quality_<metric>.png`` (metric against token count, one panel per
set).

Run: ``python benchmarks/quality.py`` (full: 5 counts, 12 images per ground-truth set)
or ``python benchmarks/quality.py --quick`` (3 counts, 3 images per set: a few minutes).
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shares its name with the standard library's ``tokenize``: keep
# this folder off the import path until the standard library has loaded it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.append(str(_HERE))
from _common import RESULTS, write_json  # noqa: E402

import dhtgraph  # noqa: E402
from dhtgraph import metrics  # noqa: E402
from dhtgraph.datasets import generate_mosaics  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZE = 224
COUNT_TOLERANCE = 0.05
TRUTH_METRICS = ("boundary_recall", "boundary_precision", "undersegmentation_error",
                 "achievable_segmentation_accuracy", "compactness", "explained_variation", "psnr")
PHOTO_METRICS = ("explained_variation", "compactness", "psnr")
HIGHER_IS_BETTER = {m: m != "undersegmentation_error" for m in TRUTH_METRICS}


# ---------------------------------------------------------------------- image sets
def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def truth_sets(n: int) -> dict:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    voronoi = generate_mosaics(n, kind="voronoi", gradient=0.2, blur=0.7, noise=0.03, seed=12)
    polygons = generate_mosaics(n, kind="polygons", texture=0.1, gradient=0.2, noise=0.03, seed=12)
    phantom = resize(shepp_logan_phantom(), (SIZE, SIZE), order=0, anti_aliasing=False,
                     preserve_range=True)
    levels, truth = np.unique(phantom, return_inverse=True)
    grey = (phantom * 255).round().astype(np.uint8)
    return {
        "voronoi": (to_uint8(voronoi.images), voronoi.truth.numpy()),
        "polygons": (to_uint8(polygons.images), polygons.truth.numpy()),
        "phantom": (np.repeat(grey[None, :, :, None], 3, axis=3), truth.reshape(1, SIZE, SIZE)),
    }


def photographs(limit: int) -> tuple[np.ndarray, str]:
    files = sorted((SHARED / "dht-reference").glob("*.npz"))
    if files:
        return np.stack([np.load(f)["input"] for f in files[:limit]]), "shared reference inputs"
    from skimage import data
    from skimage.transform import resize

    images = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()][:limit]
    return (np.stack([(resize(im, (SIZE, SIZE), anti_aliasing=True) * 255).astype(np.uint8)
                      for im in images]), "skimage.data (shared inputs absent)")


# ---------------------------------------------------------------------- methods
def count_of(labels: np.ndarray) -> int:
    return len(np.unique(labels))


def match_count(run, target: int, start: float, exponent: float, steps: int,
                integer: bool = False, bounds=(1e-6, 1e9)):
    """Search the parameter of ``run`` (→ labels) for ``target`` segments.

    Returns (labels, count, seconds of that call, parameter)."""
    best, tried = None, {}
    param, previous = start, None
    for _ in range(steps):
        param = min(max(param, bounds[0]), bounds[1])
        if integer:
            param = max(1, int(round(param)))
        if param in tried:
            break
        began = time.perf_counter()
        labels = run(param)
        seconds = time.perf_counter() - began
        count = count_of(labels)
        tried[param] = count
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (labels, count, seconds, param)
        if abs(count - target) <= COUNT_TOLERANCE * target:
            break
        if previous is not None and previous[1] != count and previous[0] != param:
            estimate = math.log(count / previous[1]) / math.log(param / previous[0])
            if estimate * exponent > 0:  # keep the known direction of the dependence
                exponent = estimate
        previous = (param, count)
        param = param * (target / count) ** (1 / exponent)
    return best


def skimage_methods() -> dict:
    from skimage.color import rgb2gray
    from skimage.filters import sobel
    from skimage.segmentation import felzenszwalb, quickshift, slic, watershed

    area = SIZE * SIZE
    return {
        "skimage SLIC": (lambda im, p: slic(im, n_segments=int(p), start_label=0),
                         lambda k: k, 1.0, True),
        "Felzenszwalb": (lambda im, p: felzenszwalb(im, scale=p, sigma=0.5, min_size=5),
                         lambda k: 40000.0 / k, -1.0, False),
        # kernel_size below 1 is refused: Quickshift's count saturates there (max_dist=10)
        "Quickshift": (lambda im, p: quickshift(im, kernel_size=max(p, 1.0), max_dist=10, ratio=0.5),
                       lambda k: 2.0 * math.sqrt(400 / k), -1.5, False),
        "compact watershed": (lambda im, p: watershed(sobel(rgb2gray(im)), markers=int(p),
                                                      compactness=1e-3),
                              lambda k: k, 1.0, True),
        "_area": area,
    }


def opencv_methods() -> dict:
    import cv2

    ximgproc = cv2.ximgproc

    def slico(im, p):
        s = ximgproc.createSuperpixelSLIC(im, algorithm=ximgproc.SLICO, region_size=int(p))
        s.iterate(10)
        return s.getLabels()

    def seeds(im, p):
        s = ximgproc.createSuperpixelSEEDS(im.shape[1], im.shape[0], 3, int(p), 4)
        s.iterate(im, 4)
        return s.getLabels()

    def lsc(im, p):
        s = ximgproc.createSuperpixelLSC(im, region_size=int(p))
        s.iterate(10)
        return s.getLabels()

    side = lambda k: math.sqrt(SIZE * SIZE / k)  # noqa: E731
    return {
        "OpenCV SLICO": (slico, side, -0.5, True),
        "OpenCV SEEDS": (seeds, lambda k: k, 1.0, True),
        "OpenCV LSC": (lsc, side, -0.5, True),
    }


def fast_slic_methods() -> dict:
    from fast_slic import Slic

    def run(im, p):
        return Slic(num_components=int(p), compactness=10).iterate(np.ascontiguousarray(im))

    return {"fast-slic": (run, lambda k: k, 1.0, True)}


def dhtgraph_run(image: np.ndarray, target: int):
    """``tokenize`` defaults; ι ×10 while the selection has fewer than 95 % of the target."""
    for iota in (None, 100.0, 1000.0):
        options = {} if iota is None else {"iota": iota}
        began = time.perf_counter()
        tokens = dhtgraph.tokenize(image, max_tokens=target, **options)
        seconds = time.perf_counter() - began
        count = int(tokens.num_tokens[0])
        if count >= (1 - COUNT_TOLERANCE) * target:
            break
    return tokens.labels()[0].numpy(), count, seconds, iota or 10.0


def official_runner():
    checkpoint = SHARED / "dht-r2v" / "r2v.pth"
    if not checkpoint.exists():
        return None, f"official weights absent ({checkpoint})"
    model = dhtgraph.DHTTokenizer.from_dht_checkpoint(checkpoint)

    def run(image: np.ndarray, target: int):
        x = torch.as_tensor(image).permute(2, 0, 1)[None].float() / 255
        began = time.perf_counter()
        with torch.no_grad():
            out = model(dhtgraph.imagenet_normalize(x), max_tokens=target)
        seconds = time.perf_counter() - began
        h, w = image.shape[:2]
        labels = out.partition.labels.view(h, w)
        return labels.numpy(), int(out.num_tokens[0]), seconds, None

    return run, None


# ---------------------------------------------------------------------- measuring
def score(image: np.ndarray, labels: np.ndarray, truth, names) -> dict:
    seg = torch.as_tensor(labels.astype(np.int64))
    out = {}
    for name in names:
        fn = getattr(metrics, name)
        if name in ("explained_variation", "psnr", "intra_cluster_variation"):
            value = fn(image, seg)
        elif name == "compactness":
            value = fn(seg)
        else:
            value = fn(seg, torch.as_tensor(truth.astype(np.int64)))
        out[name] = float(value[0])
    return out


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=_HERE, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 counts, 3 images per ground-truth set, 3 photographs, 4 search steps")
    parser.add_argument("--counts", type=int, nargs="+", default=None)
    parser.add_argument("--images", type=int, default=None, help="images per mosaic set")
    parser.add_argument("--photos", type=int, default=None, help="photographs (at most 8)")
    parser.add_argument("--steps", type=int, default=None, help="count-matching calls per image")
    parser.add_argument("--skip", nargs="*", default=[], help="method names to leave out")
    parser.add_argument("--sets", nargs="*", default=None,
                        help="image sets to run (voronoi polygons phantom photographs)")
    args = parser.parse_args()
    counts = args.counts or ([100, 400, 1600] if args.quick else [100, 200, 400, 800, 1600])
    n_images = args.images or (3 if args.quick else 12)
    n_photos = args.photos or (3 if args.quick else 8)
    steps = args.steps or (4 if args.quick else 7)
    torch.set_num_threads(2)

    peers, skipped = {}, {}
    for loader in (skimage_methods, opencv_methods, fast_slic_methods):
        try:
            found = loader()
        except ImportError as error:
            skipped[loader.__name__.replace("_methods", "")] = f"not installed ({error})"
            continue
        found.pop("_area", None)
        peers.update(found)
    official, reason = official_runner()
    if reason:
        skipped["dHT official weights"] = reason
    for name in args.skip:
        peers.pop(name, None)
        skipped[name] = "--skip"
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")

    sets = truth_sets(n_images)
    photos, photo_source = photographs(n_photos)
    sets["photographs"] = (photos, None)
    if args.sets:
        sets = {name: sets[name] for name in args.sets}
    # warm-up: the first tokenizer call builds and caches the module
    dhtgraph_run(photos[0], counts[0])
    if official is not None:
        official(photos[0], counts[0])
    rows = []
    for set_name, (images, truths) in sets.items():
        names = PHOTO_METRICS if truths is None else TRUTH_METRICS
        for target in counts:
            runners = {"dhtgraph": lambda im, k: dhtgraph_run(im, k)}
            if official is not None:
                runners["dHT official weights"] = official
            for name, (fn, start, exponent, integer) in peers.items():
                runners[name] = (lambda fn, start, exponent, integer: lambda im, k: match_count(
                    lambda p: fn(im, p), k, start(k), exponent, steps, integer))(fn, start, exponent, integer)
            for method, runner in runners.items():
                per_image = []
                for i, image in enumerate(images):
                    labels, count, seconds, param = runner(image, target)
                    values = score(image, labels, None if truths is None else truths[i], names)
                    per_image.append(dict(values, tokens=count, seconds=seconds))
                row = {"set": set_name, "method": method, "target": target,
                       "tokens": statistics.mean(r["tokens"] for r in per_image),
                       "count_error": statistics.mean(abs(r["tokens"] - target) / target for r in per_image),
                       "seconds": statistics.median(r["seconds"] for r in per_image)}
                row.update({m: statistics.mean(r[m] for r in per_image) for m in names})
                rows.append(row)
                print(f"{set_name:11s} {target:5d} {method:22s} tokens {row['tokens']:7.1f} "
                      f"({100 * row['count_error']:4.1f}% off) {1000 * row['seconds']:7.1f} ms  "
                      + " ".join(f"{m[:6]} {row[m]:.4f}" for m in names), flush=True)
    summary = summarise(rows, counts)
    payload = {"commit": commit(), "mode": "quick" if args.quick else "full", "counts": counts,
               "images_per_set": n_images, "photographs": f"{len(photos)} from {photo_source}",
               "skipped": skipped, "rows": rows, "summary": summary}
    print("written", write_json("quality", payload))
    plot(rows)


def summarise(rows: list[dict], counts) -> dict:
    """Per set, metric and count: the best method and dhtgraph's rank."""
    out = {}
    for set_name in dict.fromkeys(r["set"] for r in rows):
        names = PHOTO_METRICS if set_name == "photographs" else TRUTH_METRICS
        print(f"\n== {set_name}: dhtgraph rank among {len({r['method'] for r in rows})} methods "
              "(1 = best), value, best method")
        for name in names + ("seconds",):
            higher = HIGHER_IS_BETTER.get(name, True) if name != "seconds" else False
            line = []
            for target in counts:
                group = [r for r in rows if r["set"] == set_name and r["target"] == target]
                ranked = sorted(group, key=lambda r: -r[name] if higher else r[name])
                mine = next((i for i, r in enumerate(ranked) if r["method"] == "dhtgraph"), None)
                if mine is None:
                    continue
                out.setdefault(set_name, {}).setdefault(name, {})[str(target)] = {
                    "dhtgraph_rank": mine + 1, "dhtgraph": ranked[mine][name],
                    "best": ranked[0]["method"], "best_value": ranked[0][name]}
                line.append(f"{target}: #{mine + 1} {ranked[mine][name]:.4g} (best {ranked[0]['method']} "
                            f"{ranked[0][name]:.4g})")
            print(f"  {name:34s} " + " | ".join(line))
    return out


def plot(rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib absent: no plots")
        return
    sets = list(dict.fromkeys(r["set"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for name in TRUTH_METRICS + ("seconds",):
        panels = [s for s in sets if any(name in r for r in rows if r["set"] == s)]
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
        for ax, set_name in zip(axes[0], panels):
            for method in methods:
                pts = sorted((r["tokens"], r[name]) for r in rows
                             if r["set"] == set_name and r["method"] == method)
                if pts:
                    style = dict(lw=2.5, color="black") if method == "dhtgraph" else dict(lw=1)
                    ax.plot(*zip(*pts), marker="o", ms=3, label=method, **style)
            ax.set_xscale("log")
            ax.set_title(set_name)
            ax.set_xlabel("tokens per image")
            if name == "seconds":
                ax.set_yscale("log")
        axes[0][0].set_ylabel(name.replace("_", " "))
        axes[0][-1].legend(fontsize=6, loc="best")
        fig.tight_layout()
        path = RESULTS / f"quality_{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        print("written", path)


if __name__ == "__main__":
    main()
