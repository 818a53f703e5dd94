"""Model benchmark: DHTViT with grid tokens, with dHT tokens, and as a plain ViT.

For ViT-Ti/16- and ViT-S/16-sized configs at 224×224 (1000 classes, graph bias on, the
tokenizer's default learned encoder), in one process:

- ``plain``: the same model's weights run as a plain ViT (conv patch embedding + position
  table, then the blocks; no region features, no graph bias) — the timm computation;
- ``grid``: ``model(x, grid_partition(...))`` — region features of the 196 square patches,
  the linear region embedding, the hop-distance bias, the blocks;
- ``dht``: ``model(x)`` — the built-in dHT tokenizer with ``max_tokens = 196`` (equal
  token count), then as ``grid``.

Inputs are four skimage photographs (astronaut, coffee, chelsea, rocket) resized to 224²
and ImageNet-normalised, repeated to ``--batch``. Times are medians over ``--reps`` runs
(after one warm-up), per image, of wall time or, with ``--clock cpu``, of process CPU time
(steadier on a shared machine; use it with ``--threads 1``, where no thread spins):
forward in eval mode under ``no_grad``, and forward + backward of a cross-entropy loss in
train mode. For the dHT forward the time is also split into tokenization (the
tokenizer call), features (region descriptors, embedding, packing and hop distances) and
transformer (blocks and head), each timed separately in the same run. Parameter counts
are printed per part. Results also go to benchmarks/results/model.json.

    python benchmarks/model.py                 # both sizes, batch 4, 3 reps, wall clock
    python benchmarks/model.py --models s --batch 8 --reps 5
    python benchmarks/model.py --threads 1 --clock cpu   # on a busy machine
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/tokenize.py would shadow the standard library's ``tokenize``: look here last.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _common import median_time, write_json  # noqa: E402

from dhtgraph import DHTViT, grid_partition  # noqa: E402
from dhtgraph.nn.attention import bias_index  # noqa: E402

SIZES = {
    "ti": dict(embed_dim=192, depth=12, num_heads=3),
    "s": dict(embed_dim=384, depth=12, num_heads=6),
}
IMAGE = 224
PATCH = 16
TOKENS = (IMAGE // PATCH) ** 2


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _median_time(fn, reps: int) -> float:
    """Median over ``reps`` runs after one warm-up, on the clock chosen by ``--clock``."""
    return median_time(fn, reps, clock=_clock)


def photographs(batch: int) -> torch.Tensor:
    """(batch, 3, 224, 224) ImageNet-normalised natural images."""
    import numpy as np
    from skimage import data
    from skimage.transform import resize

    from dhtgraph import imagenet_normalize

    names = ("astronaut", "coffee", "chelsea", "rocket")
    images = [resize(getattr(data, n)(), (IMAGE, IMAGE), anti_aliasing=True).astype(np.float32)
              for n in names]
    x = torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2)
    x = x.repeat((batch + len(names) - 1) // len(names), 1, 1, 1)[:batch]
    return imagenet_normalize(x)


def plain_vit(model: DHTViT, x: torch.Tensor) -> torch.Tensor:
    """The model's weights as timm's ViT: conv patches + pos_embed → blocks → head."""
    tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    cls = model.cls_token.expand(x.shape[0], -1, -1)
    seq = torch.cat([cls, tokens], 1) + model.pos_embed
    seq = model.norm_pre(seq)
    for block in model.blocks:
        seq = block(seq)
    return model.head(model.fc_norm(model.norm(seq)[:, 0]))


def dht_stages(model: DHTViT, x: torch.Tensor):
    """The dHT forward in three separately callable stages (same computation as model(x))."""
    b, _, h, w = x.shape

    def tokenize():
        return model.tokenizer(x, TOKENS)

    tokens = tokenize()

    def features():
        emb = model.embed(x, tokens.partition, injected=tokens.injected)
        buckets = model.attention_buckets(tokens.partition, emb, (h, w))
        cfg = model.config
        return emb, bias_index(buckets, cfg.num_heads, cfg.max_hops + 2)

    emb, index = features()
    valid = emb.mask if emb.padded else None

    def transformer():
        seq = emb.tokens
        for block in model.blocks:
            seq = block(seq, valid, index)
        return model.head(model.fc_norm(model.norm(seq)[:, 0]))

    return tokenize, features, transformer, tokens.num_tokens


def parameter_counts(model: DHTViT) -> dict:
    counts = {"transformer (timm keys)": 0, "tokenizer": 0, "region features": 0,
              "graph bias": 0}
    timm = set(model.timm_state_keys())
    for name, p in model.named_parameters():
        if name in timm:
            counts["transformer (timm keys)"] += p.numel()
        elif name.startswith("tokenizer."):
            counts["tokenizer"] += p.numel()
        elif name.startswith("region_features."):
            counts["region features"] += p.numel()
        elif name.endswith("hop_bias"):
            counts["graph bias"] += p.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def run(size: str, batch: int, reps: int) -> dict:
    torch.manual_seed(0)
    model = DHTViT(img_size=IMAGE, patch_size=PATCH, num_classes=1000, **SIZES[size])
    x = photographs(batch)
    target = torch.randint(0, 1000, (batch,))
    part = grid_partition(batch, IMAGE, IMAGE, PATCH)
    results = {"params": parameter_counts(model)}

    model.eval()
    with torch.no_grad():
        # Sanity: our grid path is the plain ViT.
        diff = (model(x, part).logits - plain_vit(model, x)).abs().max().item()
        results["grid_vs_plain_max_abs"] = diff
        fwd = {
            "plain": _median_time(lambda: plain_vit(model, x), reps),
            "grid": _median_time(lambda: model(x, part), reps),
            "dht": _median_time(lambda: model(x), reps),
        }
        tokenize, features, transformer, num_tokens = dht_stages(model, x)
        stages = {"tokenization": _median_time(tokenize, reps),
                  "features": _median_time(features, reps),
                  "transformer": _median_time(transformer, reps)}
    results["dht_tokens_per_image"] = num_tokens.float().mean().item()

    model.train()

    def step(fn):
        def go():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(fn(), target).backward()
        return go

    bwd = {
        "plain": _median_time(step(lambda: plain_vit(model, x)), reps),
        "grid": _median_time(step(lambda: model(x, part).logits), reps),
        "dht": _median_time(step(lambda: model(x).logits), reps),
    }
    results["forward_ms_per_image"] = {k: 1e3 * v / batch for k, v in fwd.items()}
    results["train_step_ms_per_image"] = {k: 1e3 * v / batch for k, v in bwd.items()}
    total = sum(stages.values())
    results["dht_forward_share"] = {k: v / total for k, v in stages.items()}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ti", "s"], choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{IMAGE}x{IMAGE}, {TOKENS} tokens, medians of {args.reps}, {args.clock} clock")
    payload = {"batch": args.batch, "reps": args.reps, "threads": torch.get_num_threads(),
               "clock": args.clock}
    for size in args.models:
        r = run(size, args.batch, args.reps)
        payload[f"vit_{size}16"] = r
        f, t = r["forward_ms_per_image"], r["train_step_ms_per_image"]
        print(f"\nViT-{size.upper()}/16  params: " + ", ".join(f"{k} {v:,}" for k, v in r["params"].items()))
        print(f"  grid path vs plain ViT logits: max abs {r['grid_vs_plain_max_abs']:.2e}; "
              f"dHT tokens per image {r['dht_tokens_per_image']:.1f}")
        print(f"  {'':8s} {'forward ms/img':>15s} {'fwd+bwd ms/img':>15s}")
        for k in ("plain", "grid", "dht"):
            print(f"  {k:8s} {f[k]:15.1f} {t[k]:15.1f}")
        print(f"  dht / grid forward {f['dht'] / f['grid']:.2f}x, grid / plain {f['grid'] / f['plain']:.2f}x; "
              f"fwd+bwd dht / grid {t['dht'] / t['grid']:.2f}x")
        print("  dHT forward share: " + ", ".join(f"{k} {100 * v:.0f}%"
                                                  for k, v in r["dht_forward_share"].items()))
    print(f"\nwritten {write_json('model', payload)}")


if __name__ == "__main__":
    main()
