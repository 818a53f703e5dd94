# %% [markdown]
# # Does it help? dHT tokens against patch tokens in a small ViT trained from scratch
#
# `benchmarks/study.py` trains the same small `DHTViT` (ViT-Ti layout, ~210k parameters,
# 32² images, 64 tokens per image) from scratch on two seeded sets, with four token
# sources at the same budget — square patches (`grid_partition`), dHT tokens from
# `tokenize` (cached), dHT end to end (the model's own learnable tokenizer) and SLIC —
# with the graph-aware attention bias on and off, for classification (top-1) and
# segmentation (mIoU through the dense head). The full study (3 seeds, 250 steps,
# 6144 training images, per-image normalised inputs, 15 of the 32 cells — see the
# script's docstring) is `python benchmarks/study.py`; this notebook runs a reduced version (one seed, a few
# steps, small sets: its numbers show the pipeline works, not which source is better)
# and shows the full study's table and curves when `benchmarks/results/study/` holds them.

# %%
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch

ROOT = Path.cwd() if (Path.cwd() / "benchmarks").exists() else Path.cwd().parent
sys.path.append(str(ROOT / "benchmarks"))  # appended: benchmarks/tokenize.py must not shadow stdlib
import study  # noqa: E402

torch.set_num_threads(1)

# %% [markdown]
# ## The two sets and the four token sources
#
# `shapes` is `dhtgraph.datasets.generate_shapes` (six outline classes on a shaded
# background with distractor blobs). `textured` keeps the same shapes and masks but puts
# them on a textured Voronoi mosaic and fills them with a grating of their own, so region
# and texture borders cut through square patches. Every source gets at most 64 tokens.

# %%
budget, size = 64, 32
fig, axes = plt.subplots(2, 5, figsize=(13, 5.4))
for row, name in enumerate(study.DATASETS):
    data = study.make_dataset(name, 1, size, start=3)
    image = data["images"]
    maps = {"grid": (torch.arange(size)[:, None] // 4) * 8 + torch.arange(size)[None] // 4,
            "dht": study.dht_labels(image, budget)[0],
            "slic": study.slic_labels(image, budget)[0]}
    axes[row, 0].imshow(image[0].permute(1, 2, 0))
    axes[row, 0].set_title(f"{name}: class {int(data['labels'][0])}", fontsize=9)
    axes[row, 1].imshow(data["masks"][0], cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[row, 1].set_title("mask", fontsize=9)
    for column, (source, labels) in enumerate(maps.items(), start=2):
        axes[row, column].imshow(labels % 20, cmap="tab20", interpolation="nearest")
        axes[row, column].set_title(f"{source}: {int(labels.max()) + 1} tokens", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")

# %% [markdown]
# ## The reduced study
#
# `study.QUICK` sizes (one seed, 192 training / 64 test images, 16 steps of 16 images) on
# the shapes set: every source without graph bias, and grid / dHT with it (`design='full'`:
# every cell of this small grid). The same functions run the full study.

# %%
quick = replace(study.StudyConfig(**study.QUICK), datasets=("shapes",), steps=12, design="full")
results = study.run_study(replace(quick, graph_bias=(False,)), None, log=print)
with_bias = study.run_study(replace(quick, graph_bias=(True,), sources=("grid", "dht")), None, log=print)
results["runs"].update(with_bias["runs"])
rows = study.summarise(results)
print(study.table(rows))
print("graph-bias cost (ms/step on / off):",
      {s: round(r, 2) for s, r in study.bias_cost(rows).items()})

# %% [markdown]
# ## The full study (if it has been run here)
#
# `python benchmarks/study.py` writes `benchmarks/results/study/study.json` run by run
# (seed by seed; `--resume` continues a stopped study). Its table is the mean ± std over
# the seeds that finished; the curves are the test metric every 100 steps, mean over seeds
# with a ±1 std band (dashed: no graph bias).

# %%
full = ROOT / "benchmarks" / "results" / "study" / "study.json"
if full.exists():
    done = json.loads(full.read_text())
    print(f"{len(done['runs'])} runs finished")
    print(study.table(study.summarise(done)))
    picture = Path(tempfile.mkdtemp()) / "curves.png"
    study.plot_curves(done, picture)
    plt.figure(figsize=(14, 3.6))
    plt.imshow(plt.imread(picture))
    plt.axis("off")
else:
    print("no full study results here: run `python benchmarks/study.py`")
