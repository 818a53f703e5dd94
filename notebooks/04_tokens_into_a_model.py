# %% [markdown]
# # Tokens into a model: region features, region graphs, DHTViT, timm retrofit
#
# dHT tokens are irregular regions. To feed them to a Vision Transformer, every token is
# resampled to a ViT patch (bilinear samples of the mean-injected image over the token's
# bounding box, with a soft mask and a learned background) plus a positional histogram.
# For square grid patches this descriptor *is* the patch, so a pretrained ViT runs
# unchanged on grid tokens and can be fine-tuned on dHT tokens (method spec §7–§8).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from skimage import data
from skimage.transform import resize

import dhtgraph
from dhtgraph import DHTTokenizer, DHTViT, grid_partition, region_graph
from dhtgraph.features import region_features
from dhtgraph.visualize import draw_boundaries

torch.manual_seed(0)
image = resize(data.astronaut(), (64, 64), anti_aliasing=True).astype(np.float32)
x = torch.as_tensor(image).permute(2, 0, 1)[None]  # (1, 3, 64, 64) in [0, 1]
tokenizer = DHTTokenizer(encoder="lab").eval()
with torch.no_grad():
    tokens = tokenizer(x, max_tokens=16)
print("tokens per image:", tokens.num_tokens.tolist())
plt.figure(figsize=(3, 3))
plt.imshow(draw_boundaries(x[0], tokens.labels()[0]))
plt.axis("off")

# %% [markdown]
# ## Region descriptors
#
# Per token: x̂ (the samples on a P×P grid over its box, corners on pixel centres), the
# soft mask M⁺, and F = (M⁺ + λM⁻)·x̂ + (1−λ)M⁻·β. With λ = 0.01 and β = 0 the pixels
# outside the token are almost blanked. Top row: F of six tokens; bottom row: M⁺.

# %%
patch = 16
desc = region_features(tokens.injected, tokens.partition, patch, (4, 4),
                       torch.tensor(0.01), torch.zeros(3, patch, patch))
print("patches", tuple(desc.patches.shape), "mask", tuple(desc.mask.shape),
      "position", tuple(desc.position.shape))
fig, axes = plt.subplots(2, 6, figsize=(9, 3))
for i in range(6):
    axes[0, i].imshow(desc.patches[i].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[1, i].imshow(desc.mask[i].numpy(), vmin=0, vmax=1, cmap="gray")
    axes[0, i].axis("off")
    axes[1, i].axis("off")

# %% [markdown]
# For the square-patch partition the descriptor is exact: the samples are the pixels, the
# mask is all ones and the positional histogram is one-hot.

# %%
grid = grid_partition(1, 64, 64, patch)
exact = region_features(x, grid, patch, (4, 4), torch.tensor(0.01), torch.zeros(3, patch, patch))
unfolded = torch.nn.functional.unfold(x, patch, stride=patch).transpose(1, 2).reshape(-1, 3, patch, patch)
print("patches equal the pixels:", torch.equal(exact.patches, unfolded))
print("one-hot positions:", torch.equal(exact.position, torch.eye(16)))

# %% [markdown]
# ## The region graph
#
# Tokens are adjacent when a pixel edge joins them: the quotient of the pixel graph, as a
# PyG `Data` (pooled colour `x`, centroid `pos`, `sizes`). DHTViT's attention bias is
# indexed by hop distances in this graph.

# %%
pixels = dhtgraph.from_image(x[0])
graph = region_graph(tokens.partition, pixels.edge_index, pixels.x, pixels.pos)
print(graph)
degree = torch.bincount(graph.edge_index[0], minlength=graph.num_nodes)
print("degrees:", degree.tolist())
plt.figure(figsize=(3, 3))
plt.imshow(draw_boundaries(x[0], tokens.labels()[0]))
for s, d in graph.edge_index.T.tolist():
    (y0, x0), (y1, x1) = graph.pos[s].tolist(), graph.pos[d].tolist()
    plt.plot([x0, x1], [y0, y1], "w-", lw=0.8)
plt.scatter(graph.pos[:, 1], graph.pos[:, 0], c="yellow", s=10)
plt.axis("off")

# %% [markdown]
# ## Grid tokens and dHT tokens in one model
#
# `model(images)` tokenizes with `model.tokenizer` end to end (gradients reach the
# tokenizer); `model(images, partition)` uses the tokens given, e.g. the ViT grid.

# %%
model = DHTViT(img_size=64, patch_size=16, embed_dim=48, depth=2, num_heads=3, num_classes=5,
               tokenizer={"encoder": "lab"})
out = model(x)
loss = model.loss(out, torch.tensor([2]))
loss.backward()
print("dHT tokens:", out.num_tokens.tolist(), "logits", tuple(out.logits.shape))
print("gradient on the tokenizer's W:", model.tokenizer.linear.weight.grad.abs().sum().item() > 0)
print("gradient on λ:", model.region_features.theta.grad.item() != 0)
grid_out = model(x, grid_partition(1, 64, 64, 16))
print("grid tokens:", grid_out.num_tokens.tolist())

# %% [markdown]
# ## Retrofit a timm ViT
#
# `DHTViT.from_timm(weights, **timm_config)` loads a timm `VisionTransformer` state dict
# (here the project's tiny test fixture, random weights) under the same parameter names.
# With grid tokens it reproduces timm's logits; with dHT tokens it is the starting point
# for fine-tuning.

# %%
fixture = Path("..").resolve() / "shared" / "data" / "timm-vit-tiny"
if not fixture.is_dir():
    fixture = Path(dhtgraph.__file__).resolve().parents[2] / "shared" / "data" / "timm-vit-tiny"
if fixture.is_dir():
    import json

    from safetensors.torch import load_file

    config = json.loads((fixture / "config.json").read_text())
    timm_model = DHTViT.from_timm(fixture / "weights.safetensors", **config,
                                  tokenizer={"encoder": "lab"})
    io = load_file(str(fixture / "io.safetensors"))
    with torch.no_grad():
        grid_logits = timm_model(io["x"], grid_partition(2, 64, 64, 16)).logits
        dht_logits = timm_model(io["x"]).logits
    print("grid tokens vs timm, max abs:", (grid_logits - io["logits"]).abs().max().item())
    print("dHT tokens vs timm, max abs:", (dht_logits - io["logits"]).abs().max().item())
else:
    print("the timm fixture is not available here:", fixture)
