"""Raster to vector: dhtgraph.vectorize vs vtracer (PSNR, SSIM, bytes, paths, time).

Both SVGs are rasterised with resvg (``resvg-py``, anti-aliased, composited on white) and
compared with the input. Images: skimage.data photos and ../shared/data/images/*.jpg,
resized to 224² and 1024². Times are medians after a warm-up with 2 torch threads.
Also a rate–distortion sweep (PSNR vs bytes, both tools) written as a PNG.

    python benchmarks/vectorize.py [--sizes 224 1024] [--repeats 3] [--partition dht]

``--partition felzenszwalb`` swaps the tokenizer for scikit-image's Felzenszwalb
segmentation (to test the exporter on its own); ``ceiling`` is the PSNR of the partition
filled with exact mean colours, the best any exporter can reach on that partition.
"""

from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the standard library's `tokenize` (imported by torch
# through inspect/linecache) when this file runs as a script: import from the repo root.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import RESULTS, median_time, write_json  # noqa: E402

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "images"


def load_images(size: int, shared: bool) -> dict[str, np.ndarray]:
    from PIL import Image
    from skimage import data

    images = {}
    for name in SKIMAGE_PHOTOS:
        pil = Image.fromarray(getattr(data, name)()).convert("RGB")
        images[name] = np.asarray(pil.resize((size, size), Image.LANCZOS))
    if shared:
        files = sorted(SHARED.glob("*.jpg"))
        if not files:
            print(f"note: no shared images in {SHARED.resolve()}; skipping them")
        for path in files:
            with Image.open(path) as pil:
                images[path.stem] = np.asarray(pil.convert("RGB").resize((size, size), Image.LANCZOS))
    return images


def rasterise(svg: str, height: int, width: int) -> np.ndarray:
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=width, height=height)
    rgba = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA")).astype(np.float64)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def quality(image: np.ndarray, svg: str) -> dict:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    raster = rasterise(svg, *image.shape[:2])
    return dict(psnr=float(peak_signal_noise_ratio(image, raster)),
                ssim=float(structural_similarity(image, raster, channel_axis=2)),
                bytes=len(svg.encode()), paths=svg.count("<path"))


def ceiling_psnr(image: np.ndarray, labels: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    flat = labels.reshape(-1)
    pix = image.reshape(-1, 3).astype(np.float64)
    counts = np.bincount(flat)
    means = np.stack([np.bincount(flat, pix[:, c]) / counts for c in range(3)], axis=1)
    filled = np.clip(np.rint(means[flat]), 0, 255).astype(np.uint8).reshape(image.shape)
    return float(peak_signal_noise_ratio(image, filled))


def felzenszwalb_labels(image: np.ndarray, scale: float) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    size = image.shape[0]
    return felzenszwalb(image, scale=scale, sigma=0.5, min_size=max(5, size * size // 30000))


def dht_svg(image, partition_source, knob, svg_options):
    """(svg, labels) for one image with the given partition source and granularity knob."""
    import dhtgraph.export as export
    from dhtgraph.tokenize import tokenize

    if partition_source == "dht":
        tokens = tokenize(image, **knob)
        labels = tokens.labels()[0].numpy()
        return export.to_svg(image, tokens.partition, **svg_options), labels
    labels = felzenszwalb_labels(image, **knob)
    return export.to_svg(image, labels, **svg_options), labels


def vtracer_svg(png: bytes, **options) -> str:
    import vtracer

    return vtracer.convert_raw_image_to_svg(png, img_format="png", **options)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png")
    return buffer.getvalue()


def default_knob(source: str, size: int) -> dict:
    if source == "dht":
        return {}
    return {"scale": 60.0 if size <= 256 else 150.0}


def run_table(sizes, repeats, source, shared, svg_options):
    from dhtgraph.export import vectorize

    rows = []
    for size in sizes:
        for name, image in load_images(size, shared).items():
            knob = default_knob(source, size)
            png = png_bytes(image)
            if source == "dht":
                svg = vectorize(image, **svg_options)
                t_ours = median_time(lambda: vectorize(image, **svg_options), repeats)
                from dhtgraph.tokenize import tokenize
                labels = tokenize(image).labels()[0].numpy()
            else:
                svg, labels = dht_svg(image, source, knob, svg_options)
                t_ours = median_time(lambda: dht_svg(image, source, knob, svg_options), repeats)
            from dhtgraph.export import to_svg
            t_export = median_time(lambda: to_svg(image, labels, **svg_options), repeats)
            vt = vtracer_svg(png)
            t_vt = median_time(lambda: vtracer_svg(png), repeats)
            ours, theirs = quality(image, svg), quality(image, vt)
            row = dict(image=name, size=size, partition=source, regions=int(labels.max()) + 1,
                       ceiling_psnr=ceiling_psnr(image, labels),
                       dht={**ours, "time_s": t_ours, "export_time_s": t_export},
                       vtracer={**theirs, "time_s": t_vt})
            rows.append(row)
            print(f"{size:5d} {name:10s} K={row['regions']:5d} ceil {row['ceiling_psnr']:5.2f} | "
                  f"dht {ours['psnr']:5.2f} dB {ours['ssim']:.3f} {ours['bytes'] / 1e3:7.1f} KB "
                  f"{ours['paths']:5d} p {t_ours * 1e3:7.0f} ms (svg {t_export * 1e3:5.0f}) | "
                  f"vtracer {theirs['psnr']:5.2f} dB {theirs['ssim']:.3f} "
                  f"{theirs['bytes'] / 1e3:7.1f} KB {theirs['paths']:5d} p {t_vt * 1e3:6.0f} ms",
                  flush=True)
    return rows


def summarise(rows):
    summary = {}
    for size in sorted({r["size"] for r in rows}):
        sel = [r for r in rows if r["size"] == size]

        def mean(tool, key):
            return statistics.fmean(r[tool][key] for r in sel)

        summary[size] = {
            "images": len(sel),
            "regions": statistics.fmean(r["regions"] for r in sel),
            "ceiling_psnr": statistics.fmean(r["ceiling_psnr"] for r in sel),
            **{f"{tool}_{key}": mean(tool, key) for tool in ("dht", "vtracer")
               for key in ("psnr", "ssim", "bytes", "paths", "time_s")},
            "dht_export_time_s": mean("dht", "export_time_s"),
            "time_ratio_median": statistics.median(r["dht"]["time_s"] / r["vtracer"]["time_s"]
                                                   for r in sel),
        }
    print("\nsize  n  regions ceil  | dht PSNR SSIM  KB     paths  ms   | vtracer PSNR SSIM  KB"
          "     paths  ms   | time ratio")
    for size, s in summary.items():
        print(f"{size:5d} {s['images']:2d} {s['regions']:7.0f} {s['ceiling_psnr']:5.2f} | "
              f"{s['dht_psnr']:5.2f} {s['dht_ssim']:.3f} {s['dht_bytes'] / 1e3:6.1f} "
              f"{s['dht_paths']:6.0f} {s['dht_time_s'] * 1e3:5.0f} | "
              f"{s['vtracer_psnr']:5.2f} {s['vtracer_ssim']:.3f} {s['vtracer_bytes'] / 1e3:6.1f} "
              f"{s['vtracer_paths']:6.0f} {s['vtracer_time_s'] * 1e3:5.0f} | "
              f"{s['time_ratio_median']:.2f}x")
    return summary


def rate_distortion(size, source, shared, out_png):
    """Mean PSNR vs mean bytes over the images, for a sweep of each tool's knobs."""
    images = load_images(size, shared)
    ours, theirs = [], []
    if source == "dht":
        knobs = [dict(max_tokens=m) for m in (64, 128, 256)] + [dict(iota=i) for i in (5.0, 40.0)] \
            + [dict(iota=40.0, criterion="aic")]
    else:
        knobs = [dict(scale=s) for s in (400.0, 200.0, 100.0, 60.0, 30.0)]
    for knob in knobs:
        for tol in (0.0, 1.0, 2.0):
            res = [quality(im, dht_svg(im, source, knob, dict(tolerance=tol))[0])
                   for im in images.values()]
            ours.append(dict(knob=knob, tolerance=tol,
                             psnr=statistics.fmean(r["psnr"] for r in res),
                             bytes=statistics.fmean(r["bytes"] for r in res)))
            print(f"rd {size} dht {knob} tol {tol}: {ours[-1]['psnr']:.2f} dB "
                  f"{ours[-1]['bytes'] / 1e3:.1f} KB", flush=True)
    for options in [dict(), dict(filter_speckle=16), dict(filter_speckle=32, color_precision=5),
                    dict(filter_speckle=64, color_precision=4, layer_difference=32),
                    dict(filter_speckle=2), dict(filter_speckle=1, color_precision=7)]:
        res = [quality(im, vtracer_svg(png_bytes(im), **options)) for im in images.values()]
        theirs.append(dict(options=options, psnr=statistics.fmean(r["psnr"] for r in res),
                           bytes=statistics.fmean(r["bytes"] for r in res)))
        print(f"rd {size} vtracer {options}: {theirs[-1]['psnr']:.2f} dB "
              f"{theirs[-1]['bytes'] / 1e3:.1f} KB", flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for tol, marker in ((0.0, "o"), (1.0, "s"), (2.0, "^")):
        pts = sorted((p["bytes"] / 1e3, p["psnr"]) for p in ours if p["tolerance"] == tol)
        ax.plot(*zip(*pts), marker=marker, label=f"dhtgraph ({source}), tolerance {tol:g}")
    pts = sorted((p["bytes"] / 1e3, p["psnr"]) for p in theirs)
    ax.plot(*zip(*pts), marker="x", color="k", label="vtracer")
    ax.set_xscale("log")
    ax.set_xlabel("mean SVG size (KB)")
    ax.set_ylabel("mean PSNR (dB, resvg)")
    ax.set_title(f"Rate–distortion at {size}×{size} ({len(images)} images)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return dict(dht=ours, vtracer=theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--partition", choices=("dht", "felzenszwalb"), default="dht")
    parser.add_argument("--no-shared", action="store_true", help="skimage.data photos only")
    parser.add_argument("--tolerance", type=float, default=None)
    parser.add_argument("--rd-size", type=int, default=224, help="0 skips the RD sweep")
    args = parser.parse_args()
    torch.set_num_threads(2)
    svg_options = {} if args.tolerance is None else {"tolerance": args.tolerance}
    start = time.perf_counter()
    rows = run_table(args.sizes, args.repeats, args.partition, not args.no_shared, svg_options)
    summary = summarise(rows)
    payload = dict(partition=args.partition, svg_options=svg_options, repeats=args.repeats,
                   threads=2, rows=rows, summary=summary)
    if args.rd_size:
        png = RESULTS / f"vectorize_rd_{args.rd_size}_{args.partition}.png"
        RESULTS.mkdir(exist_ok=True)
        payload["rate_distortion"] = rate_distortion(args.rd_size, args.partition,
                                                     not args.no_shared, png)
        print(f"wrote {png}")
    path = write_json(f"vectorize_{args.partition}", payload)
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
