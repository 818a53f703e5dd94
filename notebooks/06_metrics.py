# %% [markdown]
# # Measuring tokenizations: superpixel metrics on images with exact ground truth
#
# `dhtgraph.datasets` draws seeded mosaics whose ground-truth segmentation is exact (the
# image is rendered from it), and `dhtgraph.metrics` computes the standard superpixel
# benchmark metrics (Stutz et al., 2018) per image, on label images or partitions. This
# notebook is `benchmarks/quality.py` in small: dhtgraph against SLIC and Felzenszwalb at
# matched token counts, on a few 128² mosaics.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage.segmentation import felzenszwalb, slic

import dhtgraph
from dhtgraph import metrics
from dhtgraph.datasets import generate_mosaics, generate_shapes
from dhtgraph.visualize import draw_boundaries

strengths = [dict(), dict(gradient=0.3), dict(blur=1.5), dict(noise=0.06), dict(texture=0.15)]
fig, axes = plt.subplots(2, 5, figsize=(15, 6))
for column, extra in enumerate(strengths):
    kind = "polygons" if column % 2 else "voronoi"
    m = generate_mosaics(1, kind=kind, size=128, seed=7, **extra)
    axes[0, column].imshow(m.images[0].permute(1, 2, 0))
    axes[0, column].set_title(f"{kind} {extra or 'clean'}", fontsize=9)
    axes[1, column].imshow(m.truth[0] % 20, cmap="tab20", interpolation="nearest")
    axes[1, column].set_title(f"truth: {int(metrics.num_tokens(m.truth)[0])} regions", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")

# %% [markdown]
# ## The metrics on one image
#
# Boundary recall (share of truth boundary pixels within 1 px of a token boundary; the
# default tolerance, round(0.0025·diagonal), is 0 px at 128², so the notebook sets 1 px as
# at 224²) and undersegmentation error (pixels leaking across truth regions) need the
# truth; explained variation, PSNR of the mean-colour image and compactness do not.
# SLIC's `n_segments` is only a request: `matched` adjusts it until the count is within
# 5 % (a few steps of count ∝ parameter^a); dhtgraph's budget is exact.

# %%
def matched(run, target, start, exponent, steps=5):
    best, param = None, start
    for _ in range(steps):
        labels = run(param)
        count = len(np.unique(labels))
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (labels, count)
        if abs(count - target) <= 0.05 * target:
            break
        param = param * (target / count) ** (1 / exponent)
    return torch.as_tensor(best[0])


mosaics = generate_mosaics(4, kind="voronoi", size=128, seed=3, gradient=0.2, blur=0.7, noise=0.03)
images = (mosaics.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
truth = mosaics.truth
image, k = images[0], 150
ours = dhtgraph.tokenize(image, max_tokens=k).labels()[0]
theirs = matched(lambda p: slic(image, n_segments=int(p), start_label=0), k, k, 1.0)


def report(name, seg):
    values = [float(metrics.boundary_recall(seg, truth[0], tolerance=1)[0]),
              float(metrics.undersegmentation_error(seg, truth[0])[0]),
              float(metrics.explained_variation(image, seg)[0]),
              float(metrics.compactness(seg)[0]), int(metrics.num_tokens(seg)[0])]
    print(f"{name:9s} recall {values[0]:.3f}  UE {values[1]:.4f}  EV {values[2]:.3f}  "
          f"compactness {values[3]:.3f}  tokens {values[4]}")


report("dhtgraph", ours)
report("SLIC", theirs)
x = torch.as_tensor(image).permute(2, 0, 1).float() / 255
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (title, seg) in zip(axes, [("truth", truth[0]), ("dhtgraph", ours), ("SLIC", theirs)]):
    ax.imshow(draw_boundaries(x, seg))
    ax.set_title(title)
    ax.axis("off")

# %% [markdown]
# ## A small count sweep
#
# Four mosaics, three counts, each method count-matched per image.

# %%
counts = [50, 100, 200]
methods = {
    "dhtgraph": lambda ims, k: dhtgraph.tokenize(ims, max_tokens=k).labels(),
    "SLIC": lambda ims, k: torch.stack([matched(lambda p: slic(im, n_segments=int(p), start_label=0),
                                                k, k, 1.0) for im in ims]),
    "Felzenszwalb": lambda ims, k: torch.stack([matched(lambda p: felzenszwalb(im, scale=p, min_size=5),
                                                        k, 12000 / k, -1.0) for im in ims]),
}
names = ["boundary_recall", "undersegmentation_error", "explained_variation", "compactness"]
results = {m: {n: [] for n in names + ["tokens"]} for m in methods}
for k in counts:
    for method, run in methods.items():
        seg = run(images, k)
        r = results[method]
        r["tokens"].append(float(metrics.num_tokens(seg).float().mean()))
        r["boundary_recall"].append(float(metrics.boundary_recall(seg, truth, tolerance=1).mean()))
        r["undersegmentation_error"].append(float(metrics.undersegmentation_error(seg, truth).mean()))
        r["explained_variation"].append(float(metrics.explained_variation(images, seg).mean()))
        r["compactness"].append(float(metrics.compactness(seg).mean()))
print("method        tokens   " + "  ".join(n[:12] for n in names))
for method, r in results.items():
    for i in range(len(counts)):
        print(f"{method:12s} {r['tokens'][i]:7.1f}   " + "  ".join(f"{r[n][i]:12.4f}" for n in names))
fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
for ax, name in zip(axes, names):
    for method, r in results.items():
        ax.plot(r["tokens"], r[name], marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("tokens per image")
    ax.set_title(name.replace("_", " "))
axes[0].legend()

# %% [markdown]
# ## The labelled shapes set
#
# For training studies: one shape per image (six classes that differ in outline only),
# random contrast, shading, distractor blobs and noise; a class per image and a mask per
# pixel.

# %%
shapes = generate_shapes(8, size=64, seed=0)
fig, axes = plt.subplots(2, 8, figsize=(16, 4))
for i in range(8):
    axes[0, i].imshow(shapes.images[i].permute(1, 2, 0))
    axes[0, i].set_title(dhtgraph.datasets.SHAPE_CLASSES[int(shapes.labels[i])], fontsize=9)
    axes[1, i].imshow(shapes.masks[i], vmin=0, vmax=6, interpolation="nearest")
for ax in axes.ravel():
    ax.axis("off")
