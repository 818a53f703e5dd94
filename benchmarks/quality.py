"""Explained variation at ≈400 tokens: dhtgraph vs Felzenszwalb and SLIC (issue 3 §3).

On the eight shared 224×224 reference inputs (``../shared/data/dht-reference/*.npz``),
compares ``dhtgraph.tokenize(image, max_tokens=400)``, the official dHT weights through
``DHTTokenizer.from_dht_checkpoint`` with the same budget, and scikit-image's
Felzenszwalb and SLIC with their parameter bisected per image to the dhtgraph token
count (±3 %). EV = Σ_p ‖μ_S(p) − μ‖² / Σ_p ‖x_p − μ‖² on RGB in [0, 1]. Prints a table and
writes ``benchmarks/results/quality.json``.

Run: ``python benchmarks/quality.py [--tokens 400]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py shares its name with the standard library's ``tokenize``: keep
# this folder off the import path until the standard library has loaded it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse

import numpy as np
import torch

sys.path.append(str(_HERE))
from _common import write_json  # noqa: E402

import dhtgraph  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def ev(image: np.ndarray, labels: np.ndarray) -> float:
    partition = dhtgraph.Partition.from_labels(torch.as_tensor(labels.astype(np.int64)).reshape(-1))
    return float(dhtgraph.explained_variation(image, partition))


def bisect_count(run, target: int, lo: float, hi: float, increasing: bool, steps: int = 14):
    """Find a parameter whose region count is within 3 % of ``target`` (log bisection)."""
    best = None
    for _ in range(steps):
        mid = float(np.sqrt(lo * hi))
        labels = run(mid)
        count = int(labels.max()) + 1
        if best is None or abs(count - target) < abs(best[0] - target):
            best = (count, labels)
        if abs(count - target) <= 0.03 * target:
            break
        too_many = count > target
        if too_many == increasing:
            hi = mid
        else:
            lo = mid
    return best


def main() -> None:
    from skimage.segmentation import felzenszwalb, slic

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(2)
    files = sorted((SHARED / "dht-reference").glob("*.npz"))
    if not files:
        sys.exit(f"no reference inputs under {SHARED / 'dht-reference'} (the project's test data)")
    official = None
    checkpoint = SHARED / "dht-r2v" / "r2v.pth"
    if checkpoint.exists():
        official = dhtgraph.DHTTokenizer.from_dht_checkpoint(checkpoint)
    rows = []
    for path in files:
        image = np.load(path)["input"]
        tokens = dhtgraph.tokenize(image, max_tokens=args.tokens)
        k = int(tokens.num_tokens[0])
        row = {"image": path.stem, "tokens": k, "dhtgraph": float(dhtgraph.explained_variation(image, tokens.partition))}
        if official is not None:
            x = torch.as_tensor(image).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                out = official(dhtgraph.imagenet_normalize(x), max_tokens=args.tokens)
            row["official_weights"] = float(dhtgraph.explained_variation(image, out.partition))
            row["official_tokens"] = int(out.num_tokens[0])
        fz_count, fz = bisect_count(lambda s: felzenszwalb(image, scale=s, sigma=0.5, min_size=5),
                                    k, 1.0, 5000.0, increasing=False)
        sl_count, sl = bisect_count(lambda n: slic(image, n_segments=int(n), start_label=0),
                                    k, k / 2, 4 * k, increasing=True)
        row.update(felzenszwalb=ev(image, fz), felzenszwalb_regions=fz_count,
                   slic=ev(image, sl), slic_regions=sl_count)
        rows.append(row)
        print(f"{path.stem:10s} dhtgraph {row['dhtgraph']:.4f} ({k})"
              + (f" | official weights {row['official_weights']:.4f} ({row['official_tokens']})" if official else "")
              + f" | felzenszwalb {row['felzenszwalb']:.4f} ({fz_count}) | slic {row['slic']:.4f} ({sl_count})",
              flush=True)
    keys = ["dhtgraph", "felzenszwalb", "slic"] + (["official_weights"] if official else [])
    mean = {key: float(np.mean([r[key] for r in rows])) for key in keys}
    print("mean EV: " + ", ".join(f"{key} {value:.4f}" for key, value in mean.items()))
    print("written", write_json("quality", {"tokens": args.tokens, "rows": rows, "mean": mean}))


if __name__ == "__main__":
    main()
