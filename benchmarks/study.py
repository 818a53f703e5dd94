"""Does it help? A seeded training study of dHT tokens against patch tokens (issue 14 §1).

What the script does, exactly:

* Data (fixed, seed 0; the study seeds vary only the model's initialisation and the batch
  order):
  - ``shapes``: :func:`dhtgraph.datasets.generate_shapes` at ``image_size``² (6 classes;
    mask = class + 1 on the shape, 0 background).
  - ``textured``: built here from :mod:`dhtgraph.datasets` pieces (the library has no such
    set): the same shapes' labels and masks, the background replaced by a textured Voronoi
    mosaic (``generate_mosaics(kind='voronoi', regions=(6, 16), texture=0.25)``), the shape
    filled with the complement of the background's mean colour plus a grating of its own
    (a one-region ``generate_mosaics(kind='polygons', texture=0.3)``), then seeded
    Gaussian noise σ = 0.04. Texture and region borders cut through square patches.
  - ``train`` images 0..N−1 (N = 6144), ``test`` images N..N+M−1 (M = 1024) of the
    same seeded set.
* Token sources, all at the same budget of ``(image_size / patch_size)²`` tokens per image
  (the patch grid's count) and all through the same region features
  (``DHTViT.region_features``, P×P resampling + positional histogram):
  - ``grid``: :func:`dhtgraph.grid_partition` (the plain ViT's patches);
  - ``dht``: :func:`dhtgraph.tokenize` (recommended encoder-free config) with
    ``max_tokens`` = budget, computed once per image and cached (in memory, and on disk
    under ``--cache`` as safetensors);
  - ``dht_e2e``: no partition: the model tokenizes every batch with its own learnable
    tokenizer (``model.tokenizer``, the default learned encoder, trained from scratch with
    the rest; gradients reach it);
  - ``slic``: ``skimage.segmentation.slic`` (compactness 10, enforce_connectivity); per
    image the largest count ≤ budget found in ≤ 6 tries of ``n_segments`` (count ∝
    request); cached likewise.
* Model: ``DHTViT`` (ViT-Ti-like: ``embed_dim``, ``depth``, ``num_heads`` below, class
  token, learned position table), ``graph_bias`` on or off (the learned hop-distance
  attention bias), ``dense=True`` for segmentation (per-token logits broadcast to pixels).
  Images are ImageNet-normalised for the model; the cached tokenizers see [0, 1] images.
* Training: AdamW (lr, weight decay 0.05, no decay on norms/biases/tables), linear warm-up
  10 % then cosine, ``steps`` steps of ``batch`` images (a fresh seeded permutation per
  epoch), cross-entropy (classification: 6 classes; segmentation: 7 labels per pixel).
  The test metric (top-1, or mIoU over the 7 labels from the summed confusion matrix) is
  measured every ``eval_every`` steps and at the end on the whole test split.
* Design (``design='reduced'``, the default; see :func:`in_design`): the full product
  (2 sets × 2 tasks × 4 sources × graph bias on/off = 32 cells × 3 seeds = 96 runs) does
  not fit 60 min at a step count where anything learns, so 15 cells × 3 seeds = 45 runs:
  grid / dht / slic without graph bias on both sets and both tasks (12 cells); graph bias
  on for grid and dht, and dht end to end, on ``shapes`` segmentation only (3 cells).
  ``--design full`` runs everything (≈ 2.5 h here).
* Model input (``input_norm='image'``): each image minus its per-channel mean, divided by
  its std; with ImageNet normalisation neither this ViT nor a small CNN left chance top-1
  within 300 steps (the shapes' colour is a random offset from a random background).
* Every (dataset, task, source, graph_bias, seed) is one run; runs go seed by seed, so a
  stopped study has complete seeds. Results are appended to ``OUT/study.json`` after each
  run (``--resume`` skips the runs already there); at the end (or with ``--report``) the
  script writes ``OUT/study.md`` (table of mean ± std over seeds, ms per training step,
  mean tokens per image) and ``OUT/study_curves.png`` / ``OUT/study_loss.png``.

Run: ``python benchmarks/study.py --threads 1`` (45 runs, 3 seeds, ≈ 30 min of one idle
core); ``--quick`` (one seed, few steps, small sets, < 1 min). On a busy machine the seeds
can run in parallel and be merged (what produced benchmarks/results/study/)::

    for s in 0 1 2; do python benchmarks/study.py --threads 1 --seeds $s \
        --out benchmarks/results/study_seed$s --cache benchmarks/results/study/cache & done; wait
    python benchmarks/study.py --report --merge benchmarks/results/study_seed{0,1,2}
"""

from __future__ import annotations

import os  # noqa: E402
import sys  # noqa: E402

# benchmarks/tokenize.py would shadow the standard library's tokenize module (imported by
# inspect/linecache) when this script runs as ``python benchmarks/study.py``.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dhtgraph  # noqa: E402
from dhtgraph import DHTViT, grid_partition  # noqa: E402
from dhtgraph.datasets import generate_mosaics, generate_shapes  # noqa: E402
from dhtgraph.training import confusion_matrix, cosine_schedule, mean_iou, tokens_to_partition  # noqa: E402
from dhtgraph.training.loop import normalize_images  # noqa: E402

DATASETS = ("shapes", "textured")
SOURCES = ("grid", "dht", "dht_e2e", "slic")
TASKS = ("classification", "segmentation")
NUM_SHAPE_CLASSES = 6
RESULTS = Path(__file__).resolve().parent / "results"
#: ``generate_shapes`` options of the study (None: the library's defaults).
SHAPE_OPTIONS: dict = {}


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the study; the defaults are the full study (fits 60 min on 2 idle cores)."""

    image_size: int = 32          # 32²: shapes are still resolved (datasets/shapes.py)
    patch_size: int = 4           # 8×8 = 64 tokens per image, the budget of every source
    embed_dim: int = 64           # ViT-Ti layout, narrowed: ~210k parameters at depth 4
    depth: int = 4
    num_heads: int = 2
    # Session-2 probes (notes): at 1.5k images the model memorises (train loss 1.57, test at
    # chance); generated images are free, so 4× more; 1024 test images: top-1 noise ±0.012.
    train_images: int = 6144
    test_images: int = 1024
    steps: int = 250              # ~30 s CPU per run (grid, one core); sized to 60 min
    batch: int = 32
    lr: float = 2e-3              # from-scratch small ViT; warm-up 10 %, cosine to 0
    weight_decay: float = 0.05
    eval_every: int = 100
    # 'image': per image, per channel mean removed, divided by the image's std (all
    # channels). The shapes differ from their random background by a random colour
    # direction; with ImageNet normalisation neither this ViT nor a small CNN left chance
    # top-1 in 300 steps (probes in the notes); with it both do. 'imagenet': the old input.
    input_norm: str = "image"
    # 'reduced': the cells of :func:`in_design` (fits 60 min); 'full': every
    # dataset × task × source × graph bias (≈ 2.5 h here, estimated).
    design: str = "reduced"
    seeds: tuple = (0, 1, 2)
    datasets: tuple = DATASETS
    tasks: tuple = TASKS
    sources: tuple = SOURCES
    graph_bias: tuple = (False, True)

    @property
    def budget(self) -> int:
        return (self.image_size // self.patch_size) ** 2


QUICK = dict(train_images=192, test_images=64, steps=16, batch=16, eval_every=8, seeds=(0,))
INPUT_NORMS = ("image", "imagenet")
DESIGNS = ("reduced", "full")
#: Eps of the per-image std (inputs in [0, 1]): a flat image is centred, not blown up.
_STD_EPS = 1e-2


def model_input(images: torch.Tensor, how: str) -> torch.Tensor:
    """What the model sees: ``images`` (B, 3, H, W) in [0, 1] normalised per ``how``."""
    if how == "image":
        return (images - images.mean((2, 3), keepdim=True)) / \
            images.std((1, 2, 3), keepdim=True).clamp_min(_STD_EPS)
    if how == "imagenet":
        return normalize_images(images, "imagenet")
    raise ValueError(f"Expected input_norm one of {INPUT_NORMS} (got {how!r})")


def in_design(config: "StudyConfig", dataset: str, task: str, source: str, graph_bias: bool) -> bool:
    """Whether a cell is run. ``'reduced'`` (15 cells, fits 60 min): grid, dht and slic
    without graph bias on both sets and tasks (12); on ``shapes`` segmentation only (the
    task that learns most within the budget), the graph bias on for grid and dht (2) and
    dht end to end without graph bias (1; ≈ 2× a step); ``'full'``: all 32 cells."""
    if config.design == "full":
        return True
    if config.design != "reduced":
        raise ValueError(f"Expected design one of {DESIGNS} (got {config.design!r})")
    focus = dataset == "shapes" and task == "segmentation"
    if source == "dht_e2e":
        return focus and not graph_bias
    if graph_bias:
        return focus and source in ("grid", "dht")
    return True


# --------------------------------------------------------------------------- data
def make_dataset(name: str, num_images: int, size: int, *, start: int = 0, seed: int = 0) -> dict:
    """``{'images' (N,3,H,W) in [0,1], 'labels' (N,), 'masks' (N,H,W)}`` of a study set."""
    if name not in DATASETS:
        raise ValueError(f"Expected dataset one of {DATASETS} (got {name!r})")
    shapes = generate_shapes(num_images, size=size, seed=seed, start=start, **SHAPE_OPTIONS)
    images = shapes.images
    if name == "textured":
        background = generate_mosaics(num_images, kind="voronoi", size=size, regions=(6, 16),
                                      texture=0.25, seed=seed + 1, start=start).images
        grating = generate_mosaics(num_images, kind="polygons", size=size, regions=(1, 1),
                                   texture=0.3, seed=seed + 2, start=start).images
        grating = grating - grating.mean((2, 3), keepdim=True)
        fill = 1.0 - background.mean((2, 3), keepdim=True) + grating
        inside = (shapes.masks > 0).unsqueeze(1)
        images = torch.where(inside, fill, background)
        noise = torch.stack([torch.randn(3, size, size,
                                         generator=torch.Generator().manual_seed(
                                             1_000_003 * (seed + 7) + start + i))
                             for i in range(num_images)])
        images = (images + 0.04 * noise).clamp(0, 1)
    return {"images": images.contiguous(), "labels": shapes.labels, "masks": shapes.masks}


def _relabel(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def slic_labels(images: torch.Tensor, budget: int, attempts: int = 6) -> torch.Tensor:
    """SLIC label maps (N, H, W): per image, the segmentation with the most segments that
    does not exceed ``budget``, searched over ``n_segments`` (SLIC's count is only a
    request; it usually returns fewer)."""
    from skimage.segmentation import slic

    out = []
    for image in images.permute(0, 2, 3, 1).double().numpy():
        best, request = None, budget
        for _ in range(attempts):
            seg = _relabel(slic(image, n_segments=request, compactness=10, start_label=0,
                                channel_axis=-1, enforce_connectivity=True))
            count = int(seg.max()) + 1
            if count <= budget and (best is None or count > best[1]):
                best = (seg, count)
            if count == budget:
                break
            new = max(1, round(request * budget / count)) if count <= budget else \
                max(1, min(request - 1, round(request * budget / count)))
            if new == request:
                break
            request = new
        if best is None:  # every try exceeded the budget
            raise RuntimeError(f"SLIC found no segmentation with at most {budget} segments")
        out.append(torch.from_numpy(best[0].astype(np.int32)))
    return torch.stack(out)


def dht_labels(images: torch.Tensor, budget: int, chunk: int = 64) -> torch.Tensor:
    """:func:`dhtgraph.tokenize` label maps (N, H, W) at ``max_tokens=budget``."""
    return torch.cat([dhtgraph.tokenize(images[i:i + chunk], max_tokens=budget).labels().to(torch.int32)
                      for i in range(0, images.shape[0], chunk)])


class TokenCache:
    """Pre-computed label maps per (dataset, split, source), in memory and on disk."""

    def __init__(self, folder: Optional[Path]):
        self.folder, self.memory = folder, {}

    def get(self, key: str, images: torch.Tensor, source: str, budget: int) -> torch.Tensor:
        if key in self.memory:
            return self.memory[key]
        path = None if self.folder is None else self.folder / f"{key}.safetensors"
        labels = None
        if path is not None and path.exists():
            from safetensors.torch import load_file

            labels = load_file(str(path))["labels"]
            if labels.shape != (images.shape[0], *images.shape[-2:]):
                labels = None
        if labels is None:
            labels = (dht_labels if source == "dht" else slic_labels)(images, budget)
            if path is not None:
                from safetensors.torch import save_file

                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({"labels": labels.contiguous()}, str(path))
        self.memory[key] = labels
        return labels


# --------------------------------------------------------------------------- runs
def build_model(config: StudyConfig, task: str, graph_bias: bool) -> DHTViT:
    classes = NUM_SHAPE_CLASSES + (1 if task == "segmentation" else 0)
    return DHTViT(img_size=config.image_size, patch_size=config.patch_size,
                  embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
                  num_classes=classes, graph_bias=graph_bias, dense=task == "segmentation")


def _param_groups(model, weight_decay):
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if p.ndim <= 1 or name.endswith(("pos_embed", "cls_token", "hop_bias")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _forward(model, images, labels: Optional[torch.Tensor], source: str, patch: int,
             norm: str = "image"):
    x = model_input(images, norm)
    if source == "dht_e2e":
        return model(x)
    if source == "grid":
        b, _, h, w = images.shape
        return model(x, grid_partition(b, h, w, patch))
    return model(x, tokens_to_partition(labels))


@torch.no_grad()
def evaluate(model, data: dict, tokens, source: str, task: str, patch: int, batch: int,
             norm: str = "image") -> float:
    model.eval()
    n = data["images"].shape[0]
    correct, confusion = 0, torch.zeros(7, 7, dtype=torch.long)
    for i in range(0, n, batch):
        out = _forward(model, data["images"][i:i + batch],
                       None if tokens is None else tokens[i:i + batch], source, patch, norm)
        if task == "classification":
            correct += int((out.logits.argmax(1) == data["labels"][i:i + batch]).sum())
        else:
            confusion += confusion_matrix(out.dense_logits.argmax(1), data["masks"][i:i + batch],
                                          7, 255)
    model.train()
    return correct / n if task == "classification" else mean_iou(confusion)[0]


def train_run(config: StudyConfig, train: dict, test: dict, train_tokens, test_tokens,
              source: str, task: str, graph_bias: bool, seed: int) -> dict:
    """Train one model from scratch; return its curve, final metric and step times."""
    torch.manual_seed(seed)
    model = build_model(config, task, graph_bias)
    params = sum(p.numel() for n, p in model.named_parameters()
                 if source == "dht_e2e" or not n.startswith("tokenizer."))
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)
    schedule = cosine_schedule(optimizer, config.steps, 0.1)
    g = torch.Generator().manual_seed(seed)
    n = train["images"].shape[0]
    order, cursor = torch.randperm(n, generator=g), 0
    target_key = "labels" if task == "classification" else "masks"
    losses, curve, step_times, tokens_seen = [], [], [], []
    model.train()
    for step in range(config.steps):
        if cursor + config.batch > n:
            order, cursor = torch.randperm(n, generator=g), 0
        idx = order[cursor:cursor + config.batch]
        cursor += config.batch
        start = time.perf_counter()
        out = _forward(model, train["images"][idx], None if train_tokens is None else train_tokens[idx],
                       source, config.patch_size, config.input_norm)
        loss = model.loss(out, train[target_key][idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step_times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
        tokens_seen.append(float(out.num_tokens.float().mean()))
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            curve.append([step + 1, evaluate(model, test, test_tokens, source, task,
                                             config.patch_size, 64, config.input_norm)])
    return {"final": curve[-1][1], "curve": curve, "loss": losses, "params": params,
            "ms_per_step": 1000 * statistics.median(step_times),
            "tokens_per_image": statistics.fmean(tokens_seen)}


def run_key(dataset, task, source, graph_bias, seed) -> str:
    return f"{dataset}/{task}/{source}/{'bias' if graph_bias else 'nobias'}/{seed}"


def prepare(config: StudyConfig, cache: TokenCache) -> dict:
    """Data and pre-computed tokens of every dataset used: ``{dataset: {...}}``."""
    prepared = {}
    for name in config.datasets:
        train = make_dataset(name, config.train_images, config.image_size)
        test = make_dataset(name, config.test_images, config.image_size, start=config.train_images)
        tokens, seconds = {}, {}
        for source in config.sources:
            if source in ("dht", "slic"):
                t0 = time.perf_counter()
                size = f"{config.image_size}px-{config.budget}"
                tokens[source] = (
                    cache.get(f"{name}-train{config.train_images}-{source}-{size}", train["images"],
                              source, config.budget),
                    cache.get(f"{name}-test{config.train_images}+{config.test_images}-{source}-{size}",
                              test["images"], source, config.budget))
                seconds[source] = time.perf_counter() - t0
            else:
                tokens[source] = (None, None)
        prepared[name] = {"train": train, "test": test, "tokens": tokens, "token_seconds": seconds}
    return prepared


def run_study(config: StudyConfig, out: Optional[Path] = None, *, resume: bool = False,
              cache: Optional[Path] = None, log=print) -> dict:
    """Run every (dataset, task, source, graph_bias) for every seed; return the results dict."""
    path = None if out is None else out / "study.json"
    results = {"config": {**asdict(config), "budget": config.budget}, "runs": {}, "token_seconds": {}}
    if resume and path is not None and path.exists():
        old = json.loads(path.read_text())
        if old.get("config") == results["config"]:
            results["runs"] = old["runs"]
        else:
            log("config changed: not resuming")
    prepared = prepare(config, TokenCache(cache))
    for name, p in prepared.items():
        results["token_seconds"][name] = p["token_seconds"]
    started = time.perf_counter()
    for seed in config.seeds:
        for name in config.datasets:
            p = prepared[name]
            for task in config.tasks:
                for source in config.sources:
                    for bias in config.graph_bias:
                        key = run_key(name, task, source, bias, seed)
                        if key in results["runs"] or not in_design(config, name, task, source, bias):
                            continue
                        t0 = time.perf_counter()
                        train_tokens, test_tokens = p["tokens"][source]
                        run = train_run(config, p["train"], p["test"], train_tokens, test_tokens,
                                        source, task, bias, seed)
                        run["seconds"] = time.perf_counter() - t0
                        results["runs"][key] = run
                        log(f"{key:45s} {run['final']:.3f}  {run['ms_per_step']:.0f} ms/step  "
                            f"{run['tokens_per_image']:.1f} tok  ({run['seconds']:.0f} s, "
                            f"total {time.perf_counter() - started:.0f} s)")
                        if path is not None:
                            path.parent.mkdir(parents=True, exist_ok=True)
                            path.write_text(json.dumps(results))
    return results


def merge_results(parts: list[dict], out: Optional[Path] = None) -> dict:
    """One results dict from studies that differ only in their seeds (e.g. ``--seeds 0``,
    ``--seeds 1``, ... run in parallel); written to ``OUT/study.json`` when ``out`` is given."""
    if not parts:
        raise ValueError("Expected at least one study to merge (got none)")
    strip = lambda c: {k: v for k, v in c.items() if k != "seeds"}  # noqa: E731
    for part in parts[1:]:
        if strip(part["config"]) != strip(parts[0]["config"]):
            raise ValueError("Expected the merged studies to differ only in 'seeds' "
                             "(their configs differ in other fields)")
    runs = {k: v for part in parts for k, v in part["runs"].items()}
    seeds = sorted({s for part in parts for s in part["config"]["seeds"]})
    merged = {"config": {**parts[0]["config"], "seeds": seeds}, "runs": runs,
              "token_seconds": parts[0]["token_seconds"]}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "study.json").write_text(json.dumps(merged))
    return merged


# --------------------------------------------------------------------------- report
def summarise(results: dict) -> list[dict]:
    """One row per (dataset, task, source, graph_bias): mean ± std over the seeds run."""
    groups: dict = {}
    for key, run in results["runs"].items():
        dataset, task, source, bias, seed = key.split("/")
        groups.setdefault((dataset, task, source, bias), []).append(run)
    rows = []
    for (dataset, task, source, bias), runs in sorted(groups.items(), key=lambda kv: (
            DATASETS.index(kv[0][0]), TASKS.index(kv[0][1]), SOURCES.index(kv[0][2]), kv[0][3])):
        finals = [r["final"] for r in runs]
        rows.append({"dataset": dataset, "task": task, "source": source, "graph_bias": bias == "bias",
                     "seeds": len(runs), "mean": statistics.fmean(finals),
                     "std": statistics.stdev(finals) if len(finals) > 1 else float("nan"),
                     "ms_per_step": statistics.median(r["ms_per_step"] for r in runs),
                     "tokens": statistics.fmean(r["tokens_per_image"] for r in runs),
                     "params": runs[0]["params"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| dataset | task | tokens | graph bias | seeds | test metric (mean ± std) | "
             "ms/step | tokens/image | params |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        metric = "top-1" if r["task"] == "classification" else "mIoU"
        std = "" if math.isnan(r["std"]) else f" ± {r['std']:.3f}"
        lines.append(f"| {r['dataset']} | {r['task']} | {r['source']} | {'on' if r['graph_bias'] else 'off'} "
                     f"| {r['seeds']} | {metric} {r['mean']:.3f}{std} | {r['ms_per_step']:.0f} "
                     f"| {r['tokens']:.1f} | {r['params']:,} |")
    return "\n".join(lines)


def bias_cost(rows: list[dict]) -> dict:
    """Median step time with graph bias over without, per source (same run, same sizes)."""
    ratio = {}
    for source in SOURCES:
        on = [r["ms_per_step"] for r in rows if r["source"] == source and r["graph_bias"]]
        off = [r["ms_per_step"] for r in rows if r["source"] == source and not r["graph_bias"]]
        if on and off:
            ratio[source] = statistics.median(on) / statistics.median(off)
    return ratio


def plot_curves(results: dict, path: Path, *, what: str = "curve"):
    """Learning curves: test metric (``what='curve'``) or smoothed training loss ('loss')
    per (dataset, task), one line per source × graph bias, mean over seeds ± std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({tuple(k.split("/")[:2]) for k in results["runs"]},
                    key=lambda p: (DATASETS.index(p[0]), TASKS.index(p[1])))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.4),
                             squeeze=False)
    colours = dict(zip(SOURCES, ("tab:gray", "tab:blue", "tab:green", "tab:orange")))
    for ax, (dataset, task) in zip(axes[0], panels):
        for source in SOURCES:
            for bias in ("nobias", "bias"):
                runs = [r for k, r in results["runs"].items()
                        if k.startswith(f"{dataset}/{task}/{source}/{bias}/")]
                if not runs:
                    continue
                if what == "curve":
                    steps = np.array([s for s, _ in runs[0]["curve"]])
                    values = np.array([[v for _, v in r["curve"]] for r in runs])
                else:
                    width = max(1, len(runs[0]["loss"]) // 20)
                    kernel = np.ones(width) / width
                    values = np.array([np.convolve(r["loss"], kernel, mode="valid") for r in runs])
                    steps = np.arange(values.shape[1]) + width
                mean, std = values.mean(0), values.std(0)
                style = "-" if bias == "bias" else "--"
                ax.plot(steps, mean, style, color=colours[source],
                        label=f"{source} {'bias' if bias == 'bias' else 'no bias'}")
                if len(runs) > 1:
                    ax.fill_between(steps, mean - std, mean + std, color=colours[source], alpha=0.12)
        ax.set_title(f"{dataset} / {task}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(("top-1" if task == "classification" else "mIoU") if what == "curve"
                      else "training loss")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(results: dict, out: Path) -> str:
    rows = summarise(results)
    text = table(rows)
    ratios = bias_cost(rows)
    text += "\n\nGraph-bias cost (median ms/step on / off): " + ", ".join(
        f"{s} {r:.2f}×" for s, r in ratios.items())
    text += "\nTokenization before training (s, train+test): " + json.dumps(
        {k: {s: round(v, 1) for s, v in d.items()} for k, d in results["token_seconds"].items()})
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.md").write_text(text + "\n")
    summary = {"rows": rows, "graph_bias_cost": ratios}
    (out / "study_summary.json").write_text(json.dumps(summary, indent=1))
    plot_curves(results, out / "study_curves.png", what="curve")
    plot_curves(results, out / "study_loss.png", what="loss")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, few steps, small sets")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default benchmarks/results/study[_quick])")
    parser.add_argument("--cache", type=Path, default=None,
                        help="token cache folder (default OUT/cache)")
    parser.add_argument("--resume", action="store_true", help="skip runs already in OUT/study.json")
    parser.add_argument("--report", action="store_true", help="only write the report of OUT/study.json")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="DIR",
                        help="with --report: first merge the runs of DIR/study.json (e.g. one "
                             "folder per seed, run in parallel) into OUT/study.json")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--tasks", nargs="+", choices=TASKS)
    parser.add_argument("--sources", nargs="+", choices=SOURCES)
    parser.add_argument("--graph-bias", nargs="+", choices=("off", "on"))
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--design", choices=DESIGNS,
                        help="'reduced' (default: the cells of in_design) or 'full' (every cell)")
    parser.add_argument("--input-norm", choices=INPUT_NORMS, help="model input (default 'image')")
    args = parser.parse_args(argv)
    config = StudyConfig(**(QUICK if args.quick else {}))
    overrides = {k: tuple(v) for k, v in (("datasets", args.datasets), ("tasks", args.tasks),
                                           ("sources", args.sources), ("seeds", args.seeds)) if v}
    if args.graph_bias:
        overrides["graph_bias"] = tuple(v == "on" for v in args.graph_bias)
    if args.steps:
        overrides["steps"] = args.steps
    if args.design:
        overrides["design"] = args.design
    if args.input_norm:
        overrides["input_norm"] = args.input_norm
    config = replace(config, **overrides)
    out = args.out or RESULTS / ("study_quick" if args.quick else "study")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.report:
        if args.merge:
            merge_results([json.loads((d / "study.json").read_text()) for d in args.merge], out)
        results = json.loads((out / "study.json").read_text())
    else:
        results = run_study(config, out, resume=args.resume, cache=args.cache or out / "cache",
                            log=lambda text: print(text, flush=True))
    print(report(results, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
